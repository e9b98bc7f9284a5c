"""An annotator's session opens their workbench and nothing of the reviewer's, the team's
or another annotator's; signed out, every page sends the browser to sign in."""

from __future__ import annotations

import pytest

from labelloop.access.projects import get_project
from labelloop.annotate.service import next_tasks
from labelloop.selection.service import next_batch
from labelloop.store.db import open_session


@pytest.fixture(scope="module", autouse=True)
def _project(site) -> str:  # noqa: ANN001
    return site.project("acl", critical=True)


def test_an_annotator_cannot_open_the_review_queue_the_dashboard_or_others_tasks(
        site, open_as):
    with open_session(site.settings.db_url) as s:
        project = get_project(s, "acl")
        next_batch(s, project, site.settings, size=2, auto_accept=False, seed=3)
        theirs = next_tasks(s, project, "ann2", limit=1)[0].task_id
    page = open_as("ann1")
    for path, status, words in (
            ("/p/acl/review", 403, "an annotator may not review"),
            ("/p/acl/dashboard", 403, "an annotator may not read-quality"),
            ("/p/acl/plots/quality.png", 403, "may not read-quality"),
            ("/admin", 403, "an annotator may not admin"),
            (f"/p/acl/work?task={theirs}", 404, f"no task {theirs} of yours"),
            ("/p/no-such-project/work", 404, "no project"),
            ("/p/acl/work?task=abc", 422, "query.task")):
        response = page.goto(path)
        assert response.status == status, path
        assert words in page.locator("main").inner_text(), path
    # nor through the API the pages use, with the same cookie
    got = page.request.get(f"/projects/acl/tasks/{theirs}")
    assert got.status == 404
    got = page.request.get("/projects/acl/review/queue")
    assert got.status == 403
    # an unsafe request with the cookie but without the CSRF token is refused
    got = page.request.post(f"/projects/acl/tasks/{theirs}/annotations",
                            data={"label": "card_arrival"})
    assert got.status == 403 and "X-CSRF-Token" in got.text()
    # the workbench shows only the pages an annotator may open
    page.goto("/p/acl/work")
    nav = page.get_by_role("navigation", name="Pages")
    assert nav.get_by_role("link", name="Workbench").count() == 1
    assert nav.get_by_role("link", name="Review queue").count() == 0
    assert nav.get_by_role("link", name="Dashboard").count() == 0


def test_signed_out_pages_send_to_sign_in_and_come_back(site, browser, open_as):
    ctx = browser.new_context(base_url=site.url)
    page = ctx.new_page()
    page.goto("/p/acl/work")
    assert page.url.startswith(f"{site.url}/login?next=/p/acl/work")
    page.locator("#name").fill("ann1")
    page.locator("#password").fill("wrong password")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "name or password" in page.locator("[role=alert]").inner_text().lower() \
        or "password" in page.locator("[role=alert]").inner_text().lower()
    from tests.web.conftest import PASSWORD

    page.locator("#name").fill("ann1")
    page.locator("#password").fill(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == f"{site.url}/p/acl/work"
    ctx.close()
