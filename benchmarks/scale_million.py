"""A million items: ingest, next-batch through the API, and browsing, on PostgreSQL.

1. **ingest**: 1M short synthetic JSONL rows go in through the ingest job (run in this
   process, as ``labelloop ingest --job`` runs it): scan, then committed chunks. No
   embedding. Time, rows/s and this process's peak RSS.
2. **cache** (set-up, timed for the record): precomputed vectors (random unit 384-d rows)
   in the embedding cache for every item, and a trained classifier's probabilities
   (Dirichlet, 20 classes) stored as a pre-labeling job stores them (rows and blocks).
3. **next-batch**: a real server (``labelloop serve``, uvicorn) over that database;
   ``POST /projects/scale/batches {"size": 1000}`` over HTTP, end to end. First a server
   started with ``LABELLOOP_WARM_CACHES=false``: its first request reads the prediction
   blocks itself. Then a server as it starts by default: it reads them in a thread at
   start (``/health`` says when it is done: ``start_to_warm_s``); its first request after
   that, then warm ones. Each makes a batch of 1,000 tasks.
4. **browse**: ``GET /projects/scale/items`` and ``/tasks/all`` with filters (count and a
   page, and a page deep in the list): median of 5 after a warm-up.

    python benchmarks/scale_million.py [--rows 1000000] [--db postgres|sqlite]

Writes benchmarks/results/scale_million_<db>_<rows>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import create_engine, insert, select, text

from labelloop.access.projects import create_project
from labelloop.access.users import bootstrap_admin, create_token
from labelloop.core.enums import JobKind, JobStatus
from labelloop.core.settings import Settings
from labelloop.jobs.service import run_job, submit_job
from labelloop.prelabel.service import encoder_for, store_predictions
from labelloop.store.db import dispose_engines, open_session
from labelloop.store.models import Embedding, Item, ModelVersion, Project

RESULTS = Path(__file__).resolve().parent / "results"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
N_CLASSES, DIM = 20, 384
LABELS = [f"intent_{k:02d}" for k in range(N_CLASSES)]
WORDS = ("card payment refund transfer account balance pin limit delivery order "
         "cancel fee charge top-up cash exchange rate verify identity app").split()


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_rows(path: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(WORDS), size=(n, 6))
    with path.open("w") as fh:
        for i in range(n):
            words = " ".join(WORDS[j] for j in picks[i])
            fh.write(json.dumps({"text": f"ticket {i}: {words}", "id": f"t{i}"}) + "\n")


def ingest(settings: Settings, path: Path) -> dict[str, float]:
    with open_session(settings.db_url) as s:
        project = create_project(s, "scale", LABELS)
        job_id = submit_job(s, settings, JobKind.INGEST, by="bench", project=project,
                            enqueue=False, params={"path": str(path), "source": "bench.jsonl",
                                                   "text_field": "text", "id_field": "id"}).id
    start = time.perf_counter()
    status = run_job(settings, job_id)
    seconds = time.perf_counter() - start
    with open_session(settings.db_url, read_only=True) as s:
        n = s.scalar(select(Item.id).order_by(Item.id.desc()).limit(1))
    assert status == JobStatus.DONE, status
    return {"seconds": round(seconds, 1), "rows_per_s": round(n / seconds),
            "peak_rss_mib": round(rss_mib())}


def cache(settings: Settings, n: int) -> dict[str, float]:
    """Vectors and probabilities for every item, as a pre-labeling job leaves them."""
    key = encoder_for(settings).key
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    with open_session(settings.db_url) as s:
        project = s.scalar(select(Project).where(Project.name == "scale"))
        model = ModelVersion(project_id=project.id, name="bench-classifier", kind="classifier",
                             encoder=key)
        s.add(model)
        s.flush()
        project.active_model_id = model.id
        ids = list(s.scalars(select(Item.id).where(Item.project_id == project.id)
                             .order_by(Item.id)))
        model_id = model.id
    for begin in range(0, len(ids), 20_000):
        part = ids[begin:begin + 20_000]
        x = rng.standard_normal((len(part), DIM), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        probs = rng.dirichlet(np.full(N_CLASSES, 0.3), size=len(part))
        with open_session(settings.db_url) as s:
            s.execute(insert(Embedding), [
                {"item_id": i, "encoder": key, "dim": DIM, "vector": v.tobytes()}
                for i, v in zip(part, x, strict=True)])
            store_predictions(s, s.get(ModelVersion, model_id), part, probs, LABELS)
    return {"seconds": round(time.perf_counter() - start, 1), "n_items": len(ids)}


def serve(settings: Settings, port: int, *, warm: bool) -> tuple[subprocess.Popen, float]:
    """A fresh ``labelloop serve``; with ``warm``, wait until its start-up read of the pool
    predictions is done (``/health`` says ``"caches": "warm"``). Returns the process and the
    seconds from start to ready."""
    env = {**os.environ, "LABELLOOP_HOME": str(settings.home),
           "LABELLOOP_JOB_WORKER": "false", "HF_HUB_OFFLINE": "1",
           "LABELLOOP_WARM_CACHES": str(warm).lower()}
    if settings.database_url:
        env["LABELLOOP_DATABASE_URL"] = settings.database_url
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "labelloop.cli", "serve", "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            if health.status_code == 200 and (not warm or health.json()["caches"] == "warm"):
                return proc, time.perf_counter() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


def next_batches(client: httpx.Client, runs: int, seed: int = 0) -> list[float]:
    times = []
    for r in range(runs):
        start = time.perf_counter()
        resp = client.post("/projects/scale/batches", json={"size": 1000, "seed": seed + r},
                           timeout=600)
        times.append(round(time.perf_counter() - start, 3))
        assert resp.status_code == 201, resp.text
        assert resp.json()["n_tasks"] == 1000, resp.json()
    return times


def browse(client: httpx.Client) -> dict[str, object]:
    def timed(path: str, params: dict) -> dict[str, object]:
        client.get(path, params=params)  # warm-up
        times, body = [], None
        for _ in range(5):
            start = time.perf_counter()
            resp = client.get(path, params=params)
            times.append(time.perf_counter() - start)
            assert resp.status_code == 200, resp.text
            body = resp.json()
        return {"median_ms": round(1000 * statistics.median(times), 1),
                "max_ms": round(1000 * max(times), 1), "count": body["count"]}

    deep = client.get("/projects/scale/items", params={"limit": 1}).json()
    middle = int(deep["rows"][0]["item_id"]) + deep["count"] // 2
    return {
        "items, split=pool, 50 a page": timed("/projects/scale/items",
                                              {"split": "pool", "limit": 50}),
        "items, page at the middle": timed("/projects/scale/items",
                                           {"split": "pool", "limit": 50, "after": middle}),
        "items, one ingest batch": timed("/projects/scale/items",
                                         {"ingest_batch_id": 1, "limit": 50}),
        "tasks, status=open": timed("/projects/scale/tasks/all",
                                    {"status": "open", "limit": 50}),
        "tasks, reason=low-confidence, prelabel=intent_03": timed(
            "/projects/scale/tasks/all", {"reason": "low-confidence", "prelabel": "intent_03",
                                          "limit": 50}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--pg-admin", default=PG_ADMIN)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--keep", action="store_true", help="Keep the PostgreSQL database (its "
                    "name is printed) for --reuse")
    ap.add_argument("--reuse", metavar="DB", help="Measure on a database kept by --keep "
                    "(skips ingest and cache)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tmp = Path(tempfile.mkdtemp(prefix="scale-"))
    db_name = None
    if args.db == "postgres":
        db_name = args.reuse or f"scale_{uuid.uuid4().hex[:8]}"
        if not args.reuse:
            admin = create_engine(args.pg_admin, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{db_name}"'))
        url = args.pg_admin.rsplit("/", 1)[0] + f"/{db_name}"
        settings = Settings(home=tmp / "home", database_url=url, show_progress=False)
    else:
        settings = Settings(home=tmp / "home", show_progress=False)
    out: dict[str, object] = {"db": args.db, "rows": args.rows, "cpus": os.cpu_count(),
                              "python": platform.python_version()}
    try:
        if not args.reuse:
            path = tmp / "rows.jsonl"
            write_rows(path, args.rows)
            out["ingest"] = ingest(settings, path)
            print("ingest", out["ingest"], flush=True)
            path.unlink()
            out["cache"] = cache(settings, args.rows)
            print("cache", out["cache"], flush=True)
        if args.db == "postgres":
            with create_engine(settings.db_url, isolation_level="AUTOCOMMIT").connect() as c:
                c.execute(text("VACUUM ANALYZE"))  # what autovacuum does after a bulk load
        with open_session(settings.db_url) as s:
            token = create_token(s, bootstrap_admin(s), "bench")[1]
        dispose_engines(settings.db_url)
        port = 18000 + os.getpid() % 1000
        headers = {"Authorization": f"Bearer {token}"}
        # 1. a server that does not warm its caches: its first request reads everything
        server, ready = serve(settings, port, warm=False)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
                cold = next_batches(client, 1, seed=100)
        finally:
            server.terminate()
            server.wait(timeout=60)
        # 2. the default: the server reads the predictions at start, then serves
        server, ready = serve(settings, port, warm=True)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
                times = next_batches(client, args.runs)
                out["next_batch"] = {
                    "first_s_no_warm_up": cold[0], "start_to_warm_s": round(ready, 1),
                    "first_s": times[0], "warm_s": times[1:],
                    "warm_median_s": round(statistics.median(times[1:]), 3)}
                print("next-batch", out["next_batch"], flush=True)
                out["browse"] = browse(client)
                print("browse", json.dumps(out["browse"], indent=1), flush=True)
        finally:
            server.terminate()
            server.wait(timeout=60)
    finally:
        dispose_engines(settings.db_url)
        if args.keep:
            print("kept database", db_name)
        elif db_name is not None:
            with create_engine(args.pg_admin, isolation_level="AUTOCOMMIT").connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
    RESULTS.mkdir(exist_ok=True)
    target = RESULTS / f"scale_million_{args.db}_{args.rows}.json"
    if args.reuse and target.exists():  # keep the ingest figures of the run that made it
        out = {**json.loads(target.read_text()), **out}
    target.write_text(json.dumps(out, indent=2))
    print("wrote", target)


if __name__ == "__main__":
    main()
