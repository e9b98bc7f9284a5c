"""Create and look up projects: the label schema, critical labels, guideline and knobs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from labelloop.core.errors import ConflictError, NotFoundError, ValidationError
from labelloop.store.models import Project

TUNABLE = ("overlap", "critical_overlap", "confidence_threshold", "critical_plausibility",
           "audit_share", "calibration_share", "target_accuracy", "min_agreement", "min_kappa",
           "min_gold_accuracy", "max_error_rate", "gold_share", "gold_min_accuracy")
# knob -> the closed interval it must lie in (None leaves an optional gate bar off)
_RANGES = {"confidence_threshold": (-1.0, 1.0), "critical_plausibility": (-1.0, 1.0),
           "audit_share": (-1.0, 1.0), "target_accuracy": (-1.0, 1.0),
           "calibration_share": (0.0, 0.5),
           "min_agreement": (-1.0, 1.0), "min_kappa": (-1.0, 1.0),
           "min_gold_accuracy": (0.0, 1.0), "max_error_rate": (0.0, 1.0),
           # a gold share above one half would make most of a person's work a test
           "gold_share": (0.0, 0.5), "gold_min_accuracy": (0.0, 1.0)}


def create_project(session: Session, name: str, labels: list[str], *,
                   critical_labels: list[str] | None = None,
                   label_descriptions: dict[str, str] | None = None,
                   guideline_text: str = "", **knobs: Any) -> Project:
    """A new project with a label schema. Labels must be distinct non-empty strings."""
    name = name.strip()
    if not name:
        raise ValidationError("project name is empty", where="name")
    clean = [str(label).strip() for label in labels]
    if len(clean) < 2 or any(not label for label in clean):
        raise ValidationError("a project needs at least two non-empty labels", where="labels")
    if len(set(clean)) != len(clean):
        dupes = sorted({lb for lb in clean if clean.count(lb) > 1})
        raise ValidationError(f"duplicate labels: {dupes}", where="labels")
    critical = list(critical_labels or [])
    unknown = sorted(set(critical) - set(clean))
    if unknown:
        raise ValidationError(f"critical labels not in the label set: {unknown}",
                              where="critical_labels")
    descriptions = dict(label_descriptions or {})
    if set(descriptions) - set(clean):
        raise ValidationError(f"descriptions for unknown labels: "
                              f"{sorted(set(descriptions) - set(clean))}",
                              where="label_descriptions")
    if session.scalar(select(Project).where(Project.name == name)) is not None:
        raise ConflictError(f"project {name!r} already exists", where="name")
    bad = sorted(set(knobs) - set(TUNABLE))
    if bad:
        raise ValidationError(f"unknown project settings: {bad}", where="settings")
    _check_knobs(knobs)
    project = Project(name=name, labels=clean, critical_labels=critical,
                      label_descriptions=descriptions, guideline_text=guideline_text, **knobs)
    session.add(project)
    session.flush()
    return project


def _check_knobs(knobs: dict[str, Any]) -> None:
    for key, (low, high) in _RANGES.items():
        if key in knobs and knobs[key] is not None and not low <= float(knobs[key]) <= high:
            raise ValidationError(f"{key} must lie in [{low:g}, {high:g}], got {knobs[key]}",
                                  where=key)
    for key in ("overlap", "critical_overlap"):
        if key in knobs and int(knobs[key]) < 1:
            raise ValidationError(f"{key} must be at least 1, got {knobs[key]}", where=key)


def get_project(session: Session, ref: int | str) -> Project:
    """A project by id or by name."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        project = session.get(Project, int(ref))
    else:
        project = session.scalar(select(Project).where(Project.name == ref))
    if project is None:
        raise NotFoundError(f"no project {ref!r}", where="project")
    return project


def list_projects(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).order_by(Project.id)))


def update_guideline(session: Session, project: Project, text: str) -> Project:
    """A new guideline text bumps the guideline version that annotations record."""
    project.guideline_text = text
    project.guideline_version += 1
    session.flush()
    return project
