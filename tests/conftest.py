"""Shared fixtures: real SQLite files, a real MLflow store, the real MiniLM encoder."""

from __future__ import annotations

import csv
import os
import random
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from labelloop.access.projects import create_project
from labelloop.core.settings import Settings
from labelloop.demo import demo_data
from labelloop.store.db import dispose_engines, open_session


@pytest.fixture(autouse=True, scope="session")
def _onnx_cache(tmp_path_factory):
    """ONNX exports made by tests go to a temporary folder, not the user's cache. Fine-tuning
    is off unless a test turns it on (tests/training/test_finetuning.py): every test that
    trains on 100 labels would otherwise spend a minute or more in SetFit."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LABELLOOP_ONNX_CACHE", str(tmp_path_factory.mktemp("onnx")))
    mp.setenv("LABELLOOP_FINETUNE", "off")
    yield
    mp.undo()


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LABELS = ["card_arrival", "exchange_rate", "lost_or_stolen_card", "pin_blocked",
          "top_up_limits", "cancel_transfer", "age_limit", "change_pin"]
CRITICAL = ["lost_or_stolen_card"]


def banking_rows(split: str, labels: list[str], per_label: int, seed: int = 0) -> list[dict]:
    """A small, seeded slice of the packaged BANKING77 (works without ../shared)."""
    with (demo_data() / f"{split}.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["category"] in labels]
    rng = random.Random(seed)
    rng.shuffle(rows)
    out: list[dict] = []
    for label in labels:
        out += [r for r in rows if r["category"] == label][:per_label]
    rng.shuffle(out)
    return out


def write_csv(path: Path, rows: list[dict], fields: tuple[str, ...] = ("text", "category"),
              ) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(autouse=True)
def _fresh_process_settings():
    """``get_settings()`` is cached per process; a CLI test that sets LABELLOOP_HOME must
    not act on the home an earlier test left in that cache."""
    from labelloop.core.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow store for the session, its tables made here, once: no test's process
    (a training child a test stops, say) is ever the one that migrates it."""
    from labelloop.training.tracking import ensure_store

    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    ensure_store(uri)
    return uri


PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    try:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        conn = admin.connect()
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no server"
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}")
    name = f"labelloop_test_{uuid.uuid4().hex[:10]}"
    conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        yield url
    finally:
        dispose_engines(url)
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        conn.close()
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_pg_database() as url:
        yield url


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    """The suite's database: a SQLite file under the test's home (None), or a fresh
    PostgreSQL database per test when LABELLOOP_TEST_DB=postgres (``.ci/run`` does both);
    the CLI run by a test finds it through LABELLOOP_DATABASE_URL."""
    if os.environ.get("LABELLOOP_TEST_DB", "sqlite") == "postgres":
        with fresh_pg_database() as url:
            monkeypatch.setenv("LABELLOOP_DATABASE_URL", url)
            yield url
    else:
        yield None


@pytest.fixture
def settings(tmp_path: Path, mlflow_uri: str, database_url: str | None) -> Settings:
    return Settings(home=tmp_path / "home", mlflow_tracking_uri=mlflow_uri, show_progress=False,
                    database_url=database_url)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_process(settings: Settings, port: int, env: dict[str, str] | None = None,
                   ) -> subprocess.Popen:
    """``labelloop serve`` in a process of its own on ``port`` (to be killed), once it
    answers /health; ``env``: more LABELLOOP_* settings."""
    import sys
    import time

    import httpx

    full = os.environ | {"LABELLOOP_DATABASE_URL": settings.db_url,
                         "LABELLOOP_HOME": str(settings.home), "HF_HUB_OFFLINE": "1",
                         **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "labelloop.cli", "serve", "--port",
                             str(port)], env=full, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("the server did not start")


@contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    """A real labelloop server (uvicorn, its lifespan and job worker included) on
    127.0.0.1, in a thread of this process; yields its base URL."""
    import threading
    import time

    import uvicorn

    from labelloop.api.app import create_app

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started:
        assert time.time() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=60)


@pytest.fixture
def pool_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "pool.csv", banking_rows("train", LABELS, 30))


@pytest.fixture
def eval_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "eval.csv", banking_rows("test", LABELS, 12))


@pytest.fixture
def project_name(settings: Settings) -> str:
    with open_session(settings.db_url) as s:
        create_project(s, "bank", LABELS, critical_labels=CRITICAL, overlap=1,
                       critical_overlap=2, confidence_threshold=0.9, audit_share=0.05,
                       min_agreement=0.5)
    return "bank"


@pytest.fixture(scope="session")
def banking() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(X (300, 384) float32 unit rows, y (300,) int in 0..9, texts): 10 classes x 30 rows."""
    per_class: dict[str, list[str]] = {}
    with (demo_data() / "train.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            per_class.setdefault(row["category"], []).append(row["text"])
    names = sorted(per_class)[:10]
    texts = [t for name in names for t in per_class[name][:30]]
    y = np.repeat(np.arange(len(names)), 30)
    from labelloop.prelabel.encoders import load_encoder

    X = load_encoder().encode(texts, batch_size=64)  # noqa: N806
    return X, y, texts


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the PostgreSQL pass, run the tests that touch the database (those that use the
    ``settings`` fixture or a PostgreSQL URL) and whose outcome may depend on it; the pure
    ones, and those marked ``sqlite_only``, ran on the SQLite pass."""
    if os.environ.get("LABELLOOP_TEST_DB", "sqlite") != "postgres":
        return
    keep = [i for i in items if {"database_url", "pg_url"} & set(getattr(i, "fixturenames", ()))
            and i.get_closest_marker("sqlite_only") is None]
    dropped = [i for i in items if i not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
