"""``labelloop quality ...``: quality reports, annotator scorecards, drift, label errors, gold.

The same service functions as ``GET /projects/{p}/quality`` and its neighbours; output is
JSON, a bad argument ends with a one-line error and exit code 2.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from labelloop.cli_common import Home, print_json, run_or_exit, settings_for
from labelloop.store.db import open_session

quality_app = typer.Typer(help="QA: project report, annotator scorecards, drift, label "
                          "errors, gold items.", no_args_is_help=True)



def _report(home: Path | None, work: Callable[..., Any], project: str) -> None:
    """Open the store, run ``work(session, project, settings)`` and print its JSON; the
    error handling and printing are the main CLI's (imported here: it imports this)."""
    from labelloop.access.projects import get_project

    def go() -> None:
        settings = settings_for(home)
        with open_session(settings.db_url) as s:
            print_json(work(s, get_project(s, project), settings))

    run_or_exit(go)


@quality_app.command()
def report(project: str, home: Home = None) -> None:
    """The project's quality: gate bars, each batch's figures and decision, labels held
    back, gold accuracy, figures per guideline version, flagged annotators."""
    from labelloop.quality.reports import project_report

    _report(home, lambda s, p, _: project_report(s, p), project)


@quality_app.command()
def annotators(project: str, home: Home = None) -> None:
    """Per-annotator scorecards: standing, agreement, gold accuracy and confusion."""
    from labelloop.quality.reports import annotator_scorecards

    _report(home, lambda s, p, _: annotator_scorecards(s, p), project)


@quality_app.command()
def drift(project: str, margin: float = 0.05,
          current: Annotated[int, typer.Option(help="Latest closed batches to judge")] = 1,
          min_count: int = 20, home: Home = None) -> None:
    """Did agreement or gold accuracy fall in the latest batches, and why?"""
    from labelloop.quality.reports import drift_findings

    _report(home, lambda s, p, _: drift_findings(s, p, margin, current=current,
                                                 min_count=min_count), project)


@quality_app.command("label-errors")
def label_errors(project: str, top: int = 20,
                 rereview: Annotated[bool, typer.Option(
                     help="Send the suspects to a re-review batch")] = False,
                 home: Home = None) -> None:
    """Suspected label errors (confident learning), most doubtful first."""
    from labelloop.quality.review import suspect_label_errors

    _report(home, lambda s, p, settings: suspect_label_errors(s, p, settings, top,
                                                             rereview=rereview), project)


@quality_app.command()
def gold(project: str, path: Path, text_field: str = "text", label_field: str = "label",
         licence: Annotated[str | None, typer.Option()] = None, home: Home = None) -> None:
    """Ingest expert-labeled gold items (every row needs a label)."""
    from labelloop.quality.gold_items import ingest_gold

    _report(home, lambda s, p, settings: ingest_gold(
        s, p, settings, path, text_field=text_field, label_field=label_field,
        licence=licence).to_dict(), project)
