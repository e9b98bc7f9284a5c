"""What the team's dashboard shows, read in one unit of work: the batches and their gates,
quality per batch, the auto-accept share and its audit, per-class coverage, the learning
curve of the models with links into the MLflow UI, open remediation targets and jobs."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labelloop.core.settings import Settings
from labelloop.jobs.service import describe, list_jobs
from labelloop.prelabel.tuned import is_tuned
from labelloop.remediate.kpis import project_kpis
from labelloop.remediate.service import OPEN_STATES
from labelloop.store.models import (
    Batch,
    LabelEvent,
    ModelVersion,
    Project,
    RemediationTarget,
    Task,
)

log = logging.getLogger(__name__)
MODELS_SHOWN = 10  # the learning curve's newest models
# The page's figures, kept for its plots (four requests right after the page): reused
# while nothing they draw from has changed (``_stamp``).
_LAST: dict[int, tuple[tuple[Any, ...], dict[str, Any]]] = {}


def _stamp(session: Session, project: Project) -> tuple[Any, ...]:
    """What changes when a plot would: labels, batches and their gates, models."""
    return tuple(session.execute(select(
        select(func.max(LabelEvent.id)).scalar_subquery(),
        select(func.max(Batch.id)).where(Batch.project_id == project.id).scalar_subquery(),
        select(func.count(Batch.id)).where(Batch.project_id == project.id,
                                           Batch.closed_at.is_not(None)).scalar_subquery(),
        select(func.max(ModelVersion.id)).where(ModelVersion.project_id == project.id)
        .scalar_subquery())).one())


def plot_view(session: Session, project: Project, settings: Settings) -> dict[str, Any]:
    """``dashboard_view``, reused from the page's request while it still holds."""
    stamp = _stamp(session, project)
    kept = _LAST.get(project.id)
    if kept is not None and kept[0] == stamp:
        return kept[1]
    return dashboard_view(session, project, settings)


def dashboard_view(session: Session, project: Project, settings: Settings) -> dict[str, Any]:
    """The dashboard's figures for ``project`` (plain data: the page and the plots read it)."""
    stamp = _stamp(session, project)
    batches = list(session.scalars(select(Batch).where(Batch.project_id == project.id)
                                   .order_by(Batch.id)))
    models = list(session.scalars(select(ModelVersion).where(
        ModelVersion.project_id == project.id).order_by(ModelVersion.id.desc())
        .limit(MODELS_SHOWN)))[::-1]
    targets = list(session.scalars(select(RemediationTarget).where(
        RemediationTarget.project_id == project.id, RemediationTarget.status.in_(OPEN_STATES))
        .order_by(RemediationTarget.id)))
    kpis = project_kpis(session, project)
    n_tasks = dict(session.execute(select(Task.batch_id, func.count(Task.id)).join(
        Batch, Batch.id == Task.batch_id).where(Batch.project_id == project.id)
        .group_by(Task.batch_id)).all())
    view = {"batches": [_batch_row(b, n_tasks.get(b.id, 0)) for b in batches],
            "models": _model_rows(models, project, settings),
            "mlflow_ui": mlflow_ui(settings),
            "targets": [{"id": t.id, "kind": str(t.kind), "labels": list(t.labels),
                         "message": t.message, "action": str(t.action), "owner": t.owner,
                         "status": str(t.status), "created_at": t.created_at}
                        for t in targets],
            "jobs": [describe(j) for j in list_jobs(session, project, limit=10)],
            "auto_accept": kpis["auto_accept"], "coverage": kpis["coverage"],
            "agreement": kpis["agreement"], "gold": kpis["gold"],
            "active_model_id": project.active_model_id}
    _LAST[project.id] = (stamp, view)
    return view


def _batch_row(b: Batch, n_tasks: int) -> dict[str, Any]:
    qa = b.qa or {}
    audit = qa.get("audit") or {}
    return {"id": b.id, "status": str(b.status), "strategy": b.strategy,
            "created_at": b.created_at, "closed_at": b.closed_at,
            "n_tasks": n_tasks, "n_auto_accepted": b.n_auto_accepted,
            "alpha": qa.get("krippendorff_alpha"), "kappa": qa.get("cohen_kappa"),
            "gold_accuracy": qa.get("gold_accuracy"),
            "audit_accuracy": audit.get("accuracy"), "audit_n": audit.get("n"),
            "audit_ci95": audit.get("ci95"), "gate_reason": b.gate_reason,
            "n_held": len(qa.get("held_for_review") or [])}


def mlflow_ui(settings: Settings) -> dict[str, str]:
    """Where the MLflow UI is, and how to start it when it is not a server already."""
    uri = settings.tracking_uri
    if settings.mlflow_ui_url:
        return {"url": settings.mlflow_ui_url.rstrip("/"), "start": ""}
    if uri.startswith(("http://", "https://")):
        return {"url": uri.rstrip("/"), "start": ""}
    return {"url": "http://127.0.0.1:5000", "start": f"mlflow ui --backend-store-uri {uri}"}


def _experiment_id(settings: Settings, project: Project) -> str | None:
    """The project's MLflow experiment id (None when the store cannot be read: the page
    still shows the run ids)."""
    from mlflow.tracking import MlflowClient

    try:
        found = MlflowClient(settings.tracking_uri).get_experiment_by_name(
            f"labelloop/{project.name}")
    except Exception:  # a dashboard without links beats no dashboard
        log.warning("could not read the MLflow experiment of %s", project.name, exc_info=True)
        return None
    return None if found is None else str(found.experiment_id)


def _model_rows(models: list[ModelVersion], project: Project,
                settings: Settings) -> list[dict[str, Any]]:
    exp = _experiment_id(settings, project) if any(m.mlflow_run_id for m in models) else None
    ui = mlflow_ui(settings)["url"]
    return [{"id": m.id, "name": m.name, "kind": m.kind, "created_at": m.created_at,
             "n_train": (m.metrics or {}).get("n_train"),
             "recipe": (m.metrics or {}).get("recipe"),
             "encoder": "tuned" if is_tuned(m.encoder) else "frozen",
             "finetune": (m.metrics or {}).get("finetune"),
             "accuracy": (m.metrics or {}).get("accuracy"),
             "macro_f1": (m.metrics or {}).get("macro_f1"), "run_id": m.mlflow_run_id,
             "run_url": f"{ui}/#/experiments/{exp}/runs/{m.mlflow_run_id}"
             if exp and m.mlflow_run_id else None}
            for m in models]
