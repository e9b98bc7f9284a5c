"""Retraining with a fine-tuned encoder: checked on held-out labels, a version of its own,
the project's vectors computed before the model goes live, kept until the labels double."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sqlalchemy import func, select

from labelloop.access.projects import get_project
from labelloop.ingest.service import ingest_file
from labelloop.prelabel import tuned
from labelloop.prelabel.encoders import load_encoder
from labelloop.prelabel.service import LazyEncoder, encoder_of, prelabel_project
from labelloop.selection.service import next_batch, unlabeled_pool
from labelloop.store.db import open_session
from labelloop.store.models import Embedding, Item, Prediction
from labelloop.training.service import fit_model, install_model, train_model
from labelloop.versions.service import freeze_version
from tests.conftest import banking_rows, write_csv

THREE = ["card_arrival", "exchange_rate", "lost_or_stolen_card"]


@pytest.fixture
def tuning(settings):
    """Fine-tuning on from 40 labels, with 4 contrastive steps (the test is of the plumbing:
    the bar the check must clear is set by each test)."""
    return settings.model_copy(update={"finetune": "auto", "finetune_min_labels": 40,
                                       "finetune_steps": 4})


def _project(settings, tmp_path, name="ft"):
    from labelloop.access.projects import create_project

    rows = banking_rows("train", THREE, 34)
    with open_session(settings.db_url) as s:
        p = create_project(s, name, THREE)
        ingest_file(s, p, write_csv(tmp_path / "l.csv", rows[:60]), label_field="category")
        ingest_file(s, p, write_csv(tmp_path / "u.csv", rows[60:90]), label_field=None)
        return p.id, rows[90:]


def _decide(monkeypatch, wins: bool) -> None:
    """The real holdout check runs (SetFit, both sides scored); its verdict is set here, as
    4 steps on 40 labels decide nothing."""
    import dataclasses

    from labelloop.training import finetuning

    real = finetuning.holdout_check
    monkeypatch.setattr(finetuning, "holdout_check", lambda *a, **k: dataclasses.replace(
        real(*a, **k), fine_tune=wins))


@pytest.mark.sqlite_only  # minutes of SetFit per database would say nothing more
def test_a_winning_check_trains_on_a_tuned_encoder_whose_vectors_are_ready_first(
        tuning, tmp_path, monkeypatch):
    project_id, more = _project(tuning, tmp_path)
    _decide(monkeypatch, wins=True)
    with open_session(tuning.db_url) as s:
        p = get_project(s, "ft")
        first = train_model(s, p, tuning.model_copy(update={"finetune": "off"}),
                            train=freeze_version(s, p))
        assert first.encoder == LazyEncoder(tuning).key
        model = fit_model(s, p, tuning, train=freeze_version(s, p))
        # Fitted, not installed: the live model still serves from the base vectors...
        assert p.active_model_id == first.id
        state = model.metrics["finetune"]
        assert state["checked"] and state["checked_at"] == 60 and state["n_held"] == 20
        assert tuned.is_tuned(model.encoder) and state["encoder"] == model.encoder
        assert tuned.exists(tuning, model.encoder)
        # ...and every item of the project already has a vector under the new version.
        n_items = s.scalar(select(func.count(Item.id)).where(Item.project_id == project_id))
        assert s.scalar(select(func.count(Embedding.id)).where(
            Embedding.encoder == model.encoder)) == n_items == 90
        install_model(s, p, model, settings=tuning)
    with open_session(tuning.db_url) as s:
        p = get_project(s, "ft")
        encoder = encoder_of(tuning, model)
        assert encoder.key == model.encoder and encoder.path == tuned.folder(tuning, model.encoder)
        with monkeypatch.context() as m:  # every vector is cached: nothing is embedded
            m.setattr(encoder, "encode", lambda *a, **k: pytest.fail("embedded again"))
            report = prelabel_project(s, p, tuning)
        assert report.model_version_id == model.id and report.n_new == 90
        # The predictions read the tuned vectors, not the base encoder's.
        pool = unlabeled_pool(s, p)
        assert len(pool) == 30
        stored = {pr.item_id: pr.label for pr in s.scalars(select(Prediction).where(
            Prediction.model_version_id == model.id))}
        from labelloop.prelabel.service import load_head

        head = load_head(p, model, encoder)
        z = encoder.encode([it.text for it in pool])
        assert [stored[it.id] for it in pool] == [
            THREE[k] for k in head.predict_proba(z).argmax(axis=1)]
        assert not np.allclose(z, load_encoder().encode([it.text for it in pool]), atol=1e-3)
        batch = next_batch(s, p, tuning, size=5, seed=0)
        assert batch.model_version_id == model.id and batch.n_tasks == 5
    run = MlflowClient(tuning.tracking_uri).get_run(model.mlflow_run_id)
    assert run.data.params["finetune"] == "tuned" and run.data.params["encoder"] == model.encoder
    assert run.data.metrics["finetune_tuned_macro_f1"] == state["tuned_macro_f1"]
    mlflow.set_tracking_uri(tuning.tracking_uri)
    assert mlflow.artifacts.load_dict(f"runs:/{model.mlflow_run_id}/finetune.json") == state

    # Labels grow, but have not doubled: no new check, the model reads the same version.
    with open_session(tuning.db_url) as s:
        p = get_project(s, "ft")
        ingest_file(s, p, write_csv(tmp_path / "more.csv", more[:12]), label_field="category")
        again = train_model(s, p, tuning, train=freeze_version(s, p))
        assert again.encoder == model.encoder
        assert again.metrics["finetune"]["checked"] is False
        assert again.metrics["finetune"]["checked_at"] == 60


@pytest.mark.sqlite_only
def test_a_losing_check_leaves_no_tuned_encoder_and_keeps_the_base_one(tuning, tmp_path,
                                                                       monkeypatch):
    _project(tuning, tmp_path)
    _decide(monkeypatch, wins=False)
    with open_session(tuning.db_url) as s:
        p = get_project(s, "ft")
        model = train_model(s, p, tuning, train=freeze_version(s, p))
        state = model.metrics["finetune"]
        assert state["checked"] and not state["fine_tune"]
        assert model.encoder == LazyEncoder(tuning).key == state["encoder"]
        assert not list((tuning.home / "encoders").glob("*/*"))  # the losing version is gone
        assert not s.scalar(select(func.count(Embedding.id)).where(
            Embedding.encoder.like("tuned/%")))
        # Below the doubling, the next retrain does not check again.
        again = train_model(s, p, tuning, train=freeze_version(s, p))
        assert again.metrics["finetune"]["checked"] is False


def test_fine_tuning_waits_for_its_labels_and_can_be_turned_off(settings, tmp_path):
    """Below finetune_min_labels (default 100) no check runs, and none runs when off."""
    _project(settings, tmp_path)
    on = settings.model_copy(update={"finetune": "auto"})
    with open_session(settings.db_url) as s:
        p = get_project(s, "ft")
        model = train_model(s, p, on, train=freeze_version(s, p))
        assert "finetune" not in model.metrics and not tuned.is_tuned(model.encoder)
        off = settings.model_copy(update={"finetune": "off", "finetune_min_labels": 40})
        model = train_model(s, p, off, train=freeze_version(s, p))
        assert "finetune" not in model.metrics


def test_a_tuned_encoder_no_model_reads_is_cleared_with_its_vectors(settings, tmp_path):
    """A training killed after its fine-tuning check leaves a tuned folder and its vectors;
    the next training's reconcile removes them, and keeps a version a model reads."""
    from labelloop.store.models import ModelVersion
    from labelloop.training.orphans import reconcile

    project_id, _ = _project(settings, tmp_path)
    keys = [tuned.new_key(project_id) for _ in range(2)]
    for key in keys:
        tuned.folder(settings, key).mkdir(parents=True)
        (tuned.folder(settings, key) / "config.json").write_text("{}")
    with open_session(settings.db_url) as s:
        item = s.scalar(select(Item.id).where(Item.project_id == project_id))
        for key in keys:
            s.add(Embedding(item_id=item, encoder=key, dim=1, vector=b"\0\0\0\0"))
        s.add(ModelVersion(project_id=project_id, name="kept", kind="classifier",
                           encoder=keys[0]))
    with open_session(settings.db_url) as s:
        p = get_project(s, "ft")
        assert reconcile(s, p, settings, grace_s=3600).encoders_removed == 0  # too fresh
        assert reconcile(s, p, settings, grace_s=-1).encoders_removed == 1
    assert tuned.exists(settings, keys[0]) and not tuned.folder(settings, keys[1]).exists()
    with open_session(settings.db_url) as s:
        assert set(s.scalars(select(Embedding.encoder).where(
            Embedding.encoder.like("tuned/%")))) == {keys[0]}


def test_an_unknown_fine_tuning_mode_is_refused_by_name(tmp_path, monkeypatch):
    """LABELLOOP_FINETUNE is auto or off, and its label floor at least 40: anything else fails
    when settings are read, naming the field (the CLI's exit 2), before any training."""
    import pydantic

    from labelloop.core.settings import Settings

    monkeypatch.setenv("LABELLOOP_FINETUNE", "always")
    with pytest.raises(pydantic.ValidationError, match="finetune"):
        Settings(home=tmp_path)
    monkeypatch.setenv("LABELLOOP_FINETUNE", "auto")
    monkeypatch.setenv("LABELLOOP_FINETUNE_MIN_LABELS", "5")
    with pytest.raises(pydantic.ValidationError, match="finetune_min_labels"):
        Settings(home=tmp_path)
