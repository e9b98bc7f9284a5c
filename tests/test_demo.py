"""The demo, shrunk: two rounds on a sample of the packaged BANKING77, no ../shared needed."""

from __future__ import annotations

import mlflow
from mlflow.tracking import MlflowClient

from labelloop.demo import run_demo
from labelloop.store.db import open_session
from labelloop.store.models import DatasetVersion


def test_demo_rounds_log_dataset_digests(settings):
    lines: list[str] = []
    rows = run_demo(settings, rounds=2, batch_size=40, limit_pool=600, limit_eval=300,
                    echo=lines.append)
    assert [r["round"] for r in rows] == [1, 2]
    assert rows[1]["human_labeled_items"] >= 80
    assert rows[1]["eval_accuracy"] > rows[0]["eval_accuracy"] - 0.05
    assert any(line.startswith("round 2:") for line in lines)
    assert any("MLflow runs:" in line for line in lines)
    # the six KPIs close the demo, numbered, with the auto-accept line beside them
    kpis = lines[lines.index(next(x for x in lines if x.startswith("the six KPIs"))) + 1:]
    assert [x.strip()[:2] for x in kpis[:6]] == ["1.", "2.", "3.", "4.", "5.", "6."]
    assert "lineage completeness: 100%" in kpis[3]
    assert (settings.home / "kpis.png").read_bytes()[:4] == b"\x89PNG"
    with open_session(settings.db_url) as s:
        digests = {v.digest for v in s.query(DatasetVersion)}
    mlflow.set_tracking_uri(settings.tracking_uri)
    run = MlflowClient().get_run(rows[1]["mlflow_run_id"])
    logged = {t.value for d in run.inputs.dataset_inputs for t in d.tags
              if t.key == "labelloop.digest"}
    assert len(logged) == 2 and logged <= digests  # training and evaluation versions
