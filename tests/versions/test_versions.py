"""Versions: gated batches only, stable digests, immutability, exports in three formats."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from labelloop.access.projects import get_project
from labelloop.annotate.service import next_tasks
from labelloop.core.errors import ImmutableVersionError, QualityGateError
from labelloop.ingest.checks import content_hash
from labelloop.ingest.service import ingest_file
from labelloop.loop import submit_answer as submit
from labelloop.quality.service import resolve_batch
from labelloop.selection.service import next_batch
from labelloop.store.db import open_session
from labelloop.store.models import Batch, DatasetRow, DatasetVersion, Item
from labelloop.versions.lineage import diff_versions
from labelloop.versions.service import export_version, freeze_version
from tests.conftest import LABELS, banking_rows, write_csv


def run_batch(settings, project_name, answer, size=10, seed=0) -> int:
    with open_session(settings.db_url) as s:
        rep = next_batch(s, get_project(s, project_name), settings, size=size, seed=seed)
    for who in ("ana", "ben"):
        with open_session(settings.db_url) as s:
            for t in next_tasks(s, get_project(s, project_name), who, limit=100):
                submit(s, t.task_id, who, answer(who, t.text))
    return rep.batch_id


@pytest.fixture
def truth(tmp_path, settings, project_name):
    rows = banking_rows("train", LABELS, 30)
    with open_session(settings.db_url) as s:
        ingest_file(s, get_project(s, project_name),
                    write_csv(tmp_path / "p.csv", rows, fields=("text",)))
    return {content_hash(r["text"]): r["category"] for r in rows}


def test_bad_batch_is_held_back_until_resolved(settings, project_name, truth):
    with open_session(settings.db_url) as s:
        get_project(s, project_name).overlap = 2
    good = run_batch(settings, project_name, lambda who, text: truth[content_hash(text)])
    # Second batch: "ben" answers at random, so agreement collapses.
    import random

    rnd = random.Random(1)
    bad = run_batch(settings, project_name, lambda who, text: truth[content_hash(text)]
                    if who == "ana" else rnd.choice(LABELS), seed=1)
    with open_session(settings.db_url) as s:
        assert s.get(Batch, good).status == "passed"
        b = s.get(Batch, bad)
        assert b.status == "flagged" and "krippendorff_alpha" in b.gate_reason
        v1 = freeze_version(s, get_project(s, project_name))
        assert v1.batch_ids == [good] and v1.n_rows == 10
    with pytest.raises(QualityGateError, match="flagged"), open_session(settings.db_url) as s:
        freeze_version(s, get_project(s, project_name), include_batches=[bad])
    with open_session(settings.db_url) as s:
        resolve_batch(s, s.get(Batch, bad), "reviewer-1", note="checked by hand")
        v2 = freeze_version(s, get_project(s, project_name))
        assert v2.batch_ids == [good, bad] and v2.parent_id == v1.id
        assert diff_versions(s, v1, v2)["added"] == v2.n_rows - v1.n_rows


def test_digest_is_stable_and_versions_are_immutable(settings, project_name, truth, tmp_path,
                                                     monkeypatch):
    run_batch(settings, project_name, lambda who, text: truth[content_hash(text)])
    with open_session(settings.db_url) as s:
        v = freeze_version(s, get_project(s, project_name))
        same = freeze_version(s, get_project(s, project_name))
        assert same.id == v.id  # nothing changed: no copy
    with pytest.raises(ImmutableVersionError), open_session(settings.db_url) as s:
        s.get(DatasetVersion, v.id).name = "renamed"
    with pytest.raises(ImmutableVersionError), open_session(settings.db_url) as s:
        s.delete(s.scalar(select(DatasetRow).limit(1)))
    with open_session(settings.db_url) as s:
        v = s.get(DatasetVersion, v.id)
        assert v.name == "train-v1" and len(list(s.scalars(select(DatasetRow)))) == v.n_rows
        paths = {fmt: export_version(s, v, fmt, tmp_path / f"out.{fmt}")
                 for fmt in ("jsonl", "parquet", "csv", "hf")}
        n_items = len(list(s.scalars(select(Item))))
        # streamed in chunks: the same rows whatever the chunk, a row group per chunk
        import labelloop.versions.service as versions

        monkeypatch.setattr(versions, "EXPORT_CHUNK", 7)
        small = export_version(s, v, "parquet", tmp_path / "small.parquet")
        small_jsonl = export_version(s, v, "jsonl", tmp_path / "small.jsonl")
    rows = [json.loads(x) for x in paths["jsonl"].read_text().splitlines()]
    assert len(rows) == v.n_rows < n_items
    assert all(r["lineage"]["guideline_version"] == 1 and r["lineage"]["annotators"]
               for r in rows)
    table = pq.read_table(paths["parquet"])
    assert table.num_rows == v.n_rows
    assert json.loads(table.schema.metadata[b"labelloop"])["digest"] == v.digest
    assert pq.ParquetFile(small).num_row_groups == -(-v.n_rows // 7)
    assert pq.read_table(small).equals(table)
    assert small_jsonl.read_text() == paths["jsonl"].read_text()
    import csv

    with paths["csv"].open(newline="", encoding="utf-8") as fh:
        from_csv = list(csv.DictReader(fh))
    assert [(int(r["item_id"]), r["text"], r["label"], json.loads(r["lineage"]))
            for r in from_csv] == [(r["item_id"], r["text"], r["label"], r["lineage"])
                                   for r in rows]
    from datasets import load_from_disk

    hf = load_from_disk(str(paths["hf"]))
    assert len(hf) == v.n_rows and hf["item_id"] == [r["item_id"] for r in rows]
    assert not list(tmp_path.glob(".export-*"))  # its work folder is gone
