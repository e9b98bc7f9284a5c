"""The loop's six KPIs as JSON and as a figure (``remediate.kpis``)."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from labelloop.api.deps import ReadQuality, SessionDep
from labelloop.api.routing import UnitOfWorkRoute
from labelloop.remediate.kpi_report import kpi_figure
from labelloop.remediate.kpis import project_kpis

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/projects/{project}", tags=["kpis"])


@router.get("/kpis")
def kpis(access: ReadQuality, session: SessionDep,
         replay: Annotated[bool, Query(description="Also replay the human labels to count "
                                       "labels saved against random (seconds to a minute)")]
         = False) -> dict[str, Any]:
    """The six KPIs: ``agreement`` (Krippendorff's alpha per closed batch, weighted and
    latest; agreement with consensus), ``gold`` (accuracy with its Wilson 95% interval, per
    annotator), ``coverage`` (each class's labeled share against the newest evaluation
    version's, or a uniform, distribution; under-covered classes; edge cases a person
    labeled), ``lineage`` (completeness of the newest training version and of the active
    model), ``cycle_time`` (median seconds per stage, rework rate, answers that corrected
    the pre-label), ``remediation`` (evaluation-to-remediation time, targets by status); and
    ``auto_accept`` (its share and audited accuracy, Clopper-Pearson 95%). A figure with
    nothing to measure yet is null. With ``replay=true``, also ``labels_saved``: the
    default strategy against random, replayed on the project's human labels."""
    return project_kpis(session, access.project, replay=replay)


@router.get("/kpis.png", response_class=Response,
            responses={200: {"content": {"image/png": {}},
                             "description": "A 2x3 PNG, one panel per KPI"}})
def kpis_png(access: ReadQuality, session: SessionDep) -> Response:
    """The same KPIs drawn as a 2x3 PNG, one panel per KPI."""
    return Response(kpi_figure(project_kpis(session, access.project)), media_type="image/png")
