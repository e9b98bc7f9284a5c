"""Create and look up projects: the label schema, critical labels, guideline and knobs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, select
from sqlalchemy.orm import Session

from labelloop.core.errors import ConflictError, NotFoundError, ValidationError
from labelloop.core.names import check_name, check_text, shorten
from labelloop.store.models import Guideline, Project

TUNABLE = ("overlap", "critical_overlap", "confidence_threshold", "critical_plausibility",
           "audit_share", "calibration_share", "target_accuracy", "min_agreement", "min_kappa",
           "min_gold_accuracy", "max_error_rate", "gold_share", "gold_min_accuracy")
# knob -> the closed interval it must lie in (None leaves an optional gate bar off)
_RANGES = {"confidence_threshold": (0.0, 1.0), "critical_plausibility": (0.0, 1.0),
           "audit_share": (0.0, 1.0), "target_accuracy": (0.0, 1.0),
           "calibration_share": (0.0, 0.5),
           "min_agreement": (-1.0, 1.0), "min_kappa": (-1.0, 1.0),
           "min_gold_accuracy": (0.0, 1.0), "max_error_rate": (0.0, 1.0),
           # a gold share above one half would make most of a person's work a test
           "gold_share": (0.0, 0.5), "gold_min_accuracy": (0.0, 1.0)}


def create_project(session: Session, name: str, labels: list[str], *,
                   critical_labels: list[str] | None = None,
                   label_descriptions: dict[str, str] | None = None,
                   guideline_text: str = "", created_by: str = "", **knobs: Any) -> Project:
    """A new project with a label schema. Labels must be distinct non-empty strings."""
    name = check_name(name, "name")
    clean = [check_name(str(label), "labels") for label in labels]
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
    check_text(guideline_text, "guideline_text")
    project = Project(name=name, labels=clean, critical_labels=critical,
                      questions=[{"name": "label", "kind": "single-label", "labels": clean}],
                      label_descriptions=descriptions, guideline_text=guideline_text, **knobs)
    session.add(project)
    session.flush()
    session.add(Guideline(project_id=project.id, version=project.guideline_version,
                          text=guideline_text, note="", labels=[], created_by=created_by))
    session.flush()
    return project


def _check_knobs(knobs: dict[str, Any]) -> None:
    for key, (low, high) in _RANGES.items():
        value = knobs.get(key)
        if value is not None and not (isinstance(value, int | float)
                                      and low <= float(value) <= high):
            raise ValidationError(f"{key} must lie in [{low:g}, {high:g}], got "
                                  f"{shorten(value)}", where=key)
    for key in ("overlap", "critical_overlap"):
        if key in knobs and not (isinstance(knobs[key], int) and 1 <= knobs[key] <= 10):
            raise ValidationError(f"{key} must be a whole number in [1, 10], got "
                                  f"{shorten(knobs[key])}", where=key)


def update_project(session: Session, project: Project, **knobs: Any) -> Project:
    """Change a project's routing and quality settings (checked as at creation)."""
    bad = sorted(set(knobs) - set(TUNABLE))
    if bad:
        raise ValidationError(f"unknown project settings: {bad}", where="settings")
    _check_knobs(knobs)
    for key, value in knobs.items():
        setattr(project, key, value)
    session.flush()
    return project


def project_named(ref: int | str) -> ColumnElement[bool]:
    """The condition that picks the project ``ref`` names: an id (digits) or a name."""
    if isinstance(ref, str) and ref.isascii() and ref.isdigit() and len(ref) <= 18:
        ref = int(ref)
    if isinstance(ref, int):
        return Project.id == ref if 0 < ref < 2**63 else false()
    return Project.name == check_text(ref, "project")


def get_project(session: Session, ref: int | str) -> Project:
    """A project by id or by name."""
    project = session.scalar(select(Project).where(project_named(ref)))
    if project is None:
        raise NotFoundError(f"no project {shorten(ref)!r}", where="project")
    return project


def list_projects(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).order_by(Project.id)))


def update_guideline(session: Session, project: Project, text: str, *, note: str = "",
                     labels: list[str] | None = None, by: str = "") -> Project:
    """A new version of the guideline: its text, a note on what changed and the labels the
    change affects. Answers and labels from now on record the new version; every version
    stays readable (``guideline_versions``)."""
    text = check_text(text, "text")
    note = check_text(note, "note")
    affected = list(dict.fromkeys(labels or []))
    unknown = sorted(set(affected) - set(project.labels))
    if unknown:
        raise ValidationError(f"labels not in the project's label set: {unknown}",
                              where="labels")
    project.guideline_text = text
    project.guideline_version += 1
    session.add(Guideline(project_id=project.id, version=project.guideline_version, text=text,
                          note=note, labels=affected, created_by=by))
    session.flush()
    return project


def guideline_versions(session: Session, project: Project) -> list[Guideline]:
    """Every version of the project's guideline, oldest first."""
    return list(session.scalars(select(Guideline).where(Guideline.project_id == project.id)
                                .order_by(Guideline.version)))


def get_guideline(session: Session, project: Project, version: int | None = None) -> Guideline:
    """One version of the guideline (default: the current one)."""
    wanted = project.guideline_version if version is None else version
    found = session.scalar(select(Guideline).where(Guideline.project_id == project.id,
                                                   Guideline.version == wanted))
    if found is None:
        raise NotFoundError(f"project {project.name!r} has no guideline version {wanted}",
                            where="version")
    return found
