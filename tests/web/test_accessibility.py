"""axe-core (through axe-playwright-python) finds no serious or critical violation on any
page, at 100% and at 200% zoom; at 200% the pages do not scroll sideways."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

PAGES = {  # who opens which page
    "/": "ann1", "/p/kb/work": "ann1", "/p/bank/review": "rev", "/p/bank/dashboard": "ml",
    "/admin": "root",
}


def _serious(page) -> list[str]:  # noqa: ANN001
    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
            for v in found if v["impact"] in {"serious", "critical"}]


@pytest.mark.parametrize("zoom", [1, 2])
def test_no_serious_or_critical_accessibility_violation_on_any_page(site, browser, open_as,
                                                                     zoom):
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
        if path == "/p/kb/work":  # the dialogs too
            page.keyboard.press("?")
            problems[f"{path} keys"] = _serious(page)
            page.keyboard.press("Escape")
        wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 1, f"{path} scrolls sideways by {wide}px at {zoom * 100}% zoom"
    assert not any(problems.values()), problems
