"""Ingest: every format, row checks with row and reason, dedup, idempotence, store intact."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from labelloop.access.projects import get_project
from labelloop.core.errors import ValidationError
from labelloop.core.settings import Settings
from labelloop.ingest.service import ingest_file
from labelloop.store.db import open_session
from labelloop.store.models import IngestBatch, Item


def count_items(settings: Settings) -> int:
    with open_session(settings.db_url) as s:
        return s.scalar(select(func.count(Item.id))) or 0


def test_csv_ingest_is_idempotent_and_keeps_provenance(settings, project_name, pool_csv):
    with open_session(settings.db_url) as s:
        rep = ingest_file(s, get_project(s, project_name), pool_csv, label_field=None,
                          licence="CC-BY-4.0")
    assert rep.n_rows == 240 and rep.n_accepted + rep.n_duplicates == 240
    assert rep.n_rejected == 0
    n = count_items(settings)
    with open_session(settings.db_url) as s:
        again = ingest_file(s, get_project(s, project_name), pool_csv, label_field=None)
        item = s.scalar(select(Item).limit(1))
        assert item.licence == "CC-BY-4.0" and item.source == str(pool_csv)
        assert item.source_row >= 1 and len(item.content_hash) == 64
    assert again.n_accepted == 0 and again.n_duplicates == again.n_rows
    assert count_items(settings) == n


def test_bad_rows_are_rejected_with_row_and_reason(settings, project_name, tmp_path):
    lines = [
        json.dumps({"text": "where is my new card?", "label": "card_arrival"}),
        json.dumps({"text": "   ", "label": "card_arrival"}),
        json.dumps({"label": "card_arrival"}),
        json.dumps({"text": "what is the rate?", "label": "no_such_label"}),
        "{not json",
        json.dumps({"text": "x" * 30_000}),
        json.dumps({"text": "where  is my new\tcard? "}),
        json.dumps({"text": 42}),
    ]
    path = tmp_path / "items.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"text": "caf\xe9"}\n')
    with open_session(settings.db_url) as s:
        rep = ingest_file(s, get_project(s, project_name), path)
    reasons = {r.row: (r.field, r.reason) for r in rep.rejections}
    assert rep.n_accepted == 1
    assert rep.n_duplicates == 1  # row 7 differs from row 1 only in whitespace
    assert reasons[2] == ("text", "text is empty")
    assert reasons[3] == ("text", "missing field 'text'")
    assert reasons[4] == ("label", "unknown label 'no_such_label'")
    assert reasons[5][1].startswith("invalid JSON")
    assert "limit is 20000" in reasons[6][1]
    assert "must be a string" in reasons[8][1]
    assert "undecodable" in reasons[9][1]
    with open_session(settings.db_url) as s:
        batch = s.scalar(select(IngestBatch))
        assert batch.n_rejected == 7 and len(batch.rejections) == 7


def test_parquet_and_hf_datasets_folder(settings, project_name, tmp_path):
    from datasets import Dataset

    rows = [{"text": f"question number {i} about my card", "label": "card_arrival"}
            for i in range(5)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet")
    Dataset.from_list([{"text": f"hf row {i} exchange", "label": "exchange_rate"}
                       for i in range(4)]).save_to_disk(str(tmp_path / "hf"))
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        assert ingest_file(s, p, tmp_path / "a.parquet").n_accepted == 5
        rep = ingest_file(s, p, tmp_path / "hf", split="eval")
        assert rep.n_accepted == 4
        labels = {it.given_label for it in s.scalars(select(Item).where(Item.split == "eval"))}
    assert labels == {"exchange_rate"}


@pytest.mark.parametrize("content,name,message", [
    (b"PAR1garbage", "broken.parquet", "cannot read Parquet"),
    (b"a,b\n1,2\n", "wrong.csv", "no row of .* can be used .*missing field 'text'"),
    (b"hello", "notes.txt", "unknown file type"),
    (b"", "empty.csv", "has no rows"),
    (b"text\n", "header-only.csv", "has no rows"),
    (b'{"text": ""}\n[1]\n', "all-bad.jsonl", "no row of .* can be used"),
    (b'{"text": "' + b"[" * 100_000 + b'"}\n' + b"[" * 100_000 + b"\n", "deep.jsonl",
     "no row of .* can be used"),
])
def test_unreadable_input_raises_and_leaves_store_unchanged(settings, project_name, pool_csv,
                                                             tmp_path, content, name, message):
    with open_session(settings.db_url) as s:
        ingest_file(s, get_project(s, project_name), pool_csv, label_field=None)
    before = count_items(settings)
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(ValidationError, match=message), open_session(settings.db_url) as s:
        ingest_file(s, get_project(s, project_name), bad)
    assert count_items(settings) == before
    with open_session(settings.db_url) as s:
        assert s.scalar(select(func.count(IngestBatch.id))) == 1


def test_missing_file_is_named(settings, project_name):
    with pytest.raises(ValidationError, match="no such file"), open_session(settings.db_url) as s:
        ingest_file(s, get_project(s, project_name), Path("/nope/items.csv"))


def test_hostile_rows_are_rejected_by_row_and_text_is_kept_as_given(settings, project_name,
                                                                   tmp_path):
    """A 5 MB CSV field, a 10 MB extra field, a lone surrogate, JSON nested past Python's
    recursion limit: each is a rejected row with its number; good rows keep their text."""
    big = "x" * 5_000_000
    csv_path = tmp_path / "big.csv"
    csv_path.write_text(f"text,note\n{big},a\n\"my  card\tarrived\",ok\n", encoding="utf-8")
    jsonl = tmp_path / "odd.jsonl"
    jsonl.write_text("\n".join([
        '{"text": "lone \\ud800 surrogate"}',
        '{"text": "fine", "extra": "' + "y" * 10_000_000 + '"}',
        '{"text": "nested", "deep": ' + "[" * 50_000 + "]" * 50_000 + "}",
        '{"text": "kept"}']), encoding="utf-8")
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        rep = ingest_file(s, p, csv_path)
        rep2 = ingest_file(s, p, jsonl)
    assert [(r.row, r.field) for r in rep.rejections] == [(1, "text")]
    assert rep.n_accepted == 1
    assert [r.row for r in rep2.rejections] == [1, 2, 3]
    assert "surrogate" in rep2.rejections[0].reason and "10000" in rep2.rejections[1].reason
    assert "nested too deeply" in rep2.rejections[2].reason
    with open_session(settings.db_url) as s:
        texts = sorted(s.scalars(select(Item.text)))
    assert texts == ["kept", "my  card\tarrived"]  # stored exactly as given
