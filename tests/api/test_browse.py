"""Browsing items and tasks: exact counts under filters, keyset pages that cover every row
once, bad filters refused with where, and annotators kept out."""

from __future__ import annotations

from sqlalchemy import select

from labelloop.store.db import open_session
from labelloop.store.models import Item, Task
from tests.conftest import LABELS, banking_rows, write_csv


def _world(client, tmp_path) -> None:  # noqa: ANN001
    assert client.post("/projects", json={"name": "bank", "labels": LABELS}).status_code == 201
    pool = write_csv(tmp_path / "pool.csv", banking_rows("train", LABELS, 12), fields=("text",))
    ev = write_csv(tmp_path / "eval.csv", banking_rows("test", LABELS, 3))
    for path, params in ((pool, {}), (ev, {"split": "eval", "label_field": "category"})):
        with path.open("rb") as fh:
            assert client.post("/projects/bank/ingest", params=params,
                               files={"file": (path.name, fh, "text/csv")}).status_code == 200
    assert client.post("/projects/bank/batches", json={"size": 30, "seed": 0}).status_code == 201


def _all_pages(client, path: str, **params) -> tuple[int, list[dict]]:  # noqa: ANN001
    rows, after, count = [], None, None
    while True:
        body = client.get(path, params={**params, "limit": 7,
                                        **({"after": after} if after else {})}).json()
        count = body["count"] if count is None else count
        assert body["count"] == count  # the count does not depend on the page
        rows += body["rows"]
        after = body["next_after"]
        if after is None:
            return count, rows


def test_items_and_tasks_pages_counts_and_filters(client, settings, tmp_path):
    _world(client, tmp_path)
    with open_session(settings.db_url, read_only=True) as s:
        pool = [i for i, in s.execute(select(Item.id).where(Item.split == "pool"))]
        ev = list(s.execute(select(Item.id, Item.given_label).where(Item.split == "eval")))
        tasks = list(s.scalars(select(Task)))
    count, rows = _all_pages(client, "/projects/bank/items", split="pool")
    assert count == len(pool) == len(rows) and [r["item_id"] for r in rows] == sorted(pool)
    label = ev[0][1]
    count, rows = _all_pages(client, "/projects/bank/items", split="eval", given_label=label)
    assert count == len(rows) == sum(1 for _, g in ev if g == label) > 0
    assert {r["given_label"] for r in rows} == {label}
    assert client.get("/projects/bank/items").json()["count"] == len(pool) + len(ev)

    count, rows = _all_pages(client, "/projects/bank/tasks/all", status="open")
    assert count == len(tasks) == 30 and {r["task_id"] for r in rows} == {t.id for t in tasks}
    reason = tasks[0].reason
    count, rows = _all_pages(client, "/projects/bank/tasks/all", reason=str(reason),
                             prelabel=tasks[0].prelabel)
    assert count == sum(1 for t in tasks if t.reason == reason
                        and t.prelabel == tasks[0].prelabel) == len(rows) >= 1
    assert client.get("/projects/bank/tasks/all", params={"status": "done"}).json() == {
        "count": 0, "rows": [], "next_after": None}


def test_bad_filters_are_refused_and_annotators_kept_out(client, team, tmp_path):
    _world(client, tmp_path)
    for path, params, where in (
            ("/projects/bank/items", {"limit": 0}, "limit"),
            ("/projects/bank/items", {"limit": 501}, "limit"),
            ("/projects/bank/items", {"split": "train"}, "split"),
            ("/projects/bank/items", {"after": -1}, "after"),
            ("/projects/bank/tasks/all", {"status": "closed"}, "status"),
            ("/projects/bank/tasks/all", {"reason": "whim"}, "reason")):
        r = client.get(path, params=params)
        assert r.status_code == 422, (path, params, r.text)
        assert where in str(r.json()["detail"]), r.json()
    me = team.headers("ana", "annotator", "bank")
    assert client.get("/projects/bank/items", headers=me).status_code == 403
    assert client.get("/projects/bank/tasks/all", headers=me).status_code == 403
    assert client.get("/projects/nope/items").status_code == 404
