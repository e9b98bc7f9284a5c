"""``labelloop lineage ...`` and ``labelloop guideline ...``: the same service functions as
``GET /projects/{p}/models/{id}/lineage``, ``/items/{id}/lineage``, ``/versions/{a}/diff/{b}``
and ``/guidelines``, on the local database or, with --server, over HTTP. JSON out; a bad
argument is a one-line error and exit code 2."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from labelloop.cli_common import (
    Home,
    local_admin,
    print_json,
    remote,
    run_or_exit,
    settings_for,
)
from labelloop.store.db import open_session

lineage_app = typer.Typer(help="Lineage both ways (model -> data, item -> models) and "
                          "version diffs.", no_args_is_help=True)
guideline_app = typer.Typer(help="The annotation guideline as versioned documents.",
                            no_args_is_help=True)


def _part(name: str) -> str:
    from labelloop.remote import part

    return part(name)


def _local(home: Path | None, work: Any, *, write: bool = False) -> None:
    """``work(session, settings)``'s JSON from the local database, or exit 2."""
    def go() -> None:
        settings = settings_for(home)
        with open_session(settings.db_url, read_only=not write) as s:
            print_json(work(s, settings))

    run_or_exit(go)


@lineage_app.command("model")
def model_cmd(project: str, model_id: int,
              items: Annotated[bool, typer.Option(help="List the rows that fed it (a page), "
                                                  "each with the label event behind it")]
              = False,
              split: Annotated[str, typer.Option(help="train or eval (with --items)")] = "train",
              annotator: Annotated[str | None, typer.Option()] = None,
              batch_id: Annotated[int | None, typer.Option()] = None,
              guideline_version: Annotated[int | None, typer.Option()] = None,
              origin: Annotated[str | None, typer.Option()] = None,
              limit: int = 50, after: int = 0, home: Home = None) -> None:
    """A model -> its versions -> batches, annotators, guideline versions and pre-label
    models behind them (with --items: the rows themselves, filtered)."""
    from labelloop.access.projects import get_project
    from labelloop.versions.lineage import get_model, model_items, model_lineage

    filters = {"split": split, "annotator": annotator, "batch_id": batch_id,
               "guideline_version": guideline_version, "origin": origin, "limit": limit,
               "after": after}
    if (server := remote()) is not None:
        path = f"/projects/{_part(project)}/models/{model_id}"
        run_or_exit(lambda: print_json(
            server.call("GET", f"{path}/items", params={k: v for k, v in filters.items()
                                                        if v is not None})
            if items else server.call("GET", f"{path}/lineage")))
        return

    def work(s: Any, _settings: Any) -> Any:
        p = get_project(s, project)
        model = get_model(s, p, model_id)
        return (model_items(s, p, model, **filters).to_dict() if items
                else model_lineage(s, p, model))

    _local(home, work)


@lineage_app.command("item")
def item_cmd(project: str, item_id: int, home: Home = None) -> None:
    """An item -> its source, label history, answers, versions and the models they fed."""
    from labelloop.access.projects import get_project
    from labelloop.versions.lineage import item_lineage

    if (server := remote()) is not None:
        run_or_exit(lambda: print_json(server.call(
            "GET", f"/projects/{_part(project)}/items/{item_id}/lineage")))
        return
    _local(home, lambda s, _: item_lineage(s, get_project(s, project), item_id))


@lineage_app.command("diff")
def diff_cmd(project: str, old: str, new: str, home: Home = None) -> None:
    """What changed between two dataset versions (names or ids): added, removed and
    relabeled items, with who and why."""
    from labelloop.access.projects import get_project
    from labelloop.versions.lineage import diff_versions
    from labelloop.versions.service import get_version

    if (server := remote()) is not None:
        run_or_exit(lambda: print_json(server.call(
            "GET", f"/projects/{_part(project)}/versions/{_part(old)}/diff/{_part(new)}")))
        return

    def work(s: Any, _settings: Any) -> Any:
        p = get_project(s, project)
        return diff_versions(s, get_version(s, p, old), get_version(s, p, new))

    _local(home, work)


def _guideline(g: Any) -> dict[str, Any]:
    return {"version": g.version, "text": g.text, "note": g.note, "labels": g.labels,
            "created_by": g.created_by, "created_at": g.created_at}


@guideline_app.command("set")
def set_cmd(project: str,
            text: Annotated[str | None, typer.Option(help="The new text")] = None,
            file: Annotated[Path | None, typer.Option(help="Read the new text from a file")]
            = None,
            note: Annotated[str, typer.Option(help="What changed and why")] = "",
            labels: Annotated[str, typer.Option(help="Comma-separated labels the change "
                                                "affects")] = "",
            home: Home = None) -> None:
    """A new guideline version; answers from now on record it."""
    from labelloop.access.projects import get_project, update_guideline
    from labelloop.core.errors import ValidationError

    def body() -> dict[str, Any]:
        if (text is None) == (file is None):
            raise ValidationError("give the new text with --text or --file (one of them)",
                                  where="--text")
        if file is not None and not file.is_file():
            raise ValidationError(f"no such file: {file}", where="--file")
        return {"text": text if text is not None else file.read_text(encoding="utf-8"),  # type: ignore[union-attr]
                "note": note, "labels": [x.strip() for x in labels.split(",") if x.strip()]}

    if (server := remote()) is not None:
        run_or_exit(lambda: print_json(server.call(
            "PUT", f"/projects/{_part(project)}/guideline", json=body())))
        return

    def work(s: Any, _settings: Any) -> Any:
        fields = body()
        p = update_guideline(s, get_project(s, project), fields["text"], note=fields["note"],
                             labels=fields["labels"], by=local_admin(s))
        return {"project": p.name, "guideline_version": p.guideline_version}

    _local(home, work, write=True)


@guideline_app.command("list")
def list_cmd(project: str, home: Home = None) -> None:
    """Every version of the guideline, oldest first."""
    from labelloop.access.projects import get_project, guideline_versions

    if (server := remote()) is not None:
        run_or_exit(lambda: print_json(server.call(
            "GET", f"/projects/{_part(project)}/guidelines")))
        return
    _local(home, lambda s, _: [_guideline(g) for g in
                               guideline_versions(s, get_project(s, project))])


@guideline_app.command("show")
def show_cmd(project: str, version: Annotated[int | None, typer.Argument(
        help="Default: the current version")] = None, home: Home = None) -> None:
    """One version of the guideline."""
    from labelloop.access.projects import get_guideline, get_project

    if (server := remote()) is not None:
        def read() -> Any:
            path = f"/projects/{_part(project)}"
            wanted = version or server.call("GET", path)["guideline_version"]
            return server.call("GET", f"{path}/guidelines/{wanted}")

        run_or_exit(lambda: print_json(read()))
        return
    _local(home, lambda s, _: _guideline(get_guideline(s, get_project(s, project), version)))
