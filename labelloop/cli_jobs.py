"""``labelloop jobs ...`` and ``labelloop worker``: long work, followed with a progress bar."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from labelloop.cli_common import (
    Home,
    console,
    local_admin,
    print_json,
    remote,
    run_or_exit,
    settings_for,
)

jobs_app = typer.Typer(help="Long work (pre-labeling, ...) run as jobs: list, follow, cancel.",
                       no_args_is_help=True)
ENDED = ("done", "failed", "cancelled")
JobId = Annotated[int, typer.Argument(min=1, max=2**63 - 1)]
ProjectOpt = Annotated[str | None, typer.Option(help="The job's project (needed with "
                                                "--server)")]


def _jobs_path(project: str | None, rest: str = "", where: str = "--project") -> str:
    """The project's jobs path on the server; with --server the project must be named."""
    from labelloop.core.errors import ValidationError
    from labelloop.remote import part

    if project is None:
        raise ValidationError("with --server, name the job's project", where=where)
    return f"/projects/{part(project)}/jobs{rest}"


def job_dict(job: Any) -> dict[str, Any]:
    import json

    from labelloop.jobs.service import describe

    return json.loads(json.dumps(describe(job), default=str))


def follow(read: Callable[[], dict[str, Any]], label: str, poll_s: float = 0.25,
           ) -> dict[str, Any]:
    """Show a job's progress (done / total, ETA) until it ends; the job as it ended."""
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task(label, total=None)
        while True:
            job = read()
            bar.update(task, completed=job["done"], total=job["total"],
                       description=f"{label} [{job['status']}]")
            if job["status"] in ENDED:
                return job
            time.sleep(poll_s)


def _ended(job: dict[str, Any]) -> None:
    """Print the job; a failed or cancelled one ends the command with exit code 1."""
    print_json(job)
    if job["status"] != "done":
        raise typer.Exit(1)


def run_here(kind: str, project: str, home: Home, *, route: str | None = None,
             body: dict[str, Any] | None = None,
             params: Callable[[Any, Any], dict[str, Any]] | None = None,
             detach: bool = False) -> None:
    """Start a job: on --server by POSTing ``body`` to the project's ``route`` (default
    ``kind``), else as a local job row run in this process (killed, a server's worker
    resumes it later), or only queued with --detach. ``params(session, project)`` checks
    the input and gives the local job's parameters."""
    from labelloop.access.projects import get_project
    from labelloop.core.enums import JobKind
    from labelloop.jobs.service import get_job, run_job, submit_job
    from labelloop.store.db import open_session

    if (server := remote()) is not None:
        from labelloop.remote import part

        job = server.call("POST", f"/projects/{part(project)}/{route or kind}", json=body)
        if detach:
            print_json(job)
            return
        path = f"/projects/{part(project)}/jobs/{job['id']}"
        _ended(follow(lambda: server.call("GET", path), kind))
        return
    settings = settings_for(home)
    with open_session(settings.db_url) as s:
        p = get_project(s, project)
        job_id = submit_job(s, settings, JobKind(kind), by=local_admin(s), project=p,
                            params=params(s, p) if params is not None else None,
                            enqueue=detach).id
    if detach:
        with open_session(settings.db_url, read_only=True) as s:
            print_json(job_dict(get_job(s, job_id)))
        return
    worker = threading.Thread(target=run_job, args=(settings, job_id), daemon=True)
    worker.start()

    def read() -> dict[str, Any]:
        with open_session(settings.db_url, read_only=True) as s:
            return job_dict(get_job(s, job_id))

    job = follow(read, kind)
    worker.join()
    _ended(read() if job["status"] in ENDED else job)


@jobs_app.command("list")
def list_cmd(project: Annotated[str | None, typer.Argument()] = None,
             limit: int = 20, home: Home = None) -> None:
    """Recent jobs, newest first (of one project, or all)."""
    from labelloop.access.projects import get_project
    from labelloop.jobs.service import list_jobs
    from labelloop.store.db import open_session

    def go() -> None:
        if (server := remote()) is not None:
            print_json(server.call("GET", _jobs_path(project, where="project"),
                                   params={"limit": limit}))
            return
        with open_session(settings_for(home).db_url, read_only=True) as s:
            p = get_project(s, project) if project is not None else None
            print_json([job_dict(j) for j in list_jobs(s, p, limit)])

    run_or_exit(go)


@jobs_app.command("show")
def show_cmd(job_id: JobId, project: ProjectOpt = None,
             watch: Annotated[bool, typer.Option(help="Follow it with a progress bar until "
                                                 "it ends")] = False,
             home: Home = None) -> None:
    """A job's state and progress."""
    from labelloop.jobs.service import get_job
    from labelloop.store.db import open_session

    def go() -> None:
        if (server := remote()) is not None:
            path = _jobs_path(project, f"/{job_id}")

            def read() -> dict[str, Any]:
                return server.call("GET", path)
        else:
            settings = settings_for(home)

            def read() -> dict[str, Any]:
                with open_session(settings.db_url, read_only=True) as s:
                    return job_dict(get_job(s, job_id))
        if watch:
            _ended(follow(read, f"job {job_id}"))
        else:
            print_json(read())

    run_or_exit(go)


@jobs_app.command("run")
def run_cmd(job_id: JobId, home: Home = None) -> None:
    """Run a queued job (or resume one whose worker died) in this process and print how
    it ended: what a server's worker does in a child process for the kinds named by
    LABELLOOP_JOB_PROCESS_KINDS. A job another worker is running is left to it."""
    from labelloop.jobs.queue import stop_on_sigterm
    from labelloop.jobs.service import get_job, run_job
    from labelloop.store.db import open_session

    def go() -> None:
        settings = settings_for(home)
        with open_session(settings.db_url, read_only=True) as s:
            get_job(s, job_id)  # 404-like exit 2 for a job that is not there
        stop_on_sigterm(settings)
        run_job(settings, job_id)
        with open_session(settings.db_url, read_only=True) as s:
            print_json(job_dict(get_job(s, job_id)))

    run_or_exit(go)


@jobs_app.command("cancel")
def cancel_cmd(job_id: JobId, project: ProjectOpt = None, home: Home = None) -> None:
    """Cancel a job: a queued one at once, a running one at its next chunk."""
    from labelloop.access import audit
    from labelloop.core.enums import AuditAction
    from labelloop.jobs.service import cancel_job, get_job
    from labelloop.store.db import open_session

    def go() -> None:
        if (server := remote()) is not None:
            print_json(server.call("POST", _jobs_path(project, f"/{job_id}/cancel")))
            return
        with open_session(settings_for(home).db_url) as s:
            job = cancel_job(s, get_job(s, job_id))
            audit.record(s, local_admin(s), AuditAction.CANCEL_JOB, project_id=job.project_id,
                         target=f"job {job.id}")
            print_json(job_dict(job))

    run_or_exit(go)


def worker(threads: Annotated[int, typer.Option(min=1, max=64, help="Worker threads")] = 1,
           nice: Annotated[int, typer.Option(min=0, max=19, help="Lower this process's CPU "
                                             "priority by this much, so that a server on the "
                                             "same machine answers first")] = 19,
           home: Home = None) -> None:
    """Run jobs from the queue (LABELLOOP_QUEUE_URL, e.g. redis://127.0.0.1:6379/0) with
    huey's consumer, until stopped (Ctrl-C ends it after the running chunk)."""
    import os

    from labelloop.jobs.queue import queue_for
    from labelloop.jobs.service import recover

    if nice:
        os.nice(nice)
    settings = settings_for(home)
    huey = queue_for(settings)
    recover(settings)
    console.print(f"labelloop worker: {threads} thread(s) on {settings.queue}")
    huey.create_consumer(workers=threads, worker_type="thread").run()
