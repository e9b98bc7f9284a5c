"""What each kind of job does, in committed chunks (see ``jobs.service``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from labelloop.core.enums import AuditAction, JobKind
from labelloop.core.progress import Progress
from labelloop.core.settings import Settings
from labelloop.jobs.service import JobContext, JobInterrupted, JobTakenOver, runner
from labelloop.store.db import open_session
from labelloop.store.models import Job, Project


class _Tally:
    """A chunked job's progress: the first chunk counts the totals, later ones add what
    they did; ``record`` writes it in the chunk's own unit of work. ``after``: steps that
    follow the chunks, counted in the total (so the job reads 100% only once they are
    done)."""

    def __init__(self, ctx: JobContext, after: int = 0) -> None:
        self.ctx, self.done, self.total, self.n_new, self.counted = ctx, 0, 0, 0, False
        self.after = after

    def record(self, session: Session, new: int, n_items: int, n_done: int) -> None:
        if self.counted:
            self.done += new
        else:
            self.done, self.total, self.counted = n_done, n_items + self.after, True
        self.n_new += new
        self.ctx.report(session, self.done, self.total)


def _chunks(ctx: JobContext, step: Callable[[_Tally], int], after: int = 0) -> _Tally:
    """Run ``step(tally)`` (one chunk; it returns how many items it did) until nothing is
    left."""
    tally = _Tally(ctx, after)
    while True:
        new = step(tally)
        if tally.done >= tally.total - after or new == 0:
            return tally


@runner(JobKind.PRELABEL)
def prelabel(settings: Settings, job: Job, ctx: JobContext) -> dict[str, Any]:
    """Pre-label the project's pool, ``job_chunk`` items a unit of work: each chunk's
    predictions commit with the job's progress, and a rerun starts at the first item the
    active model has not predicted, so every item is predicted once. Each chunk embeds
    with the database let go (``prelabel.service.prelabel_chunk``)."""
    from labelloop.prelabel.service import PrelabelReport, prelabel_chunk

    splits = tuple(job.params.get("splits", ["pool"]))
    steps: list[PrelabelReport] = []

    def step(tally: _Tally) -> int:
        steps.append(prelabel_chunk(settings, job.project_id, limit=settings.job_chunk,
                                    splits=splits, count=not tally.counted,
                                    record=tally.record))
        return steps[-1].n_new

    tally = _chunks(ctx, step)
    seconds = sum(r.seconds for r in steps)
    return {"model_version_id": steps[-1].model_version_id, "model_name": steps[-1].model_name,
            "n_items": tally.total, "n_new": tally.n_new, "seconds": round(seconds, 3),
            "items_per_second": round(tally.n_new / seconds, 1) if seconds else 0.0}


@runner(JobKind.TRAIN)
def train(settings: Settings, job: Job, ctx: JobContext) -> dict[str, Any]:
    """Clear what an earlier, killed training of the project left (``training.orphans``),
    then train: the fitting, evaluation and MLflow run in a read-only unit of work (on
    SQLite the one writer stays free for annotators; vectors it computes are cached in
    short commits of their own), then the model's row commits with the job's progress."""
    from labelloop.core import failpoints
    from labelloop.remediate.review import review_model
    from labelloop.remediate.service import record_review
    from labelloop.training.orphans import RUNS_KEY, reconcile
    from labelloop.training.service import fit_model, install_model
    from labelloop.versions.service import get_version

    with open_session(settings.db_url) as s:
        project = s.get(Project, job.project_id)
        assert project is not None
        cleared = reconcile(s, project, settings, current_job=job.id)
        ctx.report(s, 0, 1)
    with open_session(settings.db_url, read_only=True) as s:
        project = s.get(Project, job.project_id)
        assert project is not None
        params = job.params
        evaluation = (get_version(s, project, params["eval_version"])
                      if params.get("eval_version") is not None else None)
        c = params.get("c")  # None: chosen out of fold with the recipe
        model = fit_model(s, project, settings,
                          train=get_version(s, project, params["train_version"]),
                          evaluation=evaluation, c=None if c is None else float(c),
                          job_id=job.id, on_run=lambda run_id: ctx.note(RUNS_KEY, run_id),
                          progress=_stages(ctx))
        review = review_model(s, project, model)
    with open_session(settings.db_url) as s:
        project = s.get(Project, job.project_id)
        assert project is not None
        install_model(s, project, model, settings=settings,
                      promote=bool(params.get("promote", True)))
        remediation = record_review(s, project, model, review, by=job.created_by)
        ctx.report(s, 1, 1)
        failpoints.hit("train.before-commit")
        return {"model_version_id": model.id, "mlflow_run_id": model.mlflow_run_id,
                "registered_version": model.registered_version,
                "accuracy": model.metrics.get("accuracy"),
                "macro_f1": model.metrics.get("macro_f1"), "cleared": cleared.to_dict(),
                "recipe": {k: (model.metrics.get("recipe") or {}).get(k)
                           for k in ("recipe", "reason", "scores")},
                "remediation": remediation}


def _stages(ctx: JobContext) -> Progress:
    """A training's progress as the job's ``result.stages``: each stage's name and size
    when it starts (a fine-tuning check and a new encoder's embedding take minutes)."""
    def stage(description: str, total: int) -> Callable[[int], None]:
        ctx.note(STAGES_KEY, {"stage": description, "total": total,
                              "at": datetime.now(UTC).isoformat(timespec="seconds")})
        return lambda n: None
    return stage


STAGES_KEY = "stages"


@runner(JobKind.QA)
def batch_qa(settings: Settings, job: Job, ctx: JobContext) -> dict[str, Any]:
    """A completed batch's QA and gate (``quality.service.close_batch``), in one unit of
    work with the job's progress: killed, it runs again from the start; a batch already
    closed is left as it is."""
    from labelloop.annotate.service import is_complete
    from labelloop.quality.service import close_batch
    from labelloop.store.models import Batch

    with open_session(settings.db_url) as s:
        batch = s.get(Batch, job.params["batch_id"], with_for_update=True)
        assert batch is not None
        ran = is_complete(s, batch)
        if ran:
            close_batch(s, batch)
        ctx.report(s, 1, 1)
        return {"batch_id": batch.id, "status": str(batch.status), "ran": ran,
                "gate_reason": batch.gate_reason}


@runner(JobKind.INGEST)
def ingest(settings: Settings, job: Job, ctx: JobContext) -> dict[str, Any]:
    """Ingest a large file: scan it whole first (a broken file, or one with no usable row,
    fails the job before anything is written; the scan counts the rows), then store it in
    committed chunks of ``settings.ingest_chunk`` rows, each with the job's progress
    (rows read). Resumed, it skips the rows its committed chunks read. An upload the API
    kept for the job is deleted once the job is done, failed or cancelled."""
    p = job.params
    path, source, fmt = Path(p["path"]), p["source"], p.get("format")
    try:
        out = _ingest(settings, job, ctx, path, source, fmt)
    except (JobInterrupted, JobTakenOver):
        raise  # resumed later, or by another worker: the upload is still needed
    except Exception:  # failed or cancelled: nothing will read the upload again
        if p.get("delete_after"):
            path.unlink(missing_ok=True)
        raise
    if p.get("delete_after"):
        path.unlink(missing_ok=True)
    return out


def _ingest(settings: Settings, job: Job, ctx: JobContext, path: Path, source: str,
            fmt: str | None) -> dict[str, Any]:
    from itertools import islice

    from labelloop.ingest.service import (
        Fields,
        begin_ingest,
        ingest_rows,
        rows_of,
        scan_rows,
    )
    from labelloop.store.models import IngestBatch

    p = job.params
    fields = Fields(p.get("text_field", "text"), p.get("label_field"), p.get("id_field"),
                    settings.max_text_chars)
    batch_id, done, total = job.result.get("ingest_batch_id"), job.done, job.total
    if batch_id is None:
        with open_session(settings.db_url) as s:
            project = s.get(Project, job.project_id)
            assert project is not None
            scan = scan_rows(project, rows_of(path, source, fmt), fields, source=source)
            batch = begin_ingest(s, project, path, source=source, split=p.get("split", "pool"),
                                 licence=p.get("licence"))
            batch_id, done, total = batch.id, 0, scan.n_rows
            ctx.report(s, 0, total, result={"ingest_batch_id": batch_id})
    rows = islice(rows_of(path, source, fmt), done, None)
    while chunk := list(islice(rows, settings.ingest_chunk)):
        with open_session(settings.db_url) as s:
            project = s.get(Project, job.project_id)
            batch = s.get(IngestBatch, batch_id)
            assert project is not None and batch is not None
            ingest_rows(s, project, batch, chunk, fields)
            done += len(chunk)
            ctx.report(s, done, total)
    with open_session(settings.db_url) as s:
        if s.get_bind().dialect.name == "postgresql":  # fresh statistics for the planner
            s.execute(text("ANALYZE items"))
        batch = s.get(IngestBatch, batch_id)
        assert batch is not None
        out = {"ingest_batch_id": batch.id, "source": batch.source, "n_rows": batch.n_rows,
               "n_accepted": batch.n_accepted, "n_duplicates": batch.n_duplicates,
               "n_rejected": batch.n_rejected, "rejections": batch.rejections[:100]}
    return out


@runner(JobKind.EMBED)
def embed(settings: Settings, job: Job, ctx: JobContext) -> dict[str, Any]:
    """Embed the project's items for ``params["encoder"]`` (default: the configured one),
    ``job_chunk`` items a unit of work; a rerun starts at the first item without a vector
    for that encoder, so each is embedded once."""
    from labelloop.prelabel.service import embed_chunk, encoder_named

    encoder = encoder_named(settings, job.params.get("encoder"))
    splits = tuple(job.params.get("splits", ["pool", "gold", "eval"]))
    tally = _chunks(ctx, lambda t: embed_chunk(settings, job.project_id, encoder,
                                               limit=settings.job_chunk, splits=splits,
                                               count=not t.counted, record=t.record).n_new)
    return {"encoder": encoder.key, "n_items": tally.total, "n_new": tally.n_new}


@runner(JobKind.EXPORT)
def export(settings: Settings, job: Job, ctx: JobContext) -> dict[str, Any]:
    """Write a dataset version to a file under ``settings.export_dir`` for download,
    streamed (flat memory), with progress every ``EXPORT_CHUNK`` rows. The file appears
    under its name only once complete (written as .part, then renamed); killed, the job
    starts the file again."""
    from labelloop.store.models import DatasetVersion
    from labelloop.versions.service import write_version

    fmt = job.params["format"]
    out = settings.export_dir / f"job-{job.id}.{fmt}"
    part = out.with_name(out.name + ".part")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open_session(settings.db_url, read_only=True) as s:
        version = s.get(DatasetVersion, job.params["version_id"])
        assert version is not None
        total, name = version.n_rows, version.name

        def progress(done: int) -> None:
            with open_session(settings.db_url) as w:
                ctx.report(w, done, total)

        with part.open("wb") as fh:
            write_version(s, version, fmt, fh, progress=progress)
    part.replace(out)
    with open_session(settings.db_url) as w:
        ctx.report(w, total, total)
    return {"version": name, "format": fmt, "n_rows": total, "bytes": out.stat().st_size,
            "file": out.name}


@runner(JobKind.NEXT_BATCH)
def next_batch(settings: Settings, job: Job, ctx: JobContext) -> dict[str, Any]:
    """Make the project's next batch (``selection.service.next_batch``, with the params of
    a ``NextBatchRequest``). The pool and gold items the active model has not predicted are
    pre-labeled first, ``job_chunk`` a unit of work as a pre-labeling job does (embedding
    holds no write lock; progress counts them, plus one for the batch); then the batch, its
    audit event (by the job's requester) and the job's progress commit together. Killed
    after that commit, a rerun returns the batch made rather than make a second."""
    from labelloop.access import audit
    from labelloop.prelabel.service import prelabel_chunk
    from labelloop.selection.service import next_batch as make_batch

    if "batch_id" in job.result:  # an earlier attempt made it, then died before its end
        return dict(job.result)
    tally = _chunks(ctx, lambda t: prelabel_chunk(
        settings, job.project_id, limit=settings.job_chunk, splits=("pool", "gold"),
        count=not t.counted, record=t.record).n_new, after=1)
    p = job.params
    with open_session(settings.db_url) as s:
        project = s.get(Project, job.project_id)
        assert project is not None
        # Items ingested since the chunks are pre-labeled here, whatever their number.
        strategy = p.get("strategy", "default")
        report = make_batch(s, project, settings, size=p["size"], strategy=strategy,
                            auto_accept=p.get("auto_accept", True), seed=p.get("seed"),
                            class_boost=p.get("class_boost"))
        audit.record(s, job.created_by, AuditAction.NEXT_BATCH, project_id=project.id,
                     target=f"batch {report.batch_id}", strategy=strategy,
                     size=p["size"], n_tasks=report.n_tasks,
                     n_auto_accepted=report.n_auto_accepted, job=job.id)
        out = report.to_dict()
        ctx.report(s, tally.total, tally.total, result=out)
    return out
