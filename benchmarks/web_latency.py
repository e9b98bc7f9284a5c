"""The workbench's next-item latency in a real browser, with 100k items in the project.

Set-up (as ``scale_million.py``): 100k synthetic JSONL rows through the ingest job, vectors
and a classifier's probabilities (Dirichlet, 20 classes) stored for every item as a
pre-labeling job stores them (a real MiniLM pass over 100k texts takes minutes on 2 CPUs
and does not change what the browser waits for), then ``labelloop serve`` (uvicorn, its
job worker on) and a batch of ``--answers + 50`` tasks through the API.

Then headless Chromium (Debian's, driven by Playwright) signs in as an annotator, opens the
workbench and answers ``--answers`` tasks with the Enter key. Three figures per answer:

- **in page**: from the key's handler to the next task painted (the page's own clock:
  ``performance.now()`` at the key, then the first animation frame after the new task is
  in the DOM);
- **seen from outside**: from Playwright's key press to the new task id observed in the
  DOM (adds the DevTools round trips);
- **answer committed**: the answer's POST as the browser timed it (Resource Timing), i.e.
  until the server said 201 after its commit. The page shows the next task while that
  request is in flight.

    python benchmarks/web_latency.py [--items 100000] [--answers 200] [--think-ms 300]
                                     [--db sqlite|postgres]

Writes benchmarks/results/web_latency_<db>_<items>_think<ms>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_million import PG_ADMIN, cache, ingest, serve, write_rows  # noqa: E402

from labelloop.access.projects import get_project  # noqa: E402
from labelloop.access.users import add_member, bootstrap_admin, create_token, create_user  # noqa: E402
from labelloop.core.settings import Settings  # noqa: E402
from labelloop.store.db import dispose_engines, open_session  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PASSWORD = "bench-annotator-pass"


def pcts(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {"n": len(values), "p50_ms": round(float(np.percentile(a, 50)), 1),
            "p95_ms": round(float(np.percentile(a, 95)), 1),
            "max_ms": round(float(a.max()), 1), "mean_ms": round(float(a.mean()), 1)}


def browse_and_answer(url: str, answers: int, chromium: str, think_ms: int,
                      ) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_context(base_url=url).new_page()
        page.goto("/login")
        page.locator("#name").fill("bench-annotator")
        page.locator("#password").fill(PASSWORD)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        started = time.perf_counter()
        page.goto("/p/scale/work")
        page.locator("#task").wait_for()
        first_task_s = time.perf_counter() - started
        page.evaluate("performance.setResourceTimingBufferSize(10000)")  # default: 250
        outside = []
        for _ in range(answers):
            page.wait_for_timeout(think_ms)  # reading the item
            before = page.locator("#task-id").inner_text()
            t0 = time.perf_counter()
            page.keyboard.press("Enter")
            page.wait_for_function(
                f"document.getElementById('task-id').textContent !== '{before}'"
                " || !document.getElementById('empty').hidden", polling="raf")
            outside.append(1000 * (time.perf_counter() - t0))
        page.wait_for_function(f"window.labelloopTimings.length >= {answers}")
        inside = page.evaluate("window.labelloopTimings.slice()")
        page.evaluate("new Promise(r => setTimeout(r, 500))")  # the last answers land
        committed = page.evaluate(
            "performance.getEntriesByType('resource').filter(e => "
            "e.name.endsWith('/annotations')).map(e => e.duration)")
        browser.close()
    return {"first_task_s": round(first_task_s, 2), "in_page": pcts(inside[:answers]),
            "seen_from_outside": pcts(outside), "answer_committed": pcts(committed)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--answers", type=int, default=200)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--think-ms", type=int, default=300, help="Pause before each key (an "
                    "annotator reads the item; 0: keys as fast as the browser takes them)")
    ap.add_argument("--chromium", default=os.environ.get("LABELLOOP_CHROMIUM")
                    or shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tmp = Path(tempfile.mkdtemp(prefix="web-latency-"))
    db_name = None
    if args.db == "postgres":
        db_name = f"weblat_{uuid.uuid4().hex[:8]}"
        with create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT").connect() as c:
            c.execute(text(f'CREATE DATABASE "{db_name}"'))
        settings = Settings(home=tmp / "home", show_progress=False,
                            database_url=PG_ADMIN.rsplit("/", 1)[0] + f"/{db_name}")
    else:
        settings = Settings(home=tmp / "home", show_progress=False)
    out: dict[str, object] = {"db": args.db, "items": args.items, "answers": args.answers,
                              "think_ms": args.think_ms,
                              "cpus": os.cpu_count(), "python": platform.python_version()}
    server = None
    try:
        path = tmp / "rows.jsonl"
        write_rows(path, args.items)
        out["ingest"] = ingest(settings, path)
        out["cache"] = cache(settings, args.items)
        print("set-up", out["ingest"], out["cache"], flush=True)
        with open_session(settings.db_url) as s:
            token = create_token(s, bootstrap_admin(s), "bench")[1]
            user = create_user(s, "bench-annotator", "annotator", PASSWORD)
            add_member(s, get_project(s, "scale"), user, "annotator")
        dispose_engines(settings.db_url)
        port = 19000 + os.getpid() % 1000
        server, _ready = serve(settings, port, warm=True)
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
            r = c.post("/projects/scale/batches", json={"size": args.answers + 50, "seed": 1,
                                                        "auto_accept": False}, timeout=600)
            assert r.status_code == 201, r.text
        out["browser"] = browse_and_answer(url, args.answers, args.chromium, args.think_ms)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        dispose_engines(settings.db_url)
        if db_name:
            with create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT").connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        shutil.rmtree(tmp, ignore_errors=True)
    b = out["browser"]
    print(f"{'figure':<40}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for name in ("in_page", "seen_from_outside", "answer_committed"):
        row = b[name]
        print(f"{name + ' (n=' + str(row['n']) + ')':<40}{row['p50_ms']:>10}{row['p95_ms']:>10}"
              f"{row['max_ms']:>10}")
    print(f"first task after opening the workbench: {b['first_task_s']} s")
    RESULTS.mkdir(exist_ok=True)
    dest = RESULTS / f"web_latency_{args.db}_{args.items}_think{args.think_ms}.json"
    dest.write_text(json.dumps(out, indent=2))
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
