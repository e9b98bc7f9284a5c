"""The ``labelloop`` command: a thin shell over the same service functions as the API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from labelloop.cli_access import access_app
from labelloop.cli_common import (
    Home,
    console,
    err_console,
    local_admin,
    print_json,
    remote,
    run_or_exit,
    settings_for,
    target,
)
from labelloop.cli_jobs import jobs_app, worker
from labelloop.cli_kpis import kpis
from labelloop.cli_lineage import guideline_app, lineage_app
from labelloop.cli_quality import quality_app
from labelloop.cli_remediate import targets_app
from labelloop.core.progress import Advance
from labelloop.core.settings import Settings
from labelloop.store.db import open_session

app = typer.Typer(help="labelloop: ingest -> pre-label -> select -> annotate -> QA -> version "
                  "-> train, on SQLite + local MLflow by default.", no_args_is_help=True)

# The commands that also run against a server (--server): each has an HTTP route.
REMOTE_COMMANDS = frozenset({"create-project", "ingest", "prelabel", "next-batch", "tasks",
                             "submit", "qa", "freeze", "export", "train", "jobs",
                             "kpis", "lineage", "guideline", "targets", "promote"})


@app.callback()
def main(ctx: typer.Context,
         server: Annotated[str | None, typer.Option(
             envvar="LABELLOOP_SERVER", help="A labelloop server's URL: act there, as the "
             "user of --token, instead of on the local database")] = None,
         token: Annotated[str | None, typer.Option(
             envvar="LABELLOOP_TOKEN", help="API token for --server (ll_<id>_<secret>)")]
         = None) -> None:
    """Locally, commands act on the database under --home as the admin made at first run."""
    target.server, target.token = server, token
    if server and ctx.invoked_subcommand not in REMOTE_COMMANDS:
        err_console.print(f"[red]error[/red]: {ctx.invoked_subcommand} acts on the local "
                          "database only: leave out --server (and LABELLOOP_SERVER)",
                          highlight=False)
        raise typer.Exit(2)


def _p(project: str) -> str:
    """The project's path on the server."""
    from labelloop.remote import part

    return f"/projects/{part(project)}"


@contextmanager
def rich_progress() -> Iterator[Any]:
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, transient=False) as bar:
        def start(description: str, total: int) -> Advance:
            task = bar.add_task(description, total=total)
            return lambda n: bar.advance(task, n)

        yield start


@app.command("create-project")
def create_project_cmd(
    name: str,
    labels: Annotated[str, typer.Option(help="Comma-separated labels, or @file.json")],
    critical: Annotated[str, typer.Option(help="Comma-separated safety-critical labels")] = "",
    overlap: int = 1, critical_overlap: int = 2, confidence_threshold: float = 0.9,
    audit_share: float = 0.05, calibration_share: float = 0.1, min_agreement: float = 0.6,
    min_kappa: Annotated[float | None, typer.Option(help="Gate bar (off if unset)")] = None,
    min_gold_accuracy: Annotated[float | None, typer.Option(help="Gate bar")] = None,
    max_error_rate: Annotated[float | None, typer.Option(help="Gate bar")] = None,
    gold_share: float = 0.1, gold_min_accuracy: float = 0.8, home: Home = None,
) -> None:
    """Create a project with its label schema."""
    from labelloop.access.projects import create_project

    names = (json.loads(Path(labels[1:]).read_text()) if labels.startswith("@")
             else [s.strip() for s in labels.split(",")])
    crit = [s.strip() for s in critical.split(",") if s.strip()]

    def go() -> None:
        if (server := remote()) is not None:
            body = {"name": name, "labels": names, "critical_labels": crit,
                    "overlap": overlap, "critical_overlap": critical_overlap,
                    "confidence_threshold": confidence_threshold,
                    "audit_share": audit_share, "calibration_share": calibration_share,
                    "min_agreement": min_agreement, "min_kappa": min_kappa,
                    "min_gold_accuracy": min_gold_accuracy, "max_error_rate": max_error_rate,
                    "gold_share": gold_share, "gold_min_accuracy": gold_min_accuracy}
            made = server.call("POST", "/projects", json=body)
            print_json({"id": made["id"], "name": made["name"], "labels": len(made["labels"])})
            return
        with open_session(settings_for(home).db_url) as s:
            p = create_project(s, name, names, critical_labels=crit, overlap=overlap,
                               critical_overlap=critical_overlap,
                               confidence_threshold=confidence_threshold,
                               audit_share=audit_share, calibration_share=calibration_share,
                               min_agreement=min_agreement,
                               min_kappa=min_kappa, min_gold_accuracy=min_gold_accuracy,
                               max_error_rate=max_error_rate, gold_share=gold_share,
                               gold_min_accuracy=gold_min_accuracy)
            print_json({"id": p.id, "name": p.name, "labels": len(p.labels)})

    run_or_exit(go)


@app.command()
def ingest(project: str, path: Path, text_field: str = "text",
           label_field: Annotated[str | None, typer.Option()] = None,
           id_field: Annotated[str | None, typer.Option(
               help="The column holding the source's own id (kept with each item)")] = "id",
           split: Annotated[str, typer.Option(help="pool or eval")] = "pool",
           licence: Annotated[str | None, typer.Option()] = None, home: Home = None,
           job: Annotated[bool | None, typer.Option(
               "--job/--no-job", help="Ingest as a job: committed chunks, a progress bar, "
               "resumable (default: files larger than ingest_inline_max_bytes)")] = None,
           ) -> None:
    """Ingest JSONL, CSV, Parquet or a Hugging Face datasets folder; prints the report."""
    from labelloop.access.projects import get_project
    from labelloop.core.errors import ValidationError
    from labelloop.ingest.service import check_split, ingest_file

    def go() -> None:
        if (server := remote()) is not None:
            print_json(server.upload(f"{_p(project)}/ingest", path, text_field=text_field,
                                     label_field=label_field, id_field=id_field, split=split,
                                     licence=licence, background=job))
            return
        settings = settings_for(home)
        large = path.is_file() and path.stat().st_size > settings.ingest_inline_max_bytes
        if job or (job is None and large):
            from labelloop.cli_jobs import run_here

            check_split(split)
            if not path.exists():
                raise ValidationError(f"no such file or folder: {path}", where=str(path))
            run_here("ingest", project, home, params=lambda _s, _p: {
                "path": str(path.resolve()), "source": str(path), "text_field": text_field,
                "label_field": label_field, "id_field": id_field, "split": split,
                "licence": licence})
            return
        with open_session(settings.db_url) as s:
            rep = ingest_file(s, get_project(s, project), path, text_field=text_field,
                              label_field=label_field, id_field=id_field, split=split,
                              licence=licence,
                              max_chars=settings.max_text_chars)
            print_json(rep.to_dict())

    run_or_exit(go)


@app.command()
def prelabel(project: str, home: Home = None,
             detach: Annotated[bool, typer.Option(
                 help="Only queue the job, for a server's worker or `labelloop worker`")]
             = False) -> None:
    """Embed (cached) and pre-label every pool item with the active model, as a job: in
    committed chunks, with a progress bar (follow it elsewhere with `labelloop jobs show`)."""
    from labelloop.cli_jobs import run_here

    run_or_exit(lambda: run_here("prelabel", project, home, detach=detach))


@app.command()
def embed(project: str, home: Home = None,
          encoder: Annotated[str | None, typer.Option(
              help="The packaged all-MiniLM-L6-v2 or a local model folder (default: the "
                   "configured encoder)")] = None,
          detach: Annotated[bool, typer.Option(
              help="Only queue the job, for a server's worker or `labelloop worker`")]
          = False) -> None:
    """Embed the project's items for an encoder (a new one, or a fine-tuned version), as a
    job: committed chunks, a progress bar, resumable; the vectors wait in the cache."""
    from labelloop.cli_jobs import run_here
    from labelloop.prelabel.service import check_encoder

    def params(_s: object, _p: object) -> dict[str, str]:
        if encoder is None:
            return {}
        check_encoder(encoder)
        return {"encoder": encoder}

    run_or_exit(lambda: run_here("embed", project, home, route="embeddings",
                                 body={"encoder": encoder} if encoder else {},
                                 params=params, detach=detach))


@app.command("next-batch")
def next_batch_cmd(project: str, size: int = 50, strategy: str = "default",
                   seed: Annotated[int | None, typer.Option()] = None,
                   auto_accept: bool = True, home: Home = None) -> None:
    """Route the pool and create the next labeling batch."""
    from labelloop.access.projects import get_project
    from labelloop.selection.service import next_batch

    def go() -> None:
        if (server := remote()) is not None:
            print_json(server.call("POST", f"{_p(project)}/batches", json={
                "size": size, "strategy": strategy, "seed": seed, "auto_accept": auto_accept}))
            return
        settings = settings_for(home)
        with rich_progress() as prog, open_session(settings.db_url) as s:
            print_json(next_batch(s, get_project(s, project), settings, size=size,
                              strategy=strategy, seed=seed, auto_accept=auto_accept,
                              progress=prog).to_dict())

    run_or_exit(go)


Annotator = Annotated[str | None, typer.Argument(
    help="Who answers (with --server: the token's user, who may be left out)")]


def _as_token_user(server: Any, annotator: str | None) -> None:
    """Over a server one acts as the token's user: naming someone else is refused."""
    from labelloop.core.errors import PermissionDeniedError

    me = server.call("GET", "/users/me")["name"]
    if annotator is not None and annotator != me:
        raise PermissionDeniedError(f"the token is {me!r}'s: it cannot act as {annotator!r}",
                                    where="annotator")


def _named(annotator: str | None) -> str:
    from labelloop.core.errors import ValidationError

    if annotator is None:
        raise ValidationError("name the annotator", where="annotator")
    return annotator


@app.command()
def tasks(project: str, annotator: Annotator = None, limit: int = 10,
          home: Home = None) -> None:
    """Fetch an annotator's next tasks (with pre-labels)."""
    from labelloop.access.projects import get_project
    from labelloop.annotate.service import next_tasks

    def go() -> None:
        if (server := remote()) is not None:
            _as_token_user(server, annotator)
            views = server.call("POST", f"{_p(project)}/tasks/next", params={"limit": limit})
            print_json([{k: v for k, v in t.items() if k != "labels"} for t in views])
            return
        annotator_ = _named(annotator)
        with open_session(settings_for(home).db_url) as s:
            views = next_tasks(s, get_project(s, project), annotator_, limit)
            print_json([{k: v for k, v in t.to_dict().items() if k != "labels"} for t in views])

    run_or_exit(go)


@app.command()
def submit(task_id: int, annotator: str, label: str,
           seconds: Annotated[float | None, typer.Option()] = None,
           project: Annotated[str | None, typer.Option(
               help="The task's project (needed with --server)")] = None,
           home: Home = None) -> None:
    """Submit an annotation (accept or correct the pre-label)."""
    from labelloop.core.errors import ValidationError
    from labelloop.loop import submit_answer as do_submit

    def go() -> None:
        if (server := remote()) is not None:
            if project is None:
                raise ValidationError("with --server, name the task's --project",
                                      where="--project")
            _as_token_user(server, annotator)
            a = server.call("POST", f"{_p(project)}/tasks/{task_id}/annotations",
                            json={"label": label, "seconds_spent": seconds})
            print_json({"annotation_id": a["id"], "accepted_prelabel": a["accepted_prelabel"]})
            return
        with open_session(settings_for(home).db_url) as s:
            a = do_submit(s, task_id, annotator, label, seconds).annotation
            print_json({"annotation_id": a.id, "accepted_prelabel": a.accepted_prelabel})

    run_or_exit(go)


@app.command()
def qa(project: str, batch_id: int, home: Home = None) -> None:
    """Show a batch's QA figures and gate decision."""
    from labelloop.access.projects import get_project
    from labelloop.core.errors import NotFoundError
    from labelloop.quality.service import batch_report
    from labelloop.store.models import Batch

    def go() -> None:
        if (server := remote()) is not None:
            print_json(server.call("GET", f"{_p(project)}/batches/{batch_id}"))
            return
        with open_session(settings_for(home).db_url) as s:
            p = get_project(s, project)
            b = s.get(Batch, batch_id)
            if b is None or b.project_id != p.id:
                raise NotFoundError(f"no batch {batch_id} in {project!r}", where="batch_id")
            print_json(batch_report(b))

    run_or_exit(go)


@app.command()
def freeze(project: str, split: str = "train",
           name: Annotated[str | None, typer.Option()] = None, home: Home = None) -> None:
    """Freeze accepted labels into an immutable dataset version."""
    from labelloop.access.projects import get_project
    from labelloop.versions.service import freeze_version

    def go() -> None:
        if (server := remote()) is not None:
            v = server.call("POST", f"{_p(project)}/versions", json={"split": split,
                                                                     "name": name})
            print_json({k: v[k] for k in ("id", "name", "digest", "n_rows")})
            return
        with open_session(settings_for(home).db_url) as s:
            v = freeze_version(s, get_project(s, project), split=split, name=name)
            print_json({"id": v.id, "name": v.name, "digest": v.digest, "n_rows": v.n_rows})

    run_or_exit(go)


FORMAT_BY_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
                    ".pq": "parquet", ".csv": "csv"}


@app.command()
def export(project: str, version: str, out: Path,
           fmt: Annotated[str | None, typer.Option(
               "--format", help="jsonl, parquet, csv or hf (default: from OUT's extension; a "
               "path with none is an hf folder)")] = None,
           force: Annotated[bool, typer.Option(help="Overwrite OUT if it exists")] = False,
           home: Home = None) -> None:
    """Export a dataset version with per-row lineage."""
    from labelloop.access import audit
    from labelloop.access.projects import get_project
    from labelloop.core.enums import AuditAction
    from labelloop.core.errors import ConflictError, ValidationError
    from labelloop.versions.service import export_version, get_version

    def go() -> None:
        chosen = fmt or FORMAT_BY_SUFFIX.get(out.suffix.lower(), "hf" if not out.suffix else "")
        if not chosen:
            raise ValidationError(f"cannot tell the format from {out.name!r}: use --format "
                                  "jsonl, parquet, csv or hf", where="out")
        if out.exists() and not force:
            raise ConflictError(f"{out} exists: pass --force to overwrite it", where="out")
        if (server := remote()) is not None:
            _download(server, project, version, chosen, out)
            return
        with open_session(settings_for(home).db_url) as s:
            p = get_project(s, project)
            v = get_version(s, p, version)
            console.print(str(export_version(s, v, chosen, out)))
            audit.record(s, local_admin(s), AuditAction.EXPORT, project_id=p.id,
                         target=f"version {v.id}", format=chosen, path=str(out))

    run_or_exit(go)


def _download(server: Any, project: str, version: str, fmt: str, out: Path) -> None:
    """A version streamed from the server into ``out``, which appears only when complete."""
    import os
    import tempfile

    from labelloop.core.errors import ValidationError
    from labelloop.remote import part

    if fmt not in ("jsonl", "parquet", "csv"):
        raise ValidationError(f"a server exports jsonl, parquet or csv, not {fmt!r}",
                              where="--format")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            server.download(f"{_p(project)}/versions/{part(version)}/export", fh,
                            params={"format": fmt})
        os.replace(partial, out)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    console.print(str(out))


@app.command()
def train(project: str, train_version: str,
          eval_version: Annotated[str | None, typer.Option()] = None,
          detach: Annotated[bool, typer.Option(
              help="Only queue the job, for a server's worker or `labelloop worker`")]
          = False,
          promote: Annotated[bool, typer.Option(
              help="Make it the pre-labeler; --no-promote leaves it the registry's "
              "candidate (labelloop promote later)")] = True,
          home: Home = None) -> None:
    """Retrain on a dataset version, evaluate, log to MLflow, as a job; the model becomes
    the pre-labeler. A training killed earlier leaves nothing behind once this runs."""
    from labelloop.access import audit
    from labelloop.cli_jobs import run_here
    from labelloop.core.enums import AuditAction
    from labelloop.training.service import training_rows
    from labelloop.versions.service import get_version

    def params(s: Any, p: Any) -> dict[str, Any]:
        tv = get_version(s, p, train_version)
        ev = get_version(s, p, eval_version) if eval_version else None
        training_rows(s, p, settings_for(home), tv, ev)  # bad input: exit 2, no job
        audit.record(s, local_admin(s), AuditAction.TRAIN, project_id=p.id,
                     train_version=train_version, eval_version=str(eval_version))
        return {"train_version": tv.id, "eval_version": ev.id if ev else None,
                "promote": promote}

    run_or_exit(lambda: run_here("train", project, home, route="models", detach=detach,
                                 body={"train_version": train_version,
                                       "eval_version": eval_version, "promote": promote},
                                 params=params))


@app.command()
def promote(project: str, model_id: int, home: Home = None) -> None:
    """Make a model trained with --no-promote (the registry's candidate) the pre-labeler;
    the registry alias prelabeler moves to it."""
    from labelloop.access import audit
    from labelloop.access.projects import get_project
    from labelloop.core.enums import AuditAction
    from labelloop.training.service import promote_model
    from labelloop.versions.lineage import get_model

    def go() -> None:
        if (server := remote()) is not None:
            m = server.call("POST", f"{_p(project)}/models/{model_id}/promote")
            print_json({k: m.get(k) for k in ("id", "name", "registered_version")})
            return
        settings = settings_for(home)
        with open_session(settings.db_url) as s:
            p = get_project(s, project)
            m = promote_model(s, p, get_model(s, p, model_id), settings)
            audit.record(s, local_admin(s), AuditAction.TRAIN, project_id=p.id,
                         target=f"model {m.id}", promoted=True)
            print_json({"id": m.id, "name": m.name,
                        "registered_version": m.registered_version})

    run_or_exit(go)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000, home: Home = None,
          workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes "
                                               "(PostgreSQL; SQLite is best served by one)")]
          = 1) -> None:
    """Run the HTTP API (OpenAPI docs at /docs)."""
    import os

    import uvicorn

    from labelloop.api.app import create_app

    if workers == 1:
        uvicorn.run(create_app(settings_for(home)), host=host, port=port)
        return
    if home is not None:
        os.environ["LABELLOOP_HOME"] = str(home)
    create_app(settings_for(home))  # migrate once, before the workers start
    uvicorn.run("labelloop.api.asgi:app", host=host, port=port, workers=workers)


@app.command()
def demo(rounds: int = 5, batch_size: int = 200, strategy: str = "default", seed: int = 0,
         home: Annotated[Path, typer.Option(help="Wiped and rebuilt")] = Path("demo-output"),
         limit_pool: Annotated[int | None, typer.Option(help="Sample the pool")] = None,
         limit_eval: Annotated[int | None, typer.Option(help="Sample the test split")] = None,
         self_training: Annotated[bool, typer.Option(
             help="Also train on confident pool predictions (the full pipeline)")] = False,
         ) -> None:
    """Several rounds of the whole loop on BANKING77 with simulated annotators."""
    from labelloop.demo import run_demo

    settings = Settings(home=home, self_training=self_training)
    started = time.perf_counter()
    closing: list[str] = []  # how to open it in the web pages: printed last

    def echo(line: str) -> None:
        console.print(line, soft_wrap=True, markup=False)

    with rich_progress() as prog:
        rows = run_or_exit(lambda: run_demo(settings, rounds=rounds, batch_size=batch_size,
                                     strategy=strategy, seed=seed, progress=prog,
                                     limit_pool=limit_pool, limit_eval=limit_eval,
                                     echo=echo, closing=closing.append))
    out = home / "demo-rounds.json"
    out.write_text(json.dumps(rows, indent=2, default=str))
    console.print(f"demo finished in {time.perf_counter() - started:.0f} s; figures in {out}")
    for line in closing:
        echo(line)


@app.command()
def simulate(
    data: Annotated[Path, typer.Option(help=".jsonl, .csv or .parquet with labels")],
    text_field: Annotated[str, typer.Option()] = "text",
    label_field: Annotated[str, typer.Option()] = "label",
    vectors_field: Annotated[str | None, typer.Option(help="Precomputed features")] = None,
    strategy: Annotated[list[str] | None, typer.Option(
        help="Repeatable (default: default); random always runs")] = None,
    seed_size: int = 40, batch_size: int = 40, budget: int = 800, test_fraction: float = 0.2,
    repeats: int = 3, seed: int = 0,
    finetune: Annotated[bool | None, typer.Option(
        "--finetune/--no-finetune", help="Fine-tune the encoder in the pipeline row where "
        "retraining would (default: as the settings say, LABELLOOP_FINETUNE; needs texts, "
        "not --vectors-field)")] = None,
    out: Annotated[Path, typer.Option(help="results.json; the PNG is written beside")] = Path(
        "results.json"),
    home: Home = None,
) -> None:
    """Run the loop with an oracle on a labeled file; write learning curves (JSON + PNG).

    The row "pipeline" is the product with default settings (next-batch's selection with its
    calibration sample, each retrain's recipe chosen out of fold, the encoder fine-tuned
    where the holdout check says so); each strategy named, and random, is selection alone
    with a plain classifier."""
    from labelloop.selection.simulate import load_table, log_to_mlflow, plot_curves, run_simulation

    def go() -> None:
        settings = settings_for(home)
        table = load_table(data, text_field, label_field, vectors_field)
        x = table.vectors if table.vectors is not None else _cached_embeddings(
            settings, table.texts)
        tuning = _tuning(settings, table, finetune)
        try:
            with console.status("simulating") as status:
                results = run_simulation(x, table.labels, strategy or ["default"], seed_size,
                                         batch_size, budget, test_fraction, repeats, seed,
                                         progress=lambda msg: status.update(msg),
                                         dataset=data.name, tuning=tuning)
        finally:
            if tuning is not None:
                tuning.close()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
        png = plot_curves(results, out.with_suffix(".png"))
        run_id = log_to_mlflow(results, settings.tracking_uri, png_path=png,
                                   artifact_root=settings.artifact_root)
        for name, r in results["strategies"].items():
            console.print(f"{name:>24}: labels to 95% {r['labels_to_95pct']}, to 98% "
                          f"{r['labels_to_98pct']}, selection {r['selection_seconds']:.2f} s")
        console.print(f"full-data macro-F1 {results['full_data_metric']:.3f}; wrote {out} and "
                      f"{png}; MLflow run {run_id}")

    run_or_exit(go)


def _tuning(settings: Settings, table, finetune: bool | None):  # noqa: ANN001, ANN202
    """The pipeline row's fine-tuning (``prelabel.finetune.Tuning``), by the settings'
    rule; None when off, or when the table gives vectors (there is no text to tune on)."""
    from labelloop.prelabel.encoders import resolve_model_path
    from labelloop.prelabel.finetune import Tuning

    on = settings.finetune == "auto" if finetune is None else finetune
    if not on or table.vectors is not None:
        return None
    return Tuning(table.texts, base=resolve_model_path(settings.encoder),
                  min_labels=settings.finetune_min_labels, steps=settings.finetune_steps)


def _cached_embeddings(settings: Settings, texts: list[str]):  # noqa: ANN202
    """MiniLM vectors for a file's texts, cached on disk by content digest and encoder."""
    import numpy as np

    from labelloop.prelabel.encoders import load_encoder, text_digest

    encoder = load_encoder(settings.encoder, settings.device)
    cache = settings.home.resolve() / "cache" / f"{text_digest(texts)[:24]}-" \
        f"{encoder.key.replace('/', '_')}.npy"
    if cache.exists():
        return np.load(cache)
    with rich_progress() as prog:
        x = encoder.encode(texts, batch_size=settings.embed_batch_size,
                           progress=prog("embed", len(texts)))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, x)
    return x


app.add_typer(quality_app, name="quality")
app.add_typer(access_app, name="access")
app.add_typer(jobs_app, name="jobs")
app.add_typer(lineage_app, name="lineage")
app.add_typer(targets_app, name="targets")
app.add_typer(guideline_app, name="guideline")
app.command()(worker)
app.command()(kpis)

if __name__ == "__main__":
    app()
