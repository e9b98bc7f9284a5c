"""Two next-batch requests for one project at the same moment: the second waits for the
first, and no item lands in both batches (on SQLite and, in the PostgreSQL pass, there)."""

from __future__ import annotations

import threading

from sqlalchemy import select

from labelloop.access.projects import get_project
from labelloop.ingest.service import ingest_file
from labelloop.prelabel.service import prelabel_project
from labelloop.selection.service import next_batch
from labelloop.store.db import open_session
from labelloop.store.models import Task


def test_simultaneous_next_batches_never_share_an_item(settings, project_name, pool_csv):
    with open_session(settings.db_url) as s:
        p = get_project(s, project_name)
        ingest_file(s, p, pool_csv, label_field=None)
        prelabel_project(s, p, settings)  # both requests find the pool pre-labeled
    start = threading.Barrier(2)
    made: list[int] = []
    errors: list[BaseException] = []

    def request(seed: int) -> None:
        try:
            start.wait()
            with open_session(settings.db_url) as s:
                made.append(next_batch(s, get_project(s, project_name), settings, size=40,
                                       seed=seed).batch_id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=request, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert len(made) == 2
    with open_session(settings.db_url, read_only=True) as s:
        items = [set(s.scalars(select(Task.item_id).where(Task.batch_id == b)))
                 for b in made]
    assert len(items[0]) == len(items[1]) == 40
    assert not items[0] & items[1]
