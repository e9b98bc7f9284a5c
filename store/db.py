"""The one way to open the database: an engine per URL, sessions from one factory.

SQLite (the embedded default) serves many writers through WAL, a busy timeout and write
transactions that take the write lock when they begin (``BEGIN IMMEDIATE``): a transaction
that read first and wrote later could otherwise fail at once with "database is locked"
whatever the timeout. Read-only units of work begin deferred and never wait for writers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

import labelloop.store.immutability  # noqa: F401  (registers the append-only guards)

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30.0
READ_ONLY = "labelloop_read_only"  # execution option: a unit of work that never writes
DB_URL = "labelloop_db_url"  # session.info: the URL its factory was made for

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_factories: dict[tuple[str, bool], sessionmaker[Session]] = {}


def is_table(obj, name, type_, reflected, compare_to) -> bool:  # noqa: ANN001
    """Alembic's filter: views (``info["is_view"]``, made by hand in a migration) are not
    tables to create or compare."""
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return not (table is not None and table.info.get("is_view"))


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Bring the schema at ``url`` to the newest Alembic revision."""
    command.upgrade(alembic_config(url), "head")


def _sqlite_engine(url: str) -> Engine:
    Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S,
                                              "check_same_thread": False},
                           pool_size=8, max_overflow=56)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # noqa: ANN001
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")  # a commit survives power loss, not only a kill
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.close()

    # SQLite lets one writer in at a time, and its busy handler sleeps in growing steps
    # (up to 100 ms) between tries: waiting writers wake late. Writers of this process
    # queue on a lock instead, handed over the moment the holder commits or rolls back.
    writer = threading.Lock()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # noqa: ANN001
        if conn.get_execution_options().get(READ_ONLY, False):
            conn.exec_driver_sql("BEGIN")
            return
        writer.acquire()
        conn.info["writer"] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release(conn)
            raise

    def _release(conn, *_args) -> None:  # noqa: ANN001
        if conn.info.pop("writer", False):
            writer.release()

    for name in ("commit", "rollback"):
        event.listen(engine, name, _release)

    @event.listens_for(engine.pool, "checkin")
    def _checkin(_dbapi_conn, record):  # noqa: ANN001 - a connection dropped mid-write
        if record.info.pop("writer", False):
            writer.release()

    return engine


def get_engine(url: str) -> Engine:
    """One engine per URL, migrated on first use."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            # No pre-ping (a round trip per checkout, three a request); connections are
            # recycled hourly instead, and a dropped one fails its request with a 503.
            engine = (_sqlite_engine(url) if url.startswith("sqlite")
                      else create_engine(url, pool_size=20, max_overflow=40,
                                         pool_recycle=3600))
            migrate(url)
            _engines[url] = engine
        return engine


def dispose_engines(url: str | None = None) -> None:
    """Close pooled connections and forget the engine of ``url`` (all when None): a dropped
    test database, a server that restarted."""
    with _lock:
        for key in [k for k in _engines if url is None or k == url]:
            _engines.pop(key).dispose()
        for key in [k for k in _factories if url is None or k[0] == url]:
            del _factories[key]


def session_factory(url: str, *, read_only: bool = False) -> sessionmaker[Session]:
    """The one session factory per URL, and per kind.

    Read-only units of work refuse to flush. On SQLite they begin deferred (never waiting
    for the writer); on PostgreSQL they run in autocommit, which spares the BEGIN and the
    ROLLBACK round trips and sees what a READ COMMITTED transaction would: a fresh snapshot
    per statement."""
    factory = _factories.get((url, read_only))
    if factory is None:
        engine = get_engine(url)
        if read_only:
            options: dict[str, object] = {READ_ONLY: True}
            if engine.dialect.name == "postgresql":
                options["isolation_level"] = "AUTOCOMMIT"
            engine = engine.execution_options(**options)
        factory = _factories.setdefault((url, read_only), sessionmaker(
            bind=engine, expire_on_commit=False, info={READ_ONLY: read_only, DB_URL: url}))
    return factory


@event.listens_for(Session, "before_flush")
def _refuse_read_only_flush(session: Session, _context, _instances) -> None:  # noqa: ANN001
    if session.info.get(READ_ONLY):
        raise RuntimeError("a read-only unit of work (a GET, or a check) tried to write")


def is_read_only(session: Session) -> bool:
    return bool(session.info.get(READ_ONLY))


@contextmanager
def write_beside(session: Session) -> Iterator[Session]:
    """A short unit of work of its own, on ``session``'s database: what a long read-only
    unit of work (a training job computing) must keep now, such as cached vectors, without
    holding SQLite's one writer for the rest of it."""
    with open_session(session.info[DB_URL]) as w:
        yield w


@contextmanager
def open_session(url: str, *, read_only: bool = False) -> Iterator[Session]:
    """A unit of work: commit on success, roll back everything on error. ``read_only``
    units never take SQLite's write lock and keep nothing (closing ends their transaction;
    what they loaded stays readable)."""
    session = session_factory(url, read_only=read_only)()
    try:
        yield session
        if not read_only:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
