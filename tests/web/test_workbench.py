"""An annotator labels a whole batch in the browser by keyboard alone, with an undo and a
skip; what they did is what the database holds."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from labelloop.access.projects import get_project
from labelloop.core.enums import AnswerStatus, TaskStatus
from labelloop.jobs.service import list_jobs, wait
from labelloop.selection.service import next_batch
from labelloop.store.db import open_session
from labelloop.store.models import Annotation, Batch, Task
from tests.web.conftest import screenshot


@pytest.fixture(scope="module", autouse=True)
def _project(site) -> str:  # noqa: ANN001
    return site.project("kb", critical=False)

BATCH = 5


def _task_id(page) -> int:  # noqa: ANN001
    return int(page.locator("#task-id").inner_text())


def _next_task(page, after: int) -> int:  # noqa: ANN001
    page.wait_for_function(f"document.getElementById('task-id').textContent !== '{after}'"
                           " || !document.getElementById('empty').hidden")
    return _task_id(page) if page.locator("#task").is_visible() else 0


def test_an_annotator_labels_a_whole_batch_by_keyboard_with_an_undo_and_a_skip(site, open_as):
    with open_session(site.settings.db_url) as s:
        report = next_batch(s, get_project(s, "kb"), site.settings, size=BATCH,
                            auto_accept=False, seed=1)
    page = open_as("ann1")
    page.goto("/p/kb/work")
    page.locator("#task").wait_for()
    assert page.locator("#reason").inner_text() in {"low-confidence", "safety-critical"}
    assert "Pre-label" in page.locator("#suggestion").inner_text()
    assert page.locator("#guideline-version").inner_text() == "1"
    page.keyboard.press("?")
    assert page.locator("#keys-dialog").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#keys-dialog").is_visible()
    screenshot(page, "workbench")

    chosen: dict[int, str] = {}
    a = _task_id(page)
    chosen[a] = page.locator("#prelabel").inner_text()
    page.keyboard.press("Enter")  # accept the pre-label
    b = _next_task(page, a)
    chosen[b] = page.locator("#choice-buttons button").nth(1).get_attribute("data-label")
    page.keyboard.press("2")  # another label
    c = _next_task(page, b)
    page.keyboard.press("s")  # skip, reason 1
    page.locator("#skip-dialog").wait_for()
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    d = _next_task(page, c)
    page.keyboard.press("u")  # undo the skip: task c again
    page.wait_for_function(f"document.getElementById('task-id').textContent === '{c}'")
    assert page.locator("#changing").is_visible()
    assert "skipped" in page.locator("#your-answer").inner_text()
    page.keyboard.press("f")  # unsure about this one
    chosen[c] = page.locator("#choice-buttons button").nth(2).get_attribute("data-label")
    page.keyboard.press("3")
    assert _next_task(page, c) == d  # back to where the undo came from
    current = d
    while current:
        chosen[current] = page.locator("#prelabel").inner_text()
        page.keyboard.press("Enter")
        current = _next_task(page, current)
    page.locator("#empty").wait_for()
    page.wait_for_function("document.getElementById('progress-text').textContent"
                           f".startsWith('{BATCH} of {BATCH} tasks done')")

    with open_session(site.settings.db_url) as s:
        batch = s.get(Batch, report.batch_id)
        tasks = list(s.scalars(select(Task).where(Task.batch_id == batch.id)))
        answers = {x.task_id: x for x in s.scalars(select(Annotation).where(
            Annotation.task_id.in_([t.id for t in tasks])))}
        qa_jobs = [j.id for j in list_jobs(s, get_project(s, "kb")) if j.kind == "qa"]
    assert len(tasks) == BATCH and all(t.status == TaskStatus.DONE for t in tasks)
    assert set(answers) == set(chosen) == {t.id for t in tasks}
    for task_id, label in chosen.items():
        got = answers[task_id]
        assert (got.annotator, got.status, got.label) == ("ann1", AnswerStatus.SUBMITTED, label)
        assert got.seconds_spent is not None and got.seconds_spent >= 0  # time per item
    assert answers[c].unsure and not answers[a].unsure
    assert answers[c].skip_reason is None  # the undone skip became an answer
    assert qa_jobs  # the last answer completed the batch: its QA runs as a job
    assert wait(site.settings, qa_jobs[0], timeout_s=120).status == "done"
