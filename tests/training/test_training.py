"""Training: metrics a researcher reads, and the MLflow registry entry per model."""

from __future__ import annotations

import mlflow
import mlflow.sklearn
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sqlalchemy import select

from labelloop.access.projects import get_project
from labelloop.core.settings import Settings
from labelloop.ingest.service import ingest_file
from labelloop.store.db import open_session
from labelloop.store.models import Item
from labelloop.training.metrics import evaluate_predictions
from labelloop.training.service import train_model
from labelloop.versions.service import freeze_version
from tests.conftest import LABELS, banking_rows, write_csv


def test_evaluate_predictions_per_class_and_confusions():
    y = ["a", "a", "b", "b", "c"]
    p = ["a", "b", "b", "b", "a"]
    m = evaluate_predictions(y, p, ["a", "b", "c", "d"])
    assert m["accuracy"] == 0.6
    assert set(m["per_class"]) == {"a", "b", "c"}  # absent "d" does not dilute macro-F1
    assert m["per_class"]["c"]["f1"] == 0.0 and m["weakest"][0] == "c"
    assert {"true": "a", "predicted": "b", "count": 1} in m["confusions"]


def test_train_registers_model_and_becomes_prelabeler(settings, project_name, pool_csv,
                                                      eval_csv):
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, pool_csv, label_field="category")  # labels arrive with the data
        ingest_file(s, p, eval_csv, label_field="category", split="eval")
        train, ev = freeze_version(s, p), freeze_version(s, p, split="eval")
        model = train_model(s, p, settings, train=train, evaluation=ev)
        assert p.active_model_id == model.id
        assert model.metrics["macro_f1"] > 0.8  # 8 intents, 30 labels each, MiniLM
    mlflow.set_tracking_uri(settings.tracking_uri)
    client = MlflowClient()
    versions = client.search_model_versions("name='labelloop-bank'")
    assert model.mlflow_run_id in {v.run_id for v in versions}
    run = client.get_run(model.mlflow_run_id)
    assert run.data.metrics["macro_f1"] == model.metrics["macro_f1"]
    assert any(k.startswith("f1.") for k in run.data.metrics)
    # The recipe was chosen out of fold on the 240 labels and logged beside the model; the
    # head smooths as it says, and MLflow's copy is the whole head: it takes raw embeddings
    # and predicts what labelloop predicts.
    recipe = model.metrics["recipe"]
    assert recipe["reason"] in ("kept", "switched") and recipe["n_labels"] == 240
    assert recipe["recipe"] in recipe["scores"] and recipe["incumbent"] == "k10-C10"
    assert run.data.params["recipe"] == recipe["recipe"]
    assert run.data.metrics[f"recipe_oof_macro_f1/{recipe['recipe']}"] == \
        recipe["scores"][recipe["recipe"]]
    assert mlflow.artifacts.load_dict(f"runs:/{model.mlflow_run_id}/recipe.json") == recipe
    k = int(recipe["recipe"].split("-")[0][1:])
    assert model.metrics["smoothing_k"] == k and run.data.params["neighbour_smoothing_k"] == str(k)
    from labelloop.prelabel.encoders import load_encoder
    from labelloop.prelabel.heads import ClassifierHead

    x = load_encoder().encode(["my new card still has not come", "what is the exchange rate"])
    head = ClassifierHead.load(model.artifact_path)
    registered = mlflow.sklearn.load_model(f"runs:/{model.mlflow_run_id}/model")
    np.testing.assert_allclose(registered.predict_proba(x),
                               head.model.predict_proba(head.features(x)), rtol=1e-6)
    assert list(registered.predict(x)) == ["card_arrival", "exchange_rate"]


def test_mlflow_tracking_uri_env_is_honoured(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert Settings(home=tmp_path).tracking_uri == "http://mlflow.internal:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert Settings(home=tmp_path).tracking_uri.startswith("sqlite:///")


def test_auto_accept_uses_the_random_calibration_rows_once_there_are_enough(settings,
                                                                              project_name,
                                                                              tmp_path):
    """>= 50 rows from the random calibration sample: thresholds from the pool's calibrated
    confidence ("pool-estimate"); fewer: the strict Clopper-Pearson fallback."""
    from sqlalchemy import select

    from labelloop.prelabel.cache import embed_items
    from labelloop.prelabel.heads import ClassifierHead
    from labelloop.prelabel.service import encoder_for
    from labelloop.store.models import Item
    from labelloop.training.out_of_fold import calibrate_auto_accept, pool_vectors
    from tests.conftest import LABELS, banking_rows, write_csv

    rows = banking_rows("train", LABELS, 60, seed=5)
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, write_csv(tmp_path / "l.csv", rows[:300]), label_field="category")
        ingest_file(s, p, write_csv(tmp_path / "u.csv", rows[300:], fields=("text",)))
        items = list(s.scalars(select(Item).where(Item.given_label.is_not(None))
                              .order_by(Item.id)))
        x = embed_items(s, items, encoder_for(settings))
        head = ClassifierHead.fit(list(p.labels), x, [it.given_label for it in items])

        def records(n_random: int) -> list[dict]:
            return [{"item_id": it.id, "label": it.given_label,
                     "lineage": {"origin": "human",
                                 "reason": "calibration" if i < n_random else "low-confidence"}}
                    for i, it in enumerate(items)]

        def pool() -> tuple:
            return pool_vectors(s, p, settings, encoder_for(settings))

        estimated = calibrate_auto_accept(p, records(120), x, head, 10.0, 0, pool)
        strict = calibrate_auto_accept(p, records(40), x, head, 10.0, 0, pool)
    assert estimated["method"] == "pool-estimate" and estimated["n_calibration"] == 120
    assert 0.0 < estimated["temperature"] < 10.0
    check = estimated["calibration_check"]
    assert check["n"] == 0 or check["correct"] / check["n"] >= 0.98  # the promise, on them
    assert 0.0 <= estimated["pool_share_estimated"] <= 1.0
    assert strict["method"] == "clopper-pearson" and strict["n_calibration"] == 300


def test_self_training_adds_confident_pool_labels_and_logs_them(settings, project_name,
                                                                tmp_path):
    from mlflow.tracking import MlflowClient

    from tests.conftest import LABELS, banking_rows, write_csv

    rows = banking_rows("train", LABELS, 60, seed=7)
    on = settings.model_copy(update={"self_training": True})
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, write_csv(tmp_path / "l.csv", rows[:120]), label_field="category")
        ingest_file(s, p, write_csv(tmp_path / "u.csv", rows[120:], fields=("text",)))
        model = train_model(s, p, on, train=freeze_version(s, p))
        st = model.metrics["self_training"]
        n_pool = 480 - 120
        assert 0 < st["n_pseudo"] <= n_pool and st["threshold"] == 0.9
        assert model.metrics["n_train"] == 120  # human labels only are counted
        assert len(st["digest"]) == 64
    run = MlflowClient(settings.tracking_uri).get_run(model.mlflow_run_id)
    assert run.data.params["n_pseudo"] == str(st["n_pseudo"])
    assert run.data.tags["labelloop.pseudo_digest"] == st["digest"]
    contexts = {t.value for d in run.inputs.dataset_inputs for t in d.tags
                if t.key == "mlflow.data.context"}
    assert {"training", "pseudo-labels"} <= contexts


def test_auto_accepted_rows_stay_in_the_version_but_not_in_the_fit(settings, project_name,
                                                                   tmp_path):
    from sqlalchemy import select

    from labelloop.core.enums import LabelOrigin, LabelReason
    from labelloop.store.labels import NewLabel, record_labels
    from labelloop.store.models import Batch, Item
    from tests.conftest import LABELS, banking_rows, write_csv

    rows = banking_rows("train", LABELS, 20, seed=2)
    truth = {" ".join(r["text"].split()): r["category"] for r in rows}
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, write_csv(tmp_path / "u.csv", rows, fields=("text",)))
        batch = Batch(project_id=p.id, strategy="default", status="passed")
        s.add(batch)
        s.flush()
        items = list(s.scalars(select(Item).order_by(Item.id)))
        record_labels(s, [NewLabel(it.id, truth[" ".join(it.text.split())], by="test",
                                   reason=LabelReason.ANSWER, batch_id=batch.id,
                                   origin=LabelOrigin.AUTO if i % 4 == 0 else LabelOrigin.HUMAN)
                          for i, it in enumerate(items)])
        version = freeze_version(s, p)
        model = train_model(s, p, settings, train=version)
        n_auto = sum(1 for i in range(len(items)) if i % 4 == 0)
        assert version.n_rows == len(items) == model.metrics["n_version_rows"]
        assert model.metrics["n_train"] == len(items) - n_auto
        both = train_model(s, p, settings.model_copy(update={"train_on_auto_accepted": True}),
                           train=version)
        assert both.metrics["n_train"] == len(items)


def test_smoothing_off_trains_on_raw_embeddings(settings, project_name, pool_csv):
    from labelloop.prelabel.heads import ClassifierHead

    off = settings.model_copy(update={"smoothing_k": 0, "recipe": "fixed"})
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, pool_csv, label_field="category")
        model = train_model(s, p, off, train=freeze_version(s, p))
        assert model.metrics["smoothing_k"] == 0
        assert model.metrics["recipe"]["reason"] == "fixed"
        assert model.metrics["recipe"]["recipe"] == "k0-C10"
    head = ClassifierHead.load(model.artifact_path)
    assert head.smoothing is None and head.sklearn_model() is head.model
    run = MlflowClient(settings.tracking_uri).get_run(model.mlflow_run_id)
    assert run.data.params["neighbour_smoothing_k"] == "0"


def test_a_bad_smoothing_k_is_refused_before_anything_is_trained(settings, project_name,
                                                                 pool_csv, monkeypatch):
    """LABELLOOP_SMOOTHING_K must be a whole number in [0, 100]: pydantic names the field,
    and a project trained earlier keeps its model untouched."""
    import pydantic
    import pytest

    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, pool_csv, label_field="category")
        model = train_model(s, p, settings, train=freeze_version(s, p))
        before = (model.id, model.artifact_path, p.active_model_id)
    for bad in ("-1", "101", "ten"):
        monkeypatch.setenv("LABELLOOP_SMOOTHING_K", bad)
        with pytest.raises(pydantic.ValidationError, match="smoothing_k"):
            Settings(home=settings.home)
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        assert p.active_model_id == before[2] == before[0]
        from pathlib import Path

        from labelloop.store.models import ModelVersion

        assert s.get(ModelVersion, before[0]).artifact_path == before[1]
        assert Path(before[1]).is_file()


def test_train_and_eval_splits_are_kept_apart(settings, project_name, tmp_path, eval_csv):
    """Training on an evaluation version is refused, and so is evaluating on a version that
    shares items with the training data; nothing is trained or stored."""
    from sqlalchemy import func, select

    from labelloop.core.enums import LabelOrigin, LabelReason
    from labelloop.core.errors import ValidationError
    from labelloop.store.labels import NewLabel, record_labels
    from labelloop.store.models import Batch, Item, ModelVersion
    from tests.conftest import LABELS, banking_rows, write_csv

    rows = banking_rows("train", LABELS, 6, seed=3)
    truth = {r["text"]: r["category"] for r in rows}
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, write_csv(tmp_path / "u.csv", rows, fields=("text",)))
        ingest_file(s, p, eval_csv, label_field="category", split="eval")
        batch = Batch(project_id=p.id, strategy="default", status="passed")
        s.add(batch)
        s.flush()
        items = list(s.scalars(select(Item).where(Item.split == "pool").order_by(Item.id)))
        half = len(items) // 2

        def label(chosen: list[Item]) -> None:
            record_labels(s, [NewLabel(it.id, truth[it.text], by="test", batch_id=batch.id,
                                       reason=LabelReason.ANSWER, origin=LabelOrigin.HUMAN)
                              for it in chosen])

        label(items[:half])
        first = freeze_version(s, p)
        label(items[half:])
        second = freeze_version(s, p)
        evaluation = freeze_version(s, p, split="eval")
        n_models = s.scalar(select(func.count(ModelVersion.id)))
        for kwargs, where in (({"train": evaluation}, "train_version"),
                              ({"train": second, "evaluation": second}, "eval_version"),
                              ({"train": second, "evaluation": first}, "eval_version")):
            with pytest.raises(ValidationError) as err:
                train_model(s, p, settings, **kwargs)
            assert err.value.where == where
        assert "shares" in str(err.value)
        assert s.scalar(select(func.count(ModelVersion.id))) == n_models


def test_the_next_model_extends_the_last_ones_neighbour_index(settings, project_name,
                                                              tmp_path, monkeypatch):
    """Items ingested after a training: the next model's smoothing index is the last one's
    plus those items, added to a copy (never built from scratch); the last model's own
    index is untouched."""
    from labelloop.prelabel import smoothing as module
    from labelloop.prelabel.heads import ClassifierHead

    rows = banking_rows("train", LABELS, 30)
    settings = settings.model_copy(update={"recipe": "fixed"})  # smoothed, k 10, each time
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, write_csv(tmp_path / "a.csv", rows[:150]), label_field="category")
        v1 = freeze_version(s, p)
        m1 = train_model(s, p, settings, train=v1)
        ingest_file(s, p, write_csv(tmp_path / "b.csv", rows[150:], fields=("text",)))
        built = []
        real_build = module._build_index
        monkeypatch.setattr(module, "_build_index",
                            lambda ref: built.append(len(ref)) or real_build(ref))
        m2 = train_model(s, p, settings, train=v1)
        pool = sorted(s.scalars(select(Item.id).where(Item.split == "pool")))
    first = ClassifierHead.load(m1.artifact_path).smoothing
    second = ClassifierHead.load(m2.artifact_path).smoothing
    assert built == []  # extended, and loaded from the file: no index built
    assert sorted(first.item_ids.tolist()) == first.item_ids.tolist() and \
        len(first.item_ids) < len(pool)
    assert second.item_ids.tolist() == pool
    assert second.item_ids[:len(first.item_ids)].tolist() == first.item_ids.tolist()
    np.testing.assert_allclose(second.reference[:len(first.item_ids)], first.reference)


def test_each_retrain_starts_from_the_live_models_recipe(settings, project_name, pool_csv):
    """The live model's recipe is the next retrain's incumbent; a C asked for fixes C and
    leaves k to be chosen; a fixed recipe is the settings' whatever the live model chose."""
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, pool_csv, label_field="category")
        version = freeze_version(s, p)
        first = train_model(s, p, settings, train=version)
        second = train_model(s, p, settings, train=version)
        assert second.metrics["recipe"]["incumbent"] == first.metrics["recipe"]["recipe"]
        fixed_c = train_model(s, p, settings, train=version, c=3.0)
        assert all(key.endswith("-C3") for key in fixed_c.metrics["recipe"]["scores"])
        assert fixed_c.metrics["recipe"]["recipe"].endswith("-C3")
        fixed = train_model(s, p, settings.model_copy(update={"recipe": "fixed"}),
                            train=version)
        assert fixed.metrics["recipe"]["recipe"] == "k10-C10"
        assert fixed.metrics["recipe"]["scores"] == {}


def test_an_unknown_recipe_mode_is_refused_by_name(tmp_path, monkeypatch):
    """LABELLOOP_RECIPE is auto or fixed: anything else fails when settings are read,
    naming the field, before any training."""
    import pydantic

    monkeypatch.setenv("LABELLOOP_RECIPE", "tuned")
    with pytest.raises(pydantic.ValidationError, match="recipe"):
        Settings(home=tmp_path)
    monkeypatch.setenv("LABELLOOP_RECIPE", "fixed")
    assert Settings(home=tmp_path).recipe == "fixed"
