"""The regression scenario, end to end: a guideline change, a cohort that then labels one
class as another, a retrained model whose F1 falls, the lineage behind the fall, a
remediation target whose re-review fixes the labels, and the evaluation that closes it.

Real parts throughout: SQLite, the packaged MiniLM, an MLflow store, training as a job."""

from __future__ import annotations

from labelloop.access.projects import get_project, update_guideline
from labelloop.annotate.service import next_tasks
from labelloop.core.enums import JobKind, JobStatus
from labelloop.ingest.checks import content_hash
from labelloop.ingest.service import ingest_file
from labelloop.jobs.service import get_job, run_job, submit_job
from labelloop.loop import submit_answer
from labelloop.remediate.kpis import project_kpis
from labelloop.remediate.service import list_targets, rereview_target, target_dict
from labelloop.selection.service import next_batch, target_boost
from labelloop.store.db import open_session
from labelloop.store.models import Batch, ModelVersion
from labelloop.versions.lineage import model_items
from labelloop.versions.service import freeze_version
from tests.conftest import LABELS, banking_rows, write_csv

A, B = "card_arrival", "pin_blocked"  # the cohort labels A as B


def _answer_all(settings, name, who, answer):  # noqa: ANN001, ANN202
    """Each of ``who`` takes tasks (a page at a time) and answers until none is left."""
    for annotator in who:
        while True:
            with open_session(settings.db_url) as s:
                tasks = next_tasks(s, get_project(s, name), annotator, limit=100)
                for t in tasks:
                    submit_answer(s, t.task_id, annotator, answer(annotator, t.text))
            if not tasks:
                break


def _train(settings, name, version_id, eval_id) -> ModelVersion:  # noqa: ANN001
    with open_session(settings.db_url) as s:
        job = submit_job(s, settings, JobKind.TRAIN, by="lead", project=get_project(s, name),
                         params={"train_version": version_id, "eval_version": eval_id},
                         enqueue=False).id
    assert run_job(settings, job) == JobStatus.DONE
    with open_session(settings.db_url) as s:
        result = get_job(s, job).result
        model = s.get(ModelVersion, result["model_version_id"])
        s.expunge(model)
    return model


def test_a_cohort_regression_is_traced_remediated_and_closed(settings, project_name, tmp_path):
    pool = banking_rows("train", LABELS, 30)
    truth = {content_hash(r["text"]): r["category"] for r in pool}
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, write_csv(tmp_path / "pool.csv", pool, fields=("text",)))
        ingest_file(s, p, write_csv(tmp_path / "eval.csv", banking_rows("test", LABELS, 12)),
                    label_field="category", split="eval")
        eval_id = freeze_version(s, p, split="eval").id
        next_batch(s, p, settings, size=100, seed=1, auto_accept=False)
    right = lambda who, text: truth[content_hash(text)]  # noqa: E731
    _answer_all(settings, project_name, ("ana", "ben", "bo"), right)
    with open_session(settings.db_url) as s:
        v1 = freeze_version(s, get_project(s, project_name)).id
    m1 = _train(settings, project_name, v1, eval_id)
    assert m1.metrics["per_class"][A]["f1"] > 0.7

    # 1. A guideline change, then a cohort (cam, dee, eli) labels every A as B.
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        update_guideline(s, p, "v2: card questions go under the card's PIN", note="merge",
                         labels=[A, B], by="lead")
        report = next_batch(s, p, settings, size=200, seed=2, auto_accept=False)
        cohort_batch = report.batch_id
    _answer_all(settings, project_name, ("cam", "dee", "eli"),
                lambda who, text: B if truth[content_hash(text)] == A else right(who, text))
    with open_session(settings.db_url) as s:
        assert s.get(Batch, cohort_batch).status == "passed"  # the gate cannot see it
        v2 = freeze_version(s, get_project(s, project_name)).id

    # 2. The retrained model's F1 for A drops on the evaluation version.
    m2 = _train(settings, project_name, v2, eval_id)
    assert m2.metrics["per_class"][A]["f1"] < m1.metrics["per_class"][A]["f1"] - 0.2

    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        targets = {t.id: t for t in list_targets(s, p)}
        drop = next(t for t in targets.values() if t.kind == "f1-drop" and t.labels == [A])
        assert drop.model_id == m2.id and drop.action == "boost" and drop.owner == "lead"
        assert drop.baseline == m1.metrics["per_class"][A]["f1"]
        # 3. The lineage names the batch, the cohort and the guideline version behind it.
        behind = {(b["attribute"], str(b["value"])) for b in drop.evidence["behind"]}
        assert {("batch", str(cohort_batch)), ("annotator", "cam"), ("annotator", "dee"),
                ("guideline_version", "2")} <= behind
        assert not {("annotator", "ana"), ("annotator", "ben"), ("annotator", "bo")} & behind
        cohort_rows = model_items(s, p, s.get(ModelVersion, m2.id), label=B,
                                  guideline_version=2, batch_id=cohort_batch, annotator="cam")
        assert cohort_rows.count > 0 and all(
            truth[content_hash(r["text"])] in (A, B) for r in cohort_rows.rows)
        fix = next(t for t in targets.values()
                   if t.kind == "slice" and t.slice["attribute"] == "changes")
        assert fix.action == "re-review" and fix.status == "open"
        items = set(fix.evidence["item_ids"])
        mislabeled = {r["item_id"] for r in model_items(
            s, p, s.get(ModelVersion, m2.id), label=B, limit=500).rows
            if truth[content_hash(r["text"])] == A}
        assert len(items & mislabeled) >= 0.8 * len(mislabeled)  # it names the bad rows
        guideline = next(t for t in targets.values() if t.action == "guideline")
        assert guideline.slice == {"attribute": "guideline_version", "value": 2}
        # the default strategy now samples A and B more
        assert target_boost(s, p)[A] == 2.0

        # 4. The guideline is clarified, and re-review fixes the labels.
        update_guideline(s, p, "v3: a card that has not arrived is card_arrival", labels=[A],
                         by="lead")
        rereview_target(s, p, fix)
        fix_id, drop_id, guideline_id = fix.id, drop.id, guideline.id
    _answer_all(settings, project_name, ("eve", "fay", "gus"), right)
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        assert s.get(Batch, targets[fix_id].rereview_batch_id).status == "passed"
        v3 = freeze_version(s, p).id

    # 5. The next evaluation recovers, the targets close, and the time is recorded.
    m3 = _train(settings, project_name, v3, eval_id)
    assert m3.metrics["per_class"][A]["f1"] > m1.metrics["per_class"][A]["f1"] - 0.1
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        after = {t.id: target_dict(t) for t in list_targets(s, p)}
        for target_id in (drop_id, fix_id, guideline_id):
            t = after[target_id]
            assert t["status"] == "closed", t
            assert t["closed_by_model_id"] == m3.id and t["addressed_version_id"] == v3
            assert t["evaluation_to_remediation_seconds"] > 0
        # the boosts are no longer in force, and m3's review blames none of the re-review
        assert A not in target_boost(s, p)
        rereview_batch = targets[fix_id].rereview_batch_id
        for t in after.values():
            if t["model_id"] == m3.id:
                assert t["slice"].get("value") not in ("eve", "fay", "gus", rereview_batch), t

    # beside the KPIs: labels saved against random, replayed on the project's human labels
    with open_session(settings.db_url, read_only=True) as s:
        p = get_project(s, project_name)
        saved = project_kpis(s, p, replay=True)["labels_saved"]
        assert "labels_saved" not in project_kpis(s, p)  # only on request: it simulates
    assert saved["n_items"] >= 200 and saved["default"] is not None
    assert saved["saved"] == (saved["random"] - saved["default"]
                              if saved["random"] is not None else None)

