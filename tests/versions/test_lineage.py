"""Lineage both ways, version diffs with who and why, lineage completeness, versioned
guidelines, and migration 0009 filling the provenance columns of older versions."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import select, update

from labelloop.access.projects import (
    get_guideline,
    get_project,
    guideline_versions,
    update_guideline,
)
from labelloop.core.errors import NotFoundError, ValidationError
from labelloop.ingest.checks import content_hash
from labelloop.quality.review import send_for_rereview
from labelloop.store.db import alembic_config, dispose_engines, open_session
from labelloop.store.models import (
    Annotation,
    DatasetRow,
    DatasetVersion,
    Item,
    ModelVersion,
)
from labelloop.versions.lineage import (
    diff_versions,
    item_lineage,
    lineage_completeness,
    model_items,
    model_lineage,
)
from labelloop.versions.service import freeze_version
from tests.versions.test_versions import run_batch, truth  # noqa: F401  (fixture)

PROVENANCE = ("label_event_id", "batch_id", "origin", "guideline_version",
              "prelabel_model_id")


def _rows(s, version_id):  # noqa: ANN001, ANN202
    return {r.item_id: tuple(getattr(r, c) for c in PROVENANCE) for r in s.scalars(
        select(DatasetRow).where(DatasetRow.version_id == version_id))}


def test_lineage_both_ways_and_a_diff_that_says_who_and_why(settings, project_name, truth):  # noqa: F811
    with open_session(settings.db_url) as s:
        get_project(s, project_name).overlap = 2
    first = run_batch(settings, project_name, lambda who, text: truth[content_hash(text)])
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        update_guideline(s, p, "v2: top-ups are their own thing", note="split top-ups",
                         labels=["top_up_limits"], by="lead")
        v1 = freeze_version(s, p)
        # the model that trained on v1 (its row is all a lineage query needs)
        model = ModelVersion(project_id=p.id, name="classifier/train-v1", kind="classifier",
                             encoder="e", train_version_id=v1.id, mlflow_run_id="run-1")
        s.add(model)
        s.flush()
        model_id, v1_id = model.id, v1.id
    # ben now answers one way under guideline 2, and a second batch comes in
    second = run_batch(settings, project_name, lambda who, text: truth[content_hash(text)],
                       seed=1)
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        relabel = s.scalar(select(DatasetRow.item_id).where(DatasetRow.version_id == v1_id)
                           .order_by(DatasetRow.item_id).limit(1))
        rereview = send_for_rereview(s, p, [relabel], required=1).id
    with open_session(settings.db_url) as s:
        from labelloop.annotate.service import next_tasks
        from labelloop.loop import submit_answer

        p = get_project(s, project_name)
        (task,) = [t for t in next_tasks(s, p, "chen", limit=10) if t.item_id == relabel]
        other = next(lb for lb in p.labels if lb != task.prelabel)
        submit_answer(s, task.task_id, "chen", other)
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        v2 = freeze_version(s, p)
        model = s.get(ModelVersion, model_id)

        # model -> version -> batches, annotators, guideline versions
        up = model_lineage(s, p, model)
        train = up["train"]
        assert train["version"]["id"] == v1_id and up["evaluation"] is None
        assert [b["batch_id"] for b in train["batches"]] == [first]
        assert train["annotators"] == {"ana": 10, "ben": 10}
        assert train["guideline_versions"] == {"1": 10}
        assert train["origins"] == {"human": 10}
        assert train["prelabel_models"][0]["n_rows"] == 10
        assert up["lineage_completeness"] == 1.0
        page = model_items(s, p, model, annotator="ben", limit=4)
        assert page.count == 10 and len(page.rows) == 4 and page.next_after is not None
        row = page.rows[0]
        assert row["event"]["annotators"] == ["ana", "ben"] and row["batch_id"] == first
        rest = model_items(s, p, model, annotator="ben", after=page.next_after, limit=50)
        assert len(rest.rows) == 6 and rest.next_after is None
        assert model_items(s, p, model, annotator="nobody").count == 0
        assert model_items(s, p, model, guideline_version=2).count == 0

        # item -> versions -> models, with its whole history
        down = item_lineage(s, p, relabel)
        assert [v["id"] for v in down["versions"]] == [v1_id, v2.id]
        assert down["models"] == [{"id": model_id, "name": "classifier/train-v1",
                                   "mlflow_run_id": "run-1", "as": "train"}]
        assert [e["reason"] for e in down["label_history"]] == ["answer", "re-review"]
        assert down["label_history"][-1]["to_label"] == other
        assert {a["annotator"] for a in down["answers"]} == {"ana", "ben", "chen"}
        assert down["item"]["ingest_batch"]["source"].endswith("p.csv")

        # the diff names the re-review and who made it
        d = diff_versions(s, s.get(DatasetVersion, v1_id), v2)
        assert (d["added"], d["removed"], d["relabeled"]) == (10, 0, 1)
        (changed,) = d["relabeled_items"]
        assert changed["item_id"] == relabel and changed["to"] == other
        assert changed["why"]["reason"] == "re-review" and changed["why"]["annotators"] == ["chen"]
        assert changed["why"]["batch_id"] == rereview
        assert {a["why"]["batch_id"] for a in d["added_items"]} == {second}
        assert {a["why"]["guideline_version"] for a in d["added_items"]} == {2}

        done = lineage_completeness(s, v2)
        assert done == {"n_rows": 20, "n_complete": 20, "share": 1.0, "missing": {}}
        # a model without its run is not whole
        assert lineage_completeness(s, v2, ModelVersion(mlflow_run_id=None))["share"] == 0.0

        with pytest.raises(NotFoundError):
            item_lineage(s, p, 10**9)
        with pytest.raises(ValidationError, match="limit"):
            model_items(s, p, model, limit=0)


def test_guidelines_are_versioned_documents(settings, project_name):
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        assert [g.version for g in guideline_versions(s, p)] == [1]
        update_guideline(s, p, "Card arrival covers delivery now.", note="delivery",
                         labels=["card_arrival"], by="lead")
        with pytest.raises(ValidationError, match="nope"):
            update_guideline(s, p, "x", labels=["nope"], by="lead")
    with open_session(settings.db_url, read_only=True) as s:
        p = get_project(s, project_name)
        assert p.guideline_version == 2
        g = get_guideline(s, p)
        assert (g.version, g.text, g.note, g.labels, g.created_by) == (
            2, "Card arrival covers delivery now.", "delivery", ["card_arrival"], "lead")
        first = get_guideline(s, p, 1)
        assert first.version == 1 and first.text != g.text and first.labels == []
        with pytest.raises(NotFoundError):
            get_guideline(s, p, 3)


def test_migration_0009_fills_the_provenance_of_older_versions(settings, project_name,
                                                               truth):  # noqa: F811
    """Downgraded to 0008 (provenance only in each row's JSON) and upgraded again, the
    columns hold what ``freeze_version`` wrote."""
    with open_session(settings.db_url) as s:
        get_project(s, project_name).overlap = 2
    run_batch(settings, project_name, lambda who, text: truth[content_hash(text)])
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        s.execute(update(Item).where(Item.id == s.scalar(select(Item.id).limit(1)))
                  .values(given_label="card_arrival"))
        version_id = freeze_version(s, p).id
        before = _rows(s, version_id)
    assert all(v[0] is not None for v in before.values() if v[2] != "given")
    dispose_engines(settings.db_url)
    command.downgrade(alembic_config(settings.db_url), "0008")
    command.upgrade(alembic_config(settings.db_url), "head")
    with open_session(settings.db_url, read_only=True) as s:
        assert _rows(s, version_id) == before
        assert s.scalar(select(Annotation.id).limit(1)) is not None
        assert [g.version for g in guideline_versions(s, get_project(s, project_name))] == [1]
