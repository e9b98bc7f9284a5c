"""50 annotators at once over HTTP on 127.0.0.1, for a bounded time, on SQLite or PostgreSQL.

A real server (``labelloop serve``, uvicorn) runs in a child process over a fresh database
holding one open batch of ``--tasks`` tasks that each need ``--overlap`` answers. Each
simulated annotator signs in (GET /users/me: the one Argon2 check of their token, timed on
its own), then loops: ask for tasks (POST /tasks/next), answer each one (with an
Idempotency-Key), until the time is up or no task is left. Afterwards the database is read
back and checked:

- every acknowledged answer (2xx) is stored exactly once, and nothing else is stored;
- no task has more answers, or more holders, than its overlap;
- no task was handed to anyone after it had closed;
- no response was a 5xx.

Each annotator spends a random time on a task before answering (``--think-s``, mean 1 s:
fast for a person); ``--think-s 0`` drives the server flat out, to find its capacity.
Prints p50/p95/p99 of sign-in, next-task and submit and the answers per second, and writes
benchmarks/results/load_annotators_<db>[_flat_out].json.

With ``--prelabel-items N`` a second project holds N pool items, and a pre-labeling job over
them (real MiniLM, on the same two cores) is started on the server just before the
annotators: their latency is measured while it runs (the JSON says how many items the job
embedded during the window, and whether it was still running at its end).

    python benchmarks/load_annotators.py --db sqlite   [--annotators 50 --seconds 30]
    python benchmarks/load_annotators.py --db postgres [--pg-admin URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import create_engine, func, insert, select, text

from labelloop.access.projects import create_project
from labelloop.access.users import add_member, create_token, create_user
from labelloop.core.enums import Role
from labelloop.store.db import dispose_engines, open_session
from labelloop.store.models import Annotation, Assignment, Batch, IngestBatch, Item, Task

RESULTS = Path(__file__).resolve().parent / "results"
LABELS = ["billing", "delivery", "refund", "account"]
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_bulk(url: str, n_items: int, n_labeled: int = 0) -> str:
    """Project "bulk" with ``n_items`` pool items, the first ``n_labeled`` of them labeled
    (the label follows the text's first word) and frozen in version v1; returns an admin
    token."""
    from labelloop.access.users import bootstrap_admin
    from labelloop.versions.service import freeze_version

    rng = random.Random(7)
    words = ("card payment refund transfer account balance pin limit delivery order cancel "
             "fee charge top-up cash exchange rate verify identity app").split()
    with open_session(url) as s:
        project = create_project(s, "bulk", LABELS)
        source = IngestBatch(project_id=project.id, source="bulk", source_digest="-",
                             split="pool")
        s.add(source)
        s.flush()
        s.execute(insert(Item), [
            {"project_id": project.id, "text": f"ticket {i}: " + " ".join(
                rng.choice(words) for _ in range(12)), "content_hash": f"b{i:063d}",
             "split": "pool", "source": "bulk", "source_row": i,
             "ingest_batch_id": source.id, "meta": {}} for i in range(n_items)])
        if n_labeled:
            for item in s.scalars(select(Item).where(Item.project_id == project.id)
                                  .order_by(Item.id).limit(n_labeled)):
                item.given_label = LABELS[len(item.text.split()[2]) % len(LABELS)]
            s.flush()
            freeze_version(s, project, name="v1")
        return create_token(s, bootstrap_admin(s), "bench-admin")[1]


def make_world(url: str, n_tasks: int, overlap: int, n_annotators: int) -> list[str]:
    """A project with one open batch of ``n_tasks`` tasks; returns one token per annotator."""
    with open_session(url) as s:
        project = create_project(s, "bench", LABELS, overlap=overlap)
        source = IngestBatch(project_id=project.id, source="bench", source_digest="-",
                             split="pool")
        s.add(source)
        s.flush()
        items = [Item(project_id=project.id, text=f"customer message {i}",
                      content_hash=f"{i:064d}", split="pool", source="bench", source_row=i,
                      ingest_batch_id=source.id) for i in range(n_tasks)]
        s.add_all(items)
        batch = Batch(project_id=project.id, strategy="bench")
        s.add(batch)
        s.flush()
        s.add_all(Task(batch_id=batch.id, item_id=it.id, reason="low-confidence",
                       required=overlap, prelabel=LABELS[i % 4], prelabel_confidence=0.5,
                       score=float(-i)) for i, it in enumerate(items))
        tokens = []
        for k in range(n_annotators):
            user = create_user(s, f"annotator-{k:02d}", Role.ANNOTATOR)
            add_member(s, project, user, Role.ANNOTATOR)
            tokens.append(create_token(s, user, "bench")[1])
    return tokens


class Tally:
    def __init__(self) -> None:
        self.sign_in_ms: list[float] = []
        self.next_ms: list[float] = []
        self.submit_ms: list[float] = []
        self.status: Counter[int] = Counter()
        self.acked: dict[int, tuple[int, str]] = {}  # answer id -> (task id, annotator)
        self.offers: list[tuple[int, float]] = []  # (task id, when the request was sent)


async def annotator(client: httpx.AsyncClient, token: str, name: str, deadline: float,
                    tally: Tally, rng: random.Random, think_s: float) -> None:
    try:
        await _annotate(client, token, name, deadline, tally, rng, think_s)
    except httpx.HTTPError as exc:  # no answer at all: a transport failure, counted as 599
        tally.status[599] += 1
        print(f"{name}: {type(exc).__name__}: {exc}", file=sys.stderr)


async def _annotate(client: httpx.AsyncClient, token: str, name: str, deadline: float,
                    tally: Tally, rng: random.Random, think_s: float) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    await asyncio.sleep(rng.uniform(0.0, 2 * think_s))  # people do not all start at once
    # Signing in: the server checks the token's Argon2 hash once, then knows it. Timed on
    # its own: a person signs in once a day, then fetches and answers all day.
    t0 = time.perf_counter()
    r = await client.get("/users/me", headers=headers)
    tally.sign_in_ms.append((time.perf_counter() - t0) * 1000)
    tally.status[r.status_code] += 1
    while time.time() < deadline:
        sent = time.time()
        t0 = time.perf_counter()
        r = await client.post("/projects/bench/tasks/next", params={"limit": 5},
                              headers=headers)
        tally.next_ms.append((time.perf_counter() - t0) * 1000)
        tally.status[r.status_code] += 1
        if r.status_code != 200:
            await asyncio.sleep(0.05)
            continue
        tasks = r.json()
        if not tasks:
            return
        for t in tasks:
            tally.offers.append((t["task_id"], sent))
            await asyncio.sleep(rng.uniform(0.0, 2 * think_s))  # reading, choosing
            key = uuid.uuid4().hex
            t0 = time.perf_counter()
            r = await client.post(f"/projects/bench/tasks/{t['task_id']}/annotations",
                                  json={"label": rng.choice(LABELS)},
                                  headers=headers | {"Idempotency-Key": key})
            tally.submit_ms.append((time.perf_counter() - t0) * 1000)
            tally.status[r.status_code] += 1
            if r.status_code in (200, 201):
                tally.acked[r.json()["id"]] = (t["task_id"], name)
            if time.time() >= deadline:
                return


async def drive(base: str, tokens: list[str], seconds: float,
                think_s: float) -> tuple[Tally, float]:
    tally = Tally()
    # Idle connections are dropped before uvicorn's 5 s keep-alive ends, so no request is
    # sent on a connection the server is closing at that moment (a client-side race).
    limits = httpx.Limits(max_connections=len(tokens) + 5, keepalive_expiry=3.0)
    async with httpx.AsyncClient(base_url=base, timeout=60.0, limits=limits) as client:
        start = time.time()
        await asyncio.gather(*(annotator(client, tok, f"annotator-{k:02d}", start + seconds,
                                         tally, random.Random(k), think_s)
                               for k, tok in enumerate(tokens)))
        return tally, time.time() - start


def check(url: str, tally: Tally) -> dict[str, int]:
    """Read the database back: what was acknowledged is there once; no over-assignment; no
    task handed out after it closed."""
    with open_session(url, read_only=True) as s:
        stored = dict(s.execute(select(Annotation.id, Annotation.task_id)).all())
        per_task = dict(s.execute(select(Annotation.task_id, func.count(Annotation.id))
                                  .group_by(Annotation.task_id)).all())
        holders = dict(s.execute(select(Assignment.task_id, func.count(Assignment.id))
                                 .group_by(Assignment.task_id)).all())
        required = dict(s.execute(select(Task.id, Task.required)).all())
        submitted = s.execute(select(Assignment.task_id, Assignment.submitted_at)
                              .where(Assignment.submitted_at.is_not(None))).all()
    closed_at: dict[int, list[datetime]] = {}
    for task_id, at in submitted:
        closed_at.setdefault(task_id, []).append(at if at.tzinfo else at.replace(tzinfo=UTC))
    close_time = {t: sorted(v)[required[t] - 1].timestamp()
                  for t, v in closed_at.items() if len(v) >= required[t]}
    reoffered = sum(1 for task_id, sent in tally.offers
                    if task_id in close_time and sent > close_time[task_id] + 0.001)
    return {
        "acknowledged": len(tally.acked),
        "stored": len(stored),
        "acknowledged_missing": sum(1 for a in tally.acked if a not in stored),
        "stored_not_acknowledged": sum(1 for a in stored if a not in tally.acked),
        "over_answered_tasks": sum(1 for t, n in per_task.items() if n > required[t]),
        "over_assigned_tasks": sum(1 for t, n in holders.items() if n > required[t]),
        "reoffered_after_close": reoffered,
        "closed_tasks": len(close_time),
    }


def pct(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "n": 0}
    a = np.asarray(values)
    return {"p50": round(float(np.percentile(a, 50)), 1),
            "p95": round(float(np.percentile(a, 95)), 1),
            "p99": round(float(np.percentile(a, 99)), 1), "n": len(values)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--annotators", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--overlap", type=int, default=3)
    ap.add_argument("--think-s", type=float, default=1.0,
                    help="mean seconds a person spends on a task before answering (uniform "
                         "on [0, 2x]); 0: every annotator answers flat out")
    ap.add_argument("--workers", type=int, default=1, help="server worker processes")
    ap.add_argument("--pg-admin", default=PG_ADMIN)
    ap.add_argument("--prelabel-items", type=int, default=0,
                    help="run a pre-labeling job over this many items during the load")
    ap.add_argument("--train-items", type=int, default=0,
                    help="run a training job on this many labeled items (their vectors "
                         "not cached yet) during the load")
    ap.add_argument("--worker-process", action="store_true",
                    help="run jobs in a `labelloop worker` process beside the server, not "
                         "in the server's worker thread")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="labelloop-load-"))
    pg_name = None
    if args.db == "sqlite":
        url = f"sqlite:///{home / 'labelloop.db'}"
    else:
        pg_name = f"labelloop_load_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.pg_admin, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{pg_name}"'))
        url = args.pg_admin.rsplit("/", 1)[0] + f"/{pg_name}"
    tokens = make_world(url, args.tasks, args.overlap, args.annotators)
    if args.prelabel_items and args.train_items:
        ap.error("--prelabel-items or --train-items, not both")
    admin_token = (make_bulk(url, max(args.prelabel_items, args.train_items), args.train_items)
                   if args.prelabel_items or args.train_items else None)
    dispose_engines(url)

    port = free_port()
    env = os.environ | {"LABELLOOP_DATABASE_URL": url, "LABELLOOP_HOME": str(home),
                        "HF_HUB_OFFLINE": "1"}
    # faulthandler: `kill -USR1 <pid>` prints every thread's stack to server.log
    boot = ("import faulthandler, signal, sys; faulthandler.register(signal.SIGUSR1, "
            "all_threads=True); from labelloop.cli import app; sys.argv[0] = 'labelloop'; "
            "app()")
    if args.worker_process:
        env["LABELLOOP_JOB_WORKER"] = "false"
    server = subprocess.Popen([sys.executable, "-c", boot, "serve", "--port", str(port),
                               "--workers", str(args.workers)], env=env,
                              stdout=subprocess.DEVNULL,
                              stderr=open(home / "server.log", "w"))  # noqa: SIM115
    worker = (subprocess.Popen([sys.executable, "-m", "labelloop.cli", "worker"], env=env,
                               stdout=subprocess.DEVNULL,
                               stderr=open(home / "worker.log", "w"))  # noqa: SIM115
              if args.worker_process else None)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        job = None
        if admin_token is not None and args.prelabel_items:
            auth = {"Authorization": f"Bearer {admin_token}"}
            r = httpx.post(f"{base}/projects/bulk/prelabel", headers=auth, timeout=30)
            assert r.status_code == 202, r.text
            job_path = r.headers["Location"]
            while (job := httpx.get(f"{base}{job_path}", headers=auth).json())["done"] == 0:
                time.sleep(0.2)  # the job is running (the encoder loaded) before the load
            done_before = job["done"]
        elif admin_token is not None:
            auth = {"Authorization": f"Bearer {admin_token}"}
            r = httpx.post(f"{base}/projects/bulk/models", headers=auth, timeout=30,
                           json={"train_version": "v1"})
            assert r.status_code == 202, r.text
            job_path = r.headers["Location"]
            started = time.perf_counter()
            while (job := httpx.get(f"{base}{job_path}", headers=auth).json())[
                    "status"] == "queued":
                time.sleep(0.1)
        tally, wall = asyncio.run(drive(base, tokens, args.seconds, args.think_s))
        if admin_token is not None and args.prelabel_items:
            job = httpx.get(f"{base}{job_path}", headers=auth).json()
            job = {"items_embedded_during_load": job["done"] - done_before,
                   "still_running_at_end": job["status"] == "running",
                   "rate_per_s": job["rate_per_s"], "total": job["total"]}
        elif admin_token is not None:
            while (job := httpx.get(f"{base}{job_path}", headers=auth).json())[
                    "status"] in ("queued", "running"):
                time.sleep(0.2)
            job = {"kind": "train", "n_labeled": args.train_items, "status": job["status"],
                   "seconds_from_start": round(time.perf_counter() - started, 1),
                   "ended_within_load": job["status"] == "done" and
                   time.perf_counter() - started <= wall + 1,
                   "error": job.get("last_error")}
    finally:
        for proc in (server, worker):
            if proc is None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    checks = check(url, tally)
    dispose_engines(url)
    if pg_name:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE "{pg_name}" WITH (FORCE)'))
    n_5xx = sum(n for code, n in tally.status.items() if 500 <= code < 599)
    n_transport = tally.status.get(599, 0)
    result = {
        "db": args.db, "annotators": args.annotators, "seconds": round(wall, 1),
        "tasks": args.tasks, "overlap": args.overlap, "think_s": args.think_s,
        "workers": args.workers, ("train_job" if args.train_items else "prelabel_job"): job,
        "job_worker": "process" if args.worker_process else "thread in the server",
        "answers_per_second": round(len(tally.acked) / wall, 1),
        "sign_in_ms": pct(tally.sign_in_ms),
        "next_task_ms": pct(tally.next_ms), "submit_ms": pct(tally.submit_ms),
        "status": {str(k): v for k, v in sorted(tally.status.items())}, "n_5xx": n_5xx,
        "n_transport_errors": n_transport,
        **checks, "machine": f"{platform.processor() or platform.machine()}, "
                             f"{os.cpu_count()} cores",
    }
    RESULTS.mkdir(exist_ok=True)
    tag = ("" if args.think_s > 0 else "_flat_out") + \
        (f"_{args.workers}_workers" if args.workers > 1 else "") + \
        ("_during_prelabel" if args.prelabel_items else "") + \
        ("_during_training" if args.train_items else "") + \
        ("_worker_process" if args.worker_process else "")
    (RESULTS / f"load_annotators_{args.db}{tag}.json").write_text(json.dumps(result, indent=2))
    print(f"{args.db}: {args.annotators} annotators (think {args.think_s} s), "
          f"{result['seconds']} s, "
          f"{result['answers_per_second']} answers/s")
    for name in ("sign_in_ms", "next_task_ms", "submit_ms"):
        p = result[name]
        print(f"  {name:13s} p50 {p['p50']:7.1f}  p95 {p['p95']:7.1f}  p99 {p['p99']:7.1f}  "
              f"(n={p['n']})")
    print(f"  status {result['status']}")
    if job is not None:
        print(f"  {'training' if args.train_items else 'pre-label'} job during the load: {job}")
    print("  " + ", ".join(f"{k} {v}" for k, v in checks.items()) + f", 5xx {n_5xx}, "
          f"transport errors {n_transport}")
    ok = (n_5xx == 0 and n_transport == 0 and checks["acknowledged_missing"] == 0
          and checks["stored_not_acknowledged"] == 0 and checks["over_answered_tasks"] == 0
          and checks["over_assigned_tasks"] == 0 and checks["reoffered_after_close"] == 0)
    print("  invariants hold" if ok else "  INVARIANT BROKEN")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
