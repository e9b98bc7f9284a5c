"""What every ``labelloop`` command shares: settings, the local admin, printing, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pydantic
import typer
from rich.console import Console

from labelloop.core.errors import AuthenticationError, LabelloopError
from labelloop.core.settings import Settings, get_settings

if TYPE_CHECKING:
    from labelloop.remote import Remote

console = Console()


class Target:
    """Where commands act: the local database (as the local admin), or a server given by
    ``--server`` (as the user of ``--token``). Set once by the root command."""

    server: str | None = None
    token: str | None = None


target = Target()


def remote() -> Remote | None:
    """The server to send this command to; None: act on the local database."""
    if target.server is None:
        return None
    if not target.token:
        raise AuthenticationError("--server needs a token: --token or LABELLOOP_TOKEN",
                                  where="--token")
    from labelloop.remote import Remote

    return Remote(target.server, target.token)


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
    """Turn labelloop errors, and settings that do not validate, into a clear one-line
    message on stderr and exit code 2."""
    try:
        return fn()
    except LabelloopError as exc:
        where = f" (at {exc.where})" if exc.where else ""
        err_console.print(f"[red]error[/red]: {exc.message}{where}", highlight=False)
        raise typer.Exit(2) from None
    except pydantic.ValidationError as exc:  # a LABELLOOP_* variable or labelloop.toml
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        err_console.print(f"[red]error[/red]: setting {field}: {first['msg']} (at "
                          f"settings.{field}; {exc.error_count()} error(s))", highlight=False)
        raise typer.Exit(2) from None
