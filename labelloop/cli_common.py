"""What every ``labelloop`` command shares: settings, the local admin, printing, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from labelloop.core.errors import LabelloopError
from labelloop.core.settings import Settings, get_settings

console = Console()


def settings_for(home: Path | None) -> Settings:
    return Settings(home=home) if home is not None else get_settings()


def local_admin(session: Any) -> str:
    """The admin the local CLI acts as (made at first run)."""
    from labelloop.access.users import bootstrap_admin

    return bootstrap_admin(session).name


def print_json(obj: Any) -> None:
    console.print_json(json.dumps(obj, default=str))


Home = Annotated[Path | None, typer.Option(help="State folder (default LABELLOOP_HOME or "
                                           ".labelloop)")]


err_console = Console(stderr=True)


def run_or_exit(fn):  # noqa: ANN001, ANN202
    """Turn labelloop errors into a clear one-line message on stderr and exit code 2."""
    try:
        return fn()
    except LabelloopError as exc:
        where = f" (at {exc.where})" if exc.where else ""
        err_console.print(f"[red]error[/red]: {exc.message}{where}", highlight=False)
        raise typer.Exit(2) from None
