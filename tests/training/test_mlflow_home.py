"""MLflow as the researcher's home: a run names the rows it fitted, left out and evaluated
on (full digests), logs per-class figures and a confusion matrix, says what changed in the
data since the live model, and the registry aliases follow promotion."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sqlalchemy import select

from labelloop.access.projects import create_project
from labelloop.core.enums import LabelOrigin, LabelReason
from labelloop.core.errors import ValidationError
from labelloop.ingest.service import ingest_file
from labelloop.store.db import open_session
from labelloop.store.labels import NewLabel, record_labels
from labelloop.store.models import Batch, DatasetRow, Item, ModelVersion, Project
from labelloop.training.metrics import confusion_counts
from labelloop.training.service import promote_model, train_model
from labelloop.training.tracking import confusion_figure, metric_key
from labelloop.versions.service import freeze_version, version_digest
from tests.conftest import LABELS, banking_rows, write_csv

NAME = "mlhome"
REGISTERED = f"labelloop-{NAME}"


def _norm(text: str) -> str:
    return " ".join(text.split())


def _inputs(client: MlflowClient, run_id: str) -> dict[str, tuple]:
    """{context: (dataset, {tag: value})} of a run's dataset inputs."""
    out = {}
    for d in client.get_run(run_id).inputs.dataset_inputs:
        tags = {t.key: t.value for t in d.tags}
        out[tags["mlflow.data.context"]] = (d.dataset, tags)
    return out


def _aliases(client: MlflowClient) -> dict[str, str]:
    return {k: str(v) for k, v in client.get_registered_model(REGISTERED).aliases.items()}


def _fitted_digest(s, version) -> str:
    """The digest of a version's non-auto rows, read straight from the database."""
    rows = s.execute(select(Item.content_hash, DatasetRow.label)
                     .join(Item, Item.id == DatasetRow.item_id)
                     .where(DatasetRow.version_id == version.id,
                            DatasetRow.origin != LabelOrigin.AUTO.value)).tuples().all()
    return version_digest(list(rows))


def test_runs_aliases_inputs_figures_and_data_diff(settings, tmp_path, eval_csv):
    rows = banking_rows("train", LABELS, 25, seed=5)
    truth = {_norm(r["text"]): r["category"] for r in rows}
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    with open_session(settings.db_url) as s:
        p = create_project(s, NAME, LABELS, overlap=1)
        ingest_file(s, p, write_csv(tmp_path / "a.csv", rows[:160], fields=("text",)))
        ingest_file(s, p, eval_csv, label_field="category", split="eval")
        batch = Batch(project_id=p.id, strategy="default", status="passed")
        s.add(batch)
        s.flush()
        first = list(s.scalars(select(Item).where(Item.project_id == p.id,
                                                  Item.split == "pool").order_by(Item.id)))
        auto = {it.id for i, it in enumerate(first) if i % 4 == 0}
        record_labels(s, [NewLabel(it.id, truth[_norm(it.text)], by="test",
                                   reason=LabelReason.ANSWER, batch_id=batch.id,
                                   origin=LabelOrigin.AUTO if it.id in auto
                                   else LabelOrigin.HUMAN) for it in first])
        v1, ev = freeze_version(s, p), freeze_version(s, p, split="eval")
        m1 = train_model(s, p, settings, train=v1, evaluation=ev)

        # First model, promoted: prelabeler names it, no candidate is left behind.
        assert _aliases(client) == {"prelabeler": m1.registered_version}
        assert "labelloop.data_diff" not in client.get_run(m1.mlflow_run_id).data.tags

        # New data: 40 more items labeled, 3 relabeled; trained but not promoted.
        ingest_file(s, p, write_csv(tmp_path / "b.csv", rows[160:], fields=("text",)))
        added = [it for it in s.scalars(select(Item).where(
            Item.project_id == p.id, Item.split == "pool").order_by(Item.id))
            if it.id not in {f.id for f in first}]
        humans = [it for it in first if it.id not in auto]
        moved = {it.id: next(lb for lb in LABELS if lb != truth[_norm(it.text)])
                 for it in humans[:3]}
        record_labels(s, [NewLabel(it.id, truth[_norm(it.text)], by="test",
                                   reason=LabelReason.ANSWER, batch_id=batch.id,
                                   origin=LabelOrigin.HUMAN) for it in added]
                      + [NewLabel(i, lb, by="reviewer", reason=LabelReason.ANSWER,
                                  batch_id=batch.id, origin=LabelOrigin.REVIEWED)
                         for i, lb in moved.items()])
        v2 = freeze_version(s, p)
        m2 = train_model(s, p, settings, train=v2, evaluation=ev, promote=False)
        assert p.active_model_id == m1.id
        assert _aliases(client) == {
            "prelabeler": m1.registered_version, "candidate": m2.registered_version}
        fitted_digest = _fitted_digest(s, v2)
        n_fitted = v2.n_rows - len(auto)
        eval_counts = dict(ev.label_counts)
        n_eval = ev.n_rows

    run = client.get_run(m2.mlflow_run_id)
    assert len(added) == 40 and m2.metrics["n_train"] == n_fitted

    # Inputs: as many rows as fitted / left out / evaluated, full digests, a labelloop source.
    inputs = _inputs(client, m2.mlflow_run_id)
    assert set(inputs) == {"training", "auto-accepted", "evaluation"}
    for context, n in (("training", n_fitted), ("auto-accepted", len(auto)),
                       ("evaluation", n_eval)):
        dataset, tags = inputs[context]
        profile = json.loads(dataset.profile)
        assert profile["num_rows"] == int(tags["labelloop.n_rows"]) == n, context
        assert re.fullmatch("[0-9a-f]{64}", tags["labelloop.digest"])
        assert profile["labelloop_digest"] == tags["labelloop.digest"]
        assert dataset.digest == tags["labelloop.digest"][:36]
        assert tags["labelloop.project"] == NAME
        assert json.loads(dataset.source)["uri"].endswith(".parquet")
    train_ds, train_tags = inputs["training"]
    assert train_tags["labelloop.digest"] == fitted_digest != v2.digest
    assert train_tags["labelloop.version_digest"] == v2.digest
    assert train_tags["labelloop.version_id"] == str(v2.id)
    assert json.loads(train_ds.source)["uri"].endswith(f"{v2.name}.parquet")
    assert inputs["evaluation"][1]["labelloop.digest"] == ev.digest  # all rows: the version's

    # Per-class figures and the confusion matrix.
    for label, n in eval_counts.items():
        for figure in ("precision", "recall", "f1"):
            assert 0.0 <= run.data.metrics[f"{figure}.{metric_key(label)}"] <= 1.0
        assert run.data.metrics[f"support.{metric_key(label)}"] == n
    png = client.download_artifacts(m2.mlflow_run_id, "confusion_matrix.png", str(tmp_path))
    with open(png, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(client.download_artifacts(m2.mlflow_run_id, "confusion_matrix.json",
                                        str(tmp_path)), encoding="utf-8") as fh:
        matrix = json.load(fh)
    counts = np.array(matrix["counts"])
    assert matrix["labels"] == LABELS and counts.shape == (len(LABELS), len(LABELS))
    assert counts.sum() == n_eval
    assert np.trace(counts) / n_eval == pytest.approx(run.data.metrics["accuracy"])

    # What changed since the live model's training data.
    assert run.data.tags["labelloop.data_diff"] == \
        f"vs {v1.name}: +40 added, -0 removed, 3 relabeled"
    with open(client.download_artifacts(m2.mlflow_run_id, "data_diff.json", str(tmp_path)),
              encoding="utf-8") as fh:
        diff = json.load(fh)
    assert (diff["added"], diff["removed"], diff["relabeled"]) == (40, 0, 3)
    assert sorted(i["item_id"] for i in diff["added_items"]) == sorted(it.id for it in added)
    assert {i["item_id"]: i["to"] for i in diff["relabeled_items"]} == moved
    assert diff["previous_model"]["id"] == m1.id

    # Promoting the candidate moves prelabeler and retires the candidate alias.
    with open_session(settings.db_url) as s:
        p = s.get(Project, p.id)
        m2 = s.get(ModelVersion, m2.id)
        promote_model(s, p, m2, settings)
        assert p.active_model_id == m2.id
    assert _aliases(client) == {
        "prelabeler": m2.registered_version}
    assert client.get_model_version_by_alias(REGISTERED, "prelabeler").run_id == \
        m2.mlflow_run_id


def test_promote_refuses_zero_shot_and_other_projects_models(settings):
    with open_session(settings.db_url) as s:
        p = create_project(s, "promote-a", LABELS)
        other = create_project(s, "promote-b", LABELS)
        zero = ModelVersion(project_id=p.id, name="zero-shot", kind="zero-shot",
                            encoder="minilm")
        foreign = ModelVersion(project_id=other.id, name="classifier/x", kind="classifier",
                               encoder="minilm", artifact_path="/nonexistent.joblib")
        s.add_all([zero, foreign])
        s.flush()
        before = p.active_model_id
        for model in (zero, foreign):
            with pytest.raises(ValidationError) as err:
                promote_model(s, p, model, settings)
            assert err.value.where == "model"
        assert p.active_model_id == before


def test_confusion_matrix_stays_readable_with_many_classes(tmp_path):
    labels = [f"intent_number_{i:02d}" for i in range(77)]
    rng = np.random.default_rng(0)
    y = [labels[i] for i in rng.integers(0, 77, 2000)]
    pred = [lb if rng.random() < 0.8 else labels[rng.integers(0, 77)] for lb in y]
    counts = confusion_counts(y, pred, labels)
    assert counts.shape == (77, 77) and counts.sum() == 2000
    assert np.trace(counts) == sum(a == b for a, b in zip(y, pred, strict=True))
    fig = confusion_figure(labels, counts)
    width, height = fig.get_size_inches()
    assert width >= 15 and height >= 15  # about 0.2 inch per class
    ax = fig.axes[0]
    assert len(ax.get_xticklabels()) == 77  # every intent named at this size
    assert 4 <= ax.get_xticklabels()[0].get_fontsize() <= 9
    fig.savefig(tmp_path / "cm.png")
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"
