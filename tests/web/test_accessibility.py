"""axe-core (through axe-playwright-python) finds no serious or critical violation on any
page, at 100% and at 200% zoom; at 200% the pages do not scroll sideways."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from labelloop.access.projects import get_project
from labelloop.selection.service import next_batch
from labelloop.store.db import open_session


@pytest.fixture(scope="module", autouse=True)
def _project(site) -> str:  # noqa: ANN001
    return site.project("a11y", critical=True)

PAGES = {  # who opens which page (ann1 is refused the review queue: the 403 page)
    "/": "ann1", "/p/a11y/work": "ann2", "/p/a11y/review": "rev", "/p/a11y/dashboard": "ml",
    "/admin": "root", "/p/a11y/review?as=annotator": "ann1",
}


def _serious(page) -> list[str]:  # noqa: ANN001
    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
            for v in found if v["impact"] in {"serious", "critical"}]


@pytest.fixture(scope="module")
def open_tasks(site) -> None:  # noqa: ANN001
    """An open batch in ``bank``, so that the workbench shows a task and its dialogs."""
    with open_session(site.settings.db_url) as s:
        next_batch(s, get_project(s, "a11y"), site.settings, size=2, auto_accept=False, seed=4)


ZOOMS = {1: {"width": 1280, "height": 900}, 2: {"width": 640, "height": 450}}  # CSS pixels


def test_no_serious_or_critical_accessibility_violation_on_any_page(site, browser, open_as,
                                                                     open_tasks):
    """Each page at 100% and at 200% zoom (half as many CSS pixels across)."""
    problems: dict[str, list[str]] = {}
    ctx = browser.new_context(base_url=site.url)
    page = ctx.new_page()
    for zoom, size in ZOOMS.items():
        page.set_viewport_size(size)
        page.goto("/login")
        problems[f"/login at {zoom}x"] = _serious(page)
    ctx.close()
    signed_in = {}
    for path, who in PAGES.items():
        page = signed_in.get(who) or signed_in.setdefault(who, open_as(who))
        for zoom, size in ZOOMS.items():
            page.set_viewport_size(size)
            page.goto(path)
            page.wait_for_load_state("networkidle")
            where = f"{path} at {zoom}x"
            if path == "/p/a11y/work":  # a task on screen, and the dialogs too
                page.locator("#task").wait_for()
                problems[where] = _serious(page)
                page.keyboard.press("?")
                problems[f"{where}, keys"] = _serious(page)
                page.keyboard.press("Escape")
                page.keyboard.press("s")
                page.locator("#skip-dialog").wait_for()
                problems[f"{where}, skip"] = _serious(page)
                page.keyboard.press("Escape")
            else:
                problems[where] = _serious(page)
            wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert wide <= 1, f"{where} scrolls sideways by {wide}px"
    assert len(problems) == 2 * (len(PAGES) + 1) + 4
    assert not any(problems.values()), {k: v for k, v in problems.items() if v}
