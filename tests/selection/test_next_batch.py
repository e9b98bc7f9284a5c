"""next_batch in the loop: calibrated auto-accept, audits, tightening, critical items."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from labelloop.access.projects import get_project
from labelloop.annotate.service import next_tasks
from labelloop.ingest.service import ingest_file
from labelloop.loop import submit_answer as submit
from labelloop.selection.service import next_batch
from labelloop.store.db import open_session
from labelloop.store.models import Batch, FinalLabel, Item, ModelVersion, Prediction, Task
from labelloop.training.service import train_model
from labelloop.versions.service import freeze_version
from tests.conftest import CRITICAL, LABELS, banking_rows, write_csv


def test_calibrated_auto_accept_audit_and_tightening(settings, project_name, tmp_path):
    rows = banking_rows("train", LABELS, 60, seed=3)
    labeled, unlabeled = rows[:320], rows[320:]
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        p.audit_share = 0.2
        p.confidence_threshold = 0.5
        ingest_file(s, p, write_csv(tmp_path / "l.csv", labeled), label_field="category")
        ingest_file(s, p, write_csv(tmp_path / "u.csv", unlabeled, fields=("text",)))
        model = train_model(s, p, settings, train=freeze_version(s, p))
        auto = model.metrics["auto_accept"]
        assert auto["n_calibration"] == 320 and auto["target"] == 0.98
        assert 0.5 < auto["global"] <= 1.01
        rep = next_batch(s, p, settings, size=10, seed=0)
    assert rep.n_auto_accepted > 0, "a calibrated model auto-accepts confident items"
    assert rep.reasons.get("audit", 0) >= 1
    with open_session(settings.db_url) as s:
        finals = s.execute(select(FinalLabel, Item).join(Item)).all()
        assert all(f.label not in CRITICAL for f, _ in finals)  # never auto-accepted
        audit = list(s.scalars(select(Task).where(Task.reason == "audit")))
        assert all(t.prelabel not in CRITICAL for t in audit)
    # Annotators contradict every audited auto-accept: the audit must tighten the thresholds.
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        for who in ("ana", "ben"):
            for t in next_tasks(s, p, who, limit=200):
                task = s.get(Task, t.task_id)
                wrong = next(lb for lb in LABELS if lb != task.prelabel)
                submit(s, t.task_id, who, wrong if task.reason == "audit" else task.prelabel)
        batch = s.get(Batch, rep.batch_id)
        assert batch.status in ("passed", "flagged")
        assert batch.qa["audit"]["accuracy"] == 0.0
        after = s.get(ModelVersion, rep.model_version_id).metrics["auto_accept"]
    assert after["global"] > auto["global"] or after["global"] == 1.01
    assert after["audits"][-1]["tightened"] is True
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        nxt = next_batch(s, p, settings, size=5, seed=1)
    assert nxt.n_auto_accepted == 0  # the broken promise stops auto-accept


def test_an_audit_item_people_cannot_agree_on_is_left_out_of_the_audit(settings, project_name,
                                                                       tmp_path):
    """Three annotators, three different answers on an audited item: it grades nothing."""
    rows = banking_rows("train", LABELS, 60, seed=3)
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        p.audit_share, p.confidence_threshold = 0.2, 0.5
        ingest_file(s, p, write_csv(tmp_path / "l.csv", rows[:320]), label_field="category")
        ingest_file(s, p, write_csv(tmp_path / "u.csv", rows[320:], fields=("text",)))
        train_model(s, p, settings, train=freeze_version(s, p))
        rep = next_batch(s, p, settings, size=10, seed=0)
    assert rep.reasons.get("audit", 0) >= 1
    from labelloop.store.models import Annotation

    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        for who in ("ana", "ben", "chen"):  # the team shares the batch: all three are known
            next_tasks(s, p, who, limit=4 if who != "chen" else 200)
        for _ in range(3):  # until the adjudicated audit tasks have their three answers
            for who in ("ana", "ben", "chen"):
                for t in next_tasks(s, p, who, limit=200):
                    task = s.get(Task, t.task_id)
                    n = len(s.scalars(select(Annotation).where(
                        Annotation.task_id == task.id)).all())
                    others = [lb for lb in LABELS if lb != task.prelabel]
                    # Audit answers: two different wrong labels, then the pre-label.
                    answer = ([*others[:2], task.prelabel][n] if task.reason == "audit"
                              else task.prelabel)
                    submit(s, t.task_id, who, answer)
        batch = s.get(Batch, rep.batch_id)
        assert batch.status != "open"
        audit = batch.qa["audit"]
        assert audit["unresolved"] == rep.reasons["audit"] and audit["n"] == 0
        assert audit["accuracy"] is None


def test_zero_shot_never_auto_accepts_and_unknown_strategy(settings, project_name, pool_csv):
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, pool_csv, label_field=None)
        rep = next_batch(s, p, settings, size=15, seed=0)
    assert rep.n_auto_accepted == 0 and rep.n_tasks == 15
    assert set(rep.reasons) <= {"safety-critical", "low-confidence", "calibration"}
    # the project's calibration_share (0.1) of the batch is drawn at random: 2 of 15
    assert rep.reasons.get("calibration") == 2


def test_bald_picks_from_the_pre_labelers_own_dropout_samples(settings, project_name, tmp_path):
    """``--strategy bald`` in the loop: the trained head as an MC-dropout model."""
    rows = banking_rows("train", LABELS, 60, seed=5)
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, write_csv(tmp_path / "l.csv", rows[:200]), label_field="category")
        ingest_file(s, p, write_csv(tmp_path / "u.csv", rows[200:], fields=("text",)))
        train_model(s, p, settings, train=freeze_version(s, p))
    picks, confidence = [], []
    for seed in (0, 0, 1):
        with open_session(settings.db_url) as s:
            p = get_project(s, project_name)
            rep = next_batch(s, p, settings, size=20, strategy="bald", auto_accept=False,
                             seed=seed)
            tasks = list(s.scalars(select(Task).where(Task.batch_id == rep.batch_id,
                                                      Task.reason == "low-confidence")))
            picks.append([t.item_id for t in sorted(tasks, key=lambda t: -t.score)])
            confidence.append([t.prelabel_confidence for t in tasks])
            pool = [pr.confidence for pr in s.scalars(select(Prediction).where(
                Prediction.model_version_id == rep.model_version_id))]
            s.rollback()  # the same pool again for the next seed
    assert rep.strategy == "bald" and len(picks[0]) >= 10
    assert picks[0] == picks[1]  # deterministic under a seed
    assert np.mean(confidence[0]) < np.mean(pool) - 0.1  # uncertain items, not the bulk
