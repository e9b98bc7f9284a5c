"""Jobs: long work run outside the request that asked for it.

A job is a row in ``jobs`` (kind, parameters, state, progress). The queue (``jobs.queue``)
carries only its id. A worker claims the row, runs the job's runner and records the end.
A runner works in chunks, and each chunk commits its work together with the job's progress,
so the progress read over the API is what is on disk. Killed, a job keeps every committed
chunk; when its worker stops reporting for ``job_stale_s``, a worker takes it over and the
runner carries on from where the store says it stopped. A cancelled job stops at its next
chunk.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import event, or_, select
from sqlalchemy.orm import Session

from labelloop.core.enums import JobKind, JobStatus
from labelloop.core.errors import ConflictError, NotFoundError
from labelloop.core.names import shorten
from labelloop.core.settings import Settings
from labelloop.store.db import open_session
from labelloop.store.models import Job, Project, utcnow

log = logging.getLogger("labelloop.jobs")
FINAL = frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED})


class JobCancelled(Exception):
    """Raised inside a runner at its next report once cancellation was asked for."""


class JobTakenOver(Exception):
    """This worker went quiet too long and another took the job: stop, keep nothing."""


class JobInterrupted(Exception):
    """The worker is shutting down: the job goes back on the queue, its chunks kept."""


@dataclass(frozen=True)
class JobContext:
    """What a runner reports through: ``report`` records progress in the chunk's own unit
    of work, and stops the runner if the job was cancelled or taken over."""

    settings: Settings
    job_id: int
    attempt: int

    def report(self, session: Session, done: int, total: int | None = None, *,
               result: dict[str, Any] | None = None) -> None:
        """``result``: keys to merge into the job's result with this chunk (what a resumed
        run must find, such as the row it created)."""
        job = session.get(Job, self.job_id, with_for_update=True, populate_existing=True)
        if job is None or job.attempts != self.attempt or job.status != JobStatus.RUNNING:
            raise JobTakenOver(f"job {self.job_id} is no longer this worker's")
        if job.cancel_requested:
            raise JobCancelled
        job.done, job.heartbeat_at = done, utcnow()
        if total is not None:
            job.total = total
        if result:
            job.result = {**job.result, **result}
        from labelloop.jobs.queue import stopping

        if stopping(self.settings):  # after this chunk commits: hand the rest back
            session.commit()
            raise JobInterrupted


    def note(self, key: str, value: Any) -> None:
        """Append ``value`` to the job's ``result[key]`` now, in a commit of its own: what
        must be known even if the process dies the next moment (a run it started)."""
        with open_session(self.settings.db_url) as s:
            job = s.get(Job, self.job_id, with_for_update=True)
            if job is not None:
                job.result = {**job.result, key: [*job.result.get(key, []), value]}


Runner = Callable[[Settings, Job, JobContext], dict[str, Any]]
RUNNERS: dict[JobKind, Runner] = {}


def runner(kind: JobKind) -> Callable[[Runner], Runner]:
    def register(fn: Runner) -> Runner:
        RUNNERS[kind] = fn
        return fn

    return register


def submit_job(session: Session, settings: Settings, kind: JobKind, *, by: str,
               project: Project | None = None, params: dict[str, Any] | None = None,
               enqueue: bool = True) -> Job:
    """A new queued job; it is put on the queue once this unit of work commits (a job
    the queue lost is put back by :func:`recover`). ``enqueue=False``: the caller runs it
    itself (:func:`run_job`; the local CLI)."""
    job = Job(kind=kind, project_id=project.id if project is not None else None,
              params=params or {}, created_by=by, status=JobStatus.QUEUED)
    session.add(job)
    session.flush()
    job_id = job.id
    if not enqueue:
        return job

    def put_on_queue(_session: Session) -> None:
        from labelloop.jobs.queue import enqueue as put

        try:
            put(settings, job_id)
        except Exception:  # the row is committed: recover() puts it on the queue later
            log.exception("job %s: could not reach the queue", job_id)

    event.listen(session, "after_commit", put_on_queue, once=True)
    return job


def get_job(session: Session, job_id: int, project: Project | None = None) -> Job:
    job = session.get(Job, job_id)
    if job is None or (project is not None and job.project_id != project.id):
        raise NotFoundError(f"no job {job_id}", where="job_id")
    return job


def list_jobs(session: Session, project: Project | None = None, limit: int = 50) -> list[Job]:
    q = select(Job).order_by(Job.id.desc()).limit(limit)
    if project is not None:
        q = q.where(Job.project_id == project.id)
    return list(session.scalars(q))


def cancel_job(session: Session, job: Job) -> Job:
    """A queued job is cancelled at once; a running one stops at its next chunk."""
    if job.status in FINAL:
        raise ConflictError(f"job {job.id} has already ended ({job.status.value})",
                            where="job_id")
    job.cancel_requested = True
    if job.status == JobStatus.QUEUED:
        job.status, job.finished_at = JobStatus.CANCELLED, utcnow()
    session.flush()
    return job


def run_job(settings: Settings, job_id: int) -> JobStatus | None:
    """Claim job ``job_id`` and run it to its end; what the worker does with a message.

    Nothing happens (None) when the job has ended, or runs under a worker that reported
    within ``job_stale_s``: a message may come twice."""
    with open_session(settings.db_url) as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is None or job.status in FINAL:
            return None
        fresh = utcnow() - timedelta(seconds=settings.job_stale_s)
        if job.status == JobStatus.RUNNING and job.heartbeat_at and job.heartbeat_at > fresh:
            return None
        job.status, job.attempts = JobStatus.RUNNING, job.attempts + 1
        job.started_at = job.heartbeat_at = utcnow()
        job.done_at_start, job.last_error = job.done, None
        attempt = job.attempts
        s.flush()
        s.expunge(job)
    import labelloop.jobs.runners  # noqa: F401  (registers what each kind does)

    ctx = JobContext(settings, job_id, attempt)
    try:
        result = RUNNERS[job.kind](settings, job, ctx)
    except JobTakenOver:
        log.warning("job %s: taken over by another worker", job_id)
        return None
    except JobInterrupted:
        _finish(settings, job_id, attempt, JobStatus.QUEUED)
        from labelloop.jobs.queue import enqueue

        enqueue(settings, job_id)
        return JobStatus.QUEUED
    except JobCancelled:
        return _finish(settings, job_id, attempt, JobStatus.CANCELLED)
    except Exception as exc:
        log.exception("job %s failed", job_id)
        return _finish(settings, job_id, attempt, JobStatus.FAILED,
                       error=f"{type(exc).__name__}: {shorten(str(exc), 2000)}")
    # which process ran it: a server's worker thread runs some kinds in a child process
    worker = {"worker": f"{socket.gethostname()}:{os.getpid()}"}
    return _finish(settings, job_id, attempt, JobStatus.DONE, result=result | worker)


def _finish(settings: Settings, job_id: int, attempt: int, status: JobStatus, *,
            result: dict[str, Any] | None = None, error: str | None = None) -> JobStatus | None:
    with open_session(settings.db_url) as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is None or job.attempts != attempt or job.status != JobStatus.RUNNING:
            return None  # another worker owns it now
        job.status, job.heartbeat_at = status, utcnow()
        job.finished_at = utcnow() if status in FINAL else None
        job.last_error = error
        if result is not None:
            job.result = {**job.result, **result}
        return status


def recover(settings: Settings, *, queued: bool = True) -> list[int]:
    """Put back on the queue the jobs it may have lost: running ones whose worker has been
    silent for ``job_stale_s`` (killed), and with ``queued`` the queued ones (a worker
    starting: their message may have been lost with the process that sent it). Safe to
    repeat: a second message for a job is a no-op."""
    from labelloop.jobs.queue import enqueue

    stale = utcnow() - timedelta(seconds=settings.job_stale_s)
    lost = (Job.status == JobStatus.RUNNING) & (Job.heartbeat_at < stale)
    with open_session(settings.db_url, read_only=True) as s:
        ids = list(s.scalars(select(Job.id).where(
            or_(lost, Job.status == JobStatus.QUEUED) if queued else lost).order_by(Job.id)))
    for job_id in ids:
        enqueue(settings, job_id)
    return ids


def describe(job: Job) -> dict[str, Any]:
    """A job as the API and the CLI show it: its row, with its progress figures."""
    fields = ("id", "kind", "status", "project_id", "created_by", "done", "total", "attempts",
              "cancel_requested", "last_error", "result", "created_at", "started_at",
              "heartbeat_at", "finished_at")
    return {**{name: getattr(job, name) for name in fields}, **progress_of(job)}


def progress_of(job: Job) -> dict[str, float | None]:
    """Rate (items/s over this attempt), ETA and fraction, from the job's counters."""
    rate = eta = None
    if job.started_at is not None and job.heartbeat_at is not None:
        seconds = (job.heartbeat_at - job.started_at).total_seconds()
        if seconds > 0 and job.done > job.done_at_start:
            rate = (job.done - job.done_at_start) / seconds
            if job.total is not None and job.status == JobStatus.RUNNING:
                eta = max(0.0, (job.total - job.done) / rate)
    fraction = job.done / job.total if job.total else (1.0 if job.status == JobStatus.DONE
                                                       else None)
    return {"fraction": fraction, "rate_per_s": rate, "eta_s": eta}


def wait(settings: Settings, job_id: int, *, timeout_s: float = 600.0,
         poll_s: float = 0.1) -> Job:
    """Block until the job ends (tests, the CLI's --wait); the job as it ended."""
    deadline = time.monotonic() + timeout_s
    while True:
        with open_session(settings.db_url, read_only=True) as s:
            job = get_job(s, job_id)
        if job.status in FINAL or time.monotonic() > deadline:
            return job
        time.sleep(poll_s)
