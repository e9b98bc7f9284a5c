"""axe-core (through axe-playwright-python) finds no serious or critical violation on any
page, at 100% and at 200% zoom; at 200% the pages do not scroll sideways."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from labelloop.access.projects import get_project
from labelloop.selection.service import next_batch
from labelloop.store.db import open_session

PAGES = {  # who opens which page (ann1 is refused the review queue: the 403 page)
    "/": "ann1", "/p/bank/work": "ann2", "/p/bank/review": "rev", "/p/bank/dashboard": "ml",
    "/admin": "root", "/p/bank/review?as=annotator": "ann1",
}


def _serious(page) -> list[str]:  # noqa: ANN001
    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
            for v in found if v["impact"] in {"serious", "critical"}]


@pytest.fixture(scope="module")
def open_tasks(site) -> None:  # noqa: ANN001
    """An open batch in ``bank``, so that the workbench shows a task and its dialogs."""
    with open_session(site.settings.db_url) as s:
        next_batch(s, get_project(s, "bank"), site.settings, size=2, auto_accept=False, seed=4)


@pytest.mark.parametrize("zoom", [1, 2])
def test_no_serious_or_critical_accessibility_violation_on_any_page(site, browser, open_as,
                                                                     open_tasks, zoom):
    problems = {}
    ctx = browser.new_context(base_url=site.url, device_scale_factor=zoom,
                              viewport={"width": 1280 // zoom, "height": 900 // zoom})
    page = ctx.new_page()
    page.goto("/login")
    problems["/login"] = _serious(page)
    ctx.close()
    for path, who in PAGES.items():
        page = open_as(who, zoom=zoom)
        page.set_viewport_size({"width": 1280 // zoom, "height": 900 // zoom})
        page.goto(path)
        page.wait_for_load_state("networkidle")
        problems[path] = _serious(page)
        if path == "/p/bank/work":  # a task on screen, and the dialogs too
            page.locator("#task").wait_for()
            problems[path] = _serious(page)
            page.keyboard.press("?")
            problems[f"{path} keys"] = _serious(page)
            page.keyboard.press("Escape")
            page.keyboard.press("s")
            page.locator("#skip-dialog").wait_for()
            problems[f"{path} skip"] = _serious(page)
            page.keyboard.press("Escape")
        wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 1, f"{path} scrolls sideways by {wide}px at {zoom * 100}% zoom"
    assert not any(problems.values()), problems
