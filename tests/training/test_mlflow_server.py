"""Training against a real MLflow tracking server (``mlflow server`` with a SQL backend and
an artifact root, started on 127.0.0.1 by the test): the run, its metrics, its dataset
inputs and the registered model land on the server, and the model loads back from it."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import mlflow
import pytest
from mlflow.tracking import MlflowClient

from labelloop.access.projects import get_project
from labelloop.ingest.service import ingest_file
from labelloop.store.db import open_session
from labelloop.training.service import train_model
from labelloop.versions.service import freeze_version
from tests.conftest import free_port


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow-server.db'}",
         "--artifacts-destination", str(tmp_path / "mlflow-artifacts")],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "mlflow.log", "w"))  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.time() > deadline or server.poll() is not None:
            server.kill()
            raise AssertionError((tmp_path / "mlflow.log").read_text()[-3000:])
        time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(timeout=30)


@pytest.mark.sqlite_only  # the tracking server is what is tested
def test_training_logs_and_registers_on_a_tracking_server(settings, project_name, pool_csv,
                                                         eval_csv, mlflow_server, tmp_path):
    settings = settings.model_copy(update={"mlflow_tracking_uri": mlflow_server})
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, pool_csv, label_field="category")
        ingest_file(s, p, eval_csv, label_field="category", split="eval")
        train, ev = freeze_version(s, p), freeze_version(s, p, split="eval")
        model = train_model(s, p, settings, train=train, evaluation=ev)
    client = MlflowClient(tracking_uri=mlflow_server)
    run = client.get_run(model.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["macro_f1"] == model.metrics["macro_f1"]
    contexts = {t.value for d in run.inputs.dataset_inputs for t in d.tags
                if t.key == "mlflow.data.context"}
    assert {"training", "evaluation"} <= contexts
    versions = client.search_model_versions("name='labelloop-bank'")
    assert [v.run_id for v in versions] == [model.mlflow_run_id]
    # the artifacts went to the server's artifact root, not to a local folder
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    assert any((tmp_path / "mlflow-artifacts").rglob("MLmodel"))
    mlflow.set_tracking_uri(mlflow_server)
    try:
        loaded = mlflow.sklearn.load_model(f"models:/labelloop-bank/{versions[0].version}")
    finally:
        mlflow.set_tracking_uri(settings.tracking_uri)
    assert hasattr(loaded, "predict_proba")
