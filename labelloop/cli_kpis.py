"""``labelloop kpis PROJECT [--png FILE]``: the loop's six KPIs, the same service function as
``GET /projects/{p}/kpis``, on the local database or, with --server, over HTTP. JSON out;
``--png`` also draws them (``remediate.kpi_report.kpi_figure``). A bad argument is a one-line
error and exit code 2."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from labelloop.cli_common import Home, err_console, print_json, remote, run_or_exit
from labelloop.cli_lineage import _local, _part


def kpis(project: str,
         png: Annotated[Path | None, typer.Option(help="Also draw them to this PNG file")]
         = None,
         replay: Annotated[bool, typer.Option(
             help="Also count labels saved against random, replayed on the project's human "
             "labels (seconds to a minute)")] = False,
         home: Home = None) -> None:
    """The six KPIs: agreement, gold accuracy, coverage against the target distribution,
    lineage completeness, cycle time per stage with rework, evaluation-to-remediation time;
    and the auto-accept share with its audited accuracy."""
    from labelloop.access.projects import get_project
    from labelloop.core.errors import ValidationError
    from labelloop.remediate.kpi_report import kpi_figure
    from labelloop.remediate.kpis import project_kpis

    def shown(figures: dict[str, Any]) -> dict[str, Any]:
        if png is not None:
            png.write_bytes(kpi_figure(figures))
            err_console.print(f"wrote {png}", highlight=False)
        return figures

    def check_folder() -> None:
        if png is not None and not png.parent.is_dir():
            raise ValidationError(f"no such folder: {png.parent}", where="--png")

    run_or_exit(check_folder)
    if (server := remote()) is not None:  # drawn here from the server's figures
        run_or_exit(lambda: print_json(shown(server.call(
            "GET", f"/projects/{_part(project)}/kpis", params={"replay": replay}))))
        return
    _local(home, lambda s, _: shown(project_kpis(s, get_project(s, project), replay=replay)))
