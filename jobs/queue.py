"""The job queue: huey, over a SQLite file by default and over Redis by configuration.

Why huey: one maintained library with both storages labelloop needs. A SQLite file keeps the
embedded default free of servers: ``labelloop serve`` runs a worker thread over it. Redis
serves production, where ``labelloop worker`` runs huey's own consumer (worker threads,
signal handling) in processes of its own, on this machine or others. The messages carry only
job ids; a job's state and progress live in the database (``jobs.service``), so the API
reads them like any other row, whichever storage the queue uses.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey

from labelloop.core.errors import ValidationError
from labelloop.core.settings import Settings, settings_env

log = logging.getLogger("labelloop.jobs")
TASK = "labelloop.run_job"
_lock = threading.RLock()  # start_worker holds it while the worker looks up its queue
_queues: dict[str, tuple[Huey, Any]] = {}  # url -> (huey, the job task: calling it enqueues)
_workers: dict[str, ThreadWorker] = {}
_stopping: set[str] = set()  # queues whose in-process worker is shutting down


def stopping(settings: Settings) -> bool:
    """True while this process's worker for ``settings.queue`` shuts down: a running job
    hands itself back at its next chunk."""
    return settings.queue in _stopping


def queue_for(settings: Settings) -> Huey:
    """The huey instance for ``settings.queue`` (one per URL), its job task registered."""
    return _queue(settings)[0]


def _queue(settings: Settings) -> tuple[Huey, Any]:
    """The task runs jobs with the settings of the first caller for that URL: a server's,
    or the ``labelloop worker`` process's own."""
    url = settings.queue
    with _lock:
        found = _queues.get(url)
        if found is None:
            from labelloop.jobs.service import run_job

            huey = _make(url)

            def run(job_id: int) -> None:
                if (isinstance(threading.current_thread(), ThreadWorker)
                        and _kind(settings, job_id) in settings.job_process_kinds):
                    run_in_child(settings, job_id)
                else:
                    run_job(settings, job_id)

            found = _queues[url] = (huey, huey.task(name=TASK)(run))
        return found


def _kind(settings: Settings, job_id: int) -> str | None:
    from labelloop.store.db import open_session
    from labelloop.store.models import Job

    with open_session(settings.db_url, read_only=True) as s:
        job = s.get(Job, job_id)
        return str(job.kind) if job is not None else None


def run_in_child(settings: Settings, job_id: int, grace_s: float = 30.0) -> int:
    """Run the job in a child process (``labelloop jobs run``) with these settings, and
    wait for it: the server's worker thread does this for CPU-bound kinds, so their Python
    never holds the GIL from the server's requests. The child inherits this thread's low
    priority. Told to stop, the thread asks the child to stop too (SIGTERM: a chunked job
    hands itself back at its next chunk, one without chunks runs on) and ends it after
    ``grace_s`` (SIGKILL: the job, left running, is resumed by the next worker, as after
    any crash). Returns the exit code."""
    env = os.environ | settings_env(settings) | {"LABELLOOP_JOB_WORKER": "false"}
    child = subprocess.Popen([sys.executable, "-m", "labelloop.cli", "jobs", "run",
                              str(job_id)], env=env, stdout=subprocess.DEVNULL)
    while True:
        try:
            return child.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            if stopping(settings):
                child.terminate()
                try:
                    return child.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    child.kill()
                    return child.wait()


def stop_on_sigterm(settings: Settings) -> None:
    """In a process that runs one job (``labelloop jobs run``): SIGTERM makes it hand the
    job back at its next chunk, as a stopping server's worker thread does."""
    import signal

    signal.signal(signal.SIGTERM, lambda *_: _stopping.add(settings.queue))


def _make(url: str) -> Huey:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey("labelloop", filename=str(path), results=False, fsync=True)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("labelloop", url=url, results=False)
    raise ValidationError(f"queue_url must be sqlite:///<file> or redis://..., got {url!r}",
                          where="queue_url")


def enqueue(settings: Settings, job_id: int) -> None:
    _queue(settings)[1](job_id)  # huey: calling a task enqueues it
    worker = _workers.get(settings.queue)
    if worker is not None:
        worker.wake()


class ThreadWorker(threading.Thread):
    """A worker thread inside ``labelloop serve``: takes messages from the queue and runs
    them with huey's own ``execute``, one at a time. Starting, it puts back the jobs the
    queue may have lost; then every ``recover_s`` those whose worker died
    (``jobs.service.recover``)."""

    def __init__(self, settings: Settings, *, idle_s: float = 1.0, recover_s: float = 15.0,
                 ) -> None:
        super().__init__(name="labelloop-job-worker", daemon=True)
        self.settings, self.huey = settings, queue_for(settings)
        self.idle_s, self.recover_s = idle_s, recover_s
        self._halt, self._wake = threading.Event(), threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = 30.0) -> None:
        self._halt.set()
        self._wake.set()
        self.join(timeout)

    def run(self) -> None:
        from labelloop.jobs.service import recover

        _yield_to_requests()
        next_sweep, first = 0.0, True
        while not self._halt.is_set():
            try:
                if time.monotonic() >= next_sweep:
                    recover(self.settings, queued=first)
                    next_sweep, first = time.monotonic() + self.recover_s, False
                task = self.huey.dequeue()
                if task is None:
                    self._wake.wait(self.idle_s)
                    self._wake.clear()
                    continue
                self.huey.execute(task)
            except Exception:  # keep serving: a bad message must not stop the worker
                log.exception("job worker")
                self._halt.wait(self.idle_s)


def _yield_to_requests(niceness: int = 19) -> None:
    """Lower this thread's CPU priority (Linux schedules threads one by one; the threads
    torch starts from here inherit it), so the server's request threads come first: a
    pre-labeling job inside ``labelloop serve`` uses the cores the requests leave idle.
    Measured with 50 annotators while a job ran (benchmarks/load_annotators.py
    --prelabel-items)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError):  # not Linux, or not allowed: run as is
        log.info("job worker: could not lower its priority")


def start_worker(settings: Settings) -> ThreadWorker:
    """The in-process worker for ``settings.queue``, started once per process."""
    with _lock:
        worker = _workers.get(settings.queue)
        if worker is None or not worker.is_alive():
            worker = _workers[settings.queue] = ThreadWorker(settings)
            worker.start()
        return worker


def stop_worker(settings: Settings) -> None:
    """Stop this process's worker; a job it is running goes back on the queue at its next
    chunk, for the next start (or another worker) to resume."""
    with _lock:
        worker = _workers.pop(settings.queue, None)
        _stopping.add(settings.queue)
    try:
        if worker is not None:
            worker.stop()
    finally:
        _stopping.discard(settings.queue)
