"""Training: metrics a researcher reads, and the MLflow registry entry per model."""

from __future__ import annotations

import mlflow
from mlflow.tracking import MlflowClient

from ingest.service import ingest_file
from labelloop.projects import get_project
from labelloop.settings import Settings
from store.db import open_session
from training.metrics import evaluate_predictions
from training.service import train_model
from versions.service import freeze_version


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


def test_mlflow_tracking_uri_env_is_honoured(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert Settings(home=tmp_path).tracking_uri == "http://mlflow.internal:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert Settings(home=tmp_path).tracking_uri.startswith("sqlite:///")
