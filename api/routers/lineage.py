"""Lineage both ways and version diffs (``versions.lineage``)."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from labelloop.api.deps import ReadQuality, SessionDep
from labelloop.api.routing import UnitOfWorkRoute
from labelloop.api.schemas import LineageRowPageOut
from labelloop.store.pages import MAX_PAGE
from labelloop.versions.lineage import (
    diff_versions,
    get_model,
    item_lineage,
    model_items,
    model_lineage,
)
from labelloop.versions.service import get_version

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/projects/{project}",
                   tags=["lineage"])
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Name = Annotated[str | None, Query(min_length=1, max_length=200)]


@router.get("/models/{model_id}/lineage")
def lineage_of_model(model_id: RowId, access: ReadQuality,
                     session: SessionDep) -> dict[str, Any]:
    """A model -> its training and evaluation versions -> where their rows came from:
    batches (gate status, guideline version), annotators, guideline versions, pre-label
    models, sources and origins; whether the two versions share an item; and the share of
    training rows whose provenance is whole (``lineage_completeness``)."""
    return model_lineage(session, access.project, get_model(session, access.project, model_id))


@router.get("/models/{model_id}/items", response_model=LineageRowPageOut)
def items_of_model(model_id: RowId, access: ReadQuality, session: SessionDep,
                   split: Annotated[str, Query(pattern="^(train|eval)$")] = "train",
                   annotator: Name = None,
                   batch_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
                   guideline_version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
                   origin: Annotated[str | None, Query(
                       pattern="^(human|reviewed|auto|given)$")] = None,
                   label: Name = None,
                   limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
                   after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0) -> LineageRowPageOut:
    """The rows that fed a model, each with the label event behind it (who, when, why,
    under which guideline version), filtered by annotator, batch, guideline version,
    origin or label; a page at a time by item id, with the count of all that match."""
    page = model_items(session, access.project, get_model(session, access.project, model_id),
                       split=split, annotator=annotator, batch_id=batch_id,
                       guideline_version=guideline_version, origin=origin, label=label,
                       after=after, limit=limit)
    return LineageRowPageOut(**page.to_dict())


@router.get("/items/{item_id}/lineage")
def lineage_of_item(item_id: RowId, access: ReadQuality,
                    session: SessionDep) -> dict[str, Any]:
    """An item -> its source, its whole label history and answers, every dataset version
    it is in and every model those versions trained or evaluated."""
    return item_lineage(session, access.project, item_id)


@router.get("/versions/{old}/diff/{new}")
def version_diff(old: Annotated[str, Path(max_length=200)],
                 new: Annotated[str, Path(max_length=200)], access: ReadQuality,
                 session: SessionDep) -> dict[str, Any]:
    """What changed from version ``old`` to ``new`` (names or ids): items added, removed
    and relabeled, counted, and up to 100 of each with the label event behind the change:
    who, when, why, in which batch and under which guideline version."""
    project = access.project
    return diff_versions(session, get_version(session, project, old),
                         get_version(session, project, new))
