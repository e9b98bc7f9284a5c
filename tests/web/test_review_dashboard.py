"""A reviewer adjudicates a safety-critical disagreement in the browser; the dashboard then
shows the batch's agreement figure, and a requested batch's job with its progress."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from labelloop.access.projects import get_project
from labelloop.annotate.service import next_tasks
from labelloop.core.enums import AuditAction, LabelReason
from labelloop.loop import submit_answer
from labelloop.selection.service import next_batch
from labelloop.store.db import open_session
from labelloop.store.models import AuditEvent, Batch, LabelEvent
from tests.conftest import CRITICAL
from tests.web.conftest import screenshot


@pytest.fixture(scope="module", autouse=True)
def _project(site) -> str:  # noqa: ANN001
    return site.project("rd", critical=True)


def _answered_batch(settings) -> tuple[int, int]:  # noqa: ANN001
    """A new batch of ``bank``, answered with any open one before it: ann1 and ann2 agree on
    every task but one, where ann2 names the safety-critical label; returns that task's
    (batch id, item id)."""
    with open_session(settings.db_url) as s:
        project = get_project(s, "rd")
        batch_id = next_batch(s, project, settings, size=6, auto_accept=False, seed=2).batch_id
    disputed: tuple[int, int] | None = None
    for name in ("ann1", "ann2"):
        with open_session(settings.db_url) as s:
            project = get_project(s, "rd")
            for t in next_tasks(s, project, name, limit=20):
                label = t.prelabel
                if name == "ann2" and disputed is None:
                    disputed = (t.batch_id, t.item_id)
                    label = CRITICAL[0] if t.prelabel != CRITICAL[0] else "card_arrival"
                submit_answer(s, t.task_id, name, label, seconds_spent=3.0)
    assert disputed is not None
    with open_session(settings.db_url) as s:
        assert s.get(Batch, batch_id).status != "open"  # the last answer ran its QA
        assert s.get(Batch, disputed[0]).status != "open"
    return disputed


def test_a_reviewer_adjudicates_a_critical_disagreement_and_the_dashboard_shows_it(
        site, open_as):
    batch_id, item_id = _answered_batch(site.settings)
    page = open_as("rev")
    page.goto("/p/rd/review")
    card = page.locator(f"#q-{batch_id}-{item_id}")
    card.wait_for()
    assert "safety-critical" in card.locator("h3").inner_text()
    rows = card.locator("table.answers tbody tr")
    assert rows.count() == 2  # the answers side by side: who, what, when, guideline
    assert {rows.nth(i).locator("th").inner_text() for i in range(2)} == {"ann1", "ann2"}
    assert rows.nth(0).locator("td").nth(3).inner_text() == "1"
    screenshot(page, "review-queue")
    options = card.get_attribute("data-options")
    card.focus()
    page.keyboard.press("1")  # decide with the first label given
    card.locator(".decided").wait_for()
    decided = __import__("json").loads(options)[0]

    with open_session(site.settings.db_url) as s:
        event = s.scalar(select(LabelEvent).where(LabelEvent.item_id == item_id)
                         .order_by(LabelEvent.id.desc()).limit(1))
        audit = s.scalar(select(AuditEvent).where(AuditEvent.action == AuditAction.ADJUDICATE)
                         .order_by(AuditEvent.id.desc()).limit(1))
        alpha = s.get(Batch, batch_id).qa["krippendorff_alpha"]
    assert (event.reason, event.by, event.to_label, event.batch_id) == (
        LabelReason.ADJUDICATION, "rev", decided, batch_id)
    assert (audit.actor, audit.target) == ("rev", f"item {item_id}")
    page.reload()
    assert page.locator(f"#q-{batch_id}-{item_id}").count() == 0  # it left the queue

    page = open_as("ml")
    page.goto("/p/rd/dashboard")
    assert page.locator(f"#batch-{batch_id} td.alpha").inner_text() == f"{alpha:.3f}"
    assert page.locator("#latest-alpha").inner_text().startswith(f"{alpha:.3f}")
    page.locator("#nb-size").fill("3")
    page.get_by_role("button", name="Request next batch").click()
    done = page.locator("#jobs-body tr[data-status='done']", has_text="next-batch")
    done.first.wait_for(timeout=60_000)
    assert done.first.locator("progress").get_attribute("value") == "1"
    assert "3 tasks" in done.first.inner_text()
    page.reload()
    page.wait_for_function("[...document.images].length === 4 && "
                           "[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    screenshot(page, "dashboard")
    with open_session(site.settings.db_url) as s:
        newest = s.scalar(select(Batch).order_by(Batch.id.desc()).limit(1))
    assert newest.id > batch_id and page.locator(f"#batch-{newest.id}").count() == 1
