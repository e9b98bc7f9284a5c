"""Export a large dataset version to Parquet (or JSONL/CSV/HF) and report time and peak memory.

Builds a project with ``--rows`` labeled items frozen into one version (synthetic short
texts, inserted directly), then exports it in a child process and reads that process's
peak RSS. Flat memory shows as the same peak at 100k and at 1M rows.

    python benchmarks/export_parquet.py --rows 1000000 [--db postgres] [--format parquet]

Writes benchmarks/results/export_<format>_<db>_<rows>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, insert, select, text

from labelloop.access.projects import create_project
from labelloop.store.db import dispose_engines, open_session
from labelloop.store.models import DatasetRow, DatasetVersion, IngestBatch, Item

RESULTS = Path(__file__).resolve().parent / "results"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
LABELS = ["billing", "delivery", "refund", "account"]
CHILD = """
import sys, time, json
from pathlib import Path
from labelloop.store.db import open_session
from labelloop.store.models import DatasetVersion
from labelloop.versions.service import export_version
url, version_id, fmt, out = sys.argv[1:5]
t0 = time.perf_counter()
with open_session(url, read_only=True) as s:
    export_version(s, s.get(DatasetVersion, int(version_id)), fmt, Path(out))
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def build(url: str, n: int) -> int:
    """A project whose one version holds ``n`` labeled rows; its id."""
    with open_session(url) as s:
        project = create_project(s, "export-bench", LABELS)
        source = IngestBatch(project_id=project.id, source="bench", source_digest="-",
                             split="pool")
        s.add(source)
        s.flush()
        version = DatasetVersion(project_id=project.id, name="big", split="train",
                                 digest="-" * 64, n_rows=n, label_counts={})
        s.add(version)
        s.flush()
        for start in range(0, n, 50_000):
            stop = min(n, start + 50_000)
            s.execute(insert(Item), [
                {"project_id": project.id, "text": f"customer message number {i} about an "
                 f"order", "content_hash": f"{i:064d}", "split": "pool", "source": "bench",
                 "source_row": i, "ingest_batch_id": source.id, "meta": {}}
                for i in range(start, stop)])
            ids = s.scalars(select(Item.id).where(Item.source_row >= start,
                                                  Item.source_row < stop))
            s.execute(insert(DatasetRow), [
                {"version_id": version.id, "item_id": item_id, "label": LABELS[item_id % 4],
                 "lineage": {"source": "bench", "batch_id": 1, "annotators": ["ana", "ben"],
                             "guideline_version": 1}} for item_id in ids])
        return version.id


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--format", dest="fmt", choices=("parquet", "jsonl", "csv", "hf"),
                    default="parquet")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="labelloop-export-"))
    pg_name = None
    if args.db == "sqlite":
        url = f"sqlite:///{home / 'labelloop.db'}"
    else:
        pg_name = f"labelloop_export_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{pg_name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{pg_name}"
    t0 = time.perf_counter()
    version_id = build(url, args.rows)
    dispose_engines(url)
    setup_s = time.perf_counter() - t0
    out = home / f"export.{args.fmt}"
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, str(version_id), args.fmt,
                              str(out)], stdout=subprocess.PIPE, env=os.environ)
    stdout, _ = child.communicate()
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    seconds = json.loads(stdout)["seconds"]
    size = sum(p.stat().st_size for p in ([out] if out.is_file() else out.rglob("*")))
    if pg_name:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE "{pg_name}" WITH (FORCE)'))
    result = {"rows": args.rows, "db": args.db, "format": args.fmt,
              "export_seconds": round(seconds, 1), "rows_per_second": round(args.rows / seconds),
              "peak_rss_mib": round(peak_kib / 1024), "output_mib": round(size / 2**20, 1),
              "setup_seconds": round(setup_s, 1)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"export_{args.fmt}_{args.db}_{args.rows}.json").write_text(
        json.dumps(result, indent=2))
    print(f"export {args.rows:,} rows to {args.fmt} from {args.db}: {seconds:.1f} s "
          f"({result['rows_per_second']:,} rows/s), peak RSS {result['peak_rss_mib']} MiB, "
          f"{result['output_mib']} MiB written (setup {setup_s:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
