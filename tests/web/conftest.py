"""Browser tests: real headless Chromium (Debian's ``chromium``) driven by Playwright, against
a real labelloop server (uvicorn in a thread) on a SQLite home with real MiniLM pre-labels.

No browser is downloaded: the executable is ``$LABELLOOP_CHROMIUM``, else ``chromium`` on
the PATH (``make test`` installs Debian's package where it is missing). Without one, these
tests skip with a notice, except under CI (CI=true), where they fail."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labelloop.access.projects import create_project
from labelloop.access.users import add_member, create_user, user_for
from labelloop.core.settings import Settings
from labelloop.ingest.service import ingest_file
from labelloop.prelabel.service import prelabel_project
from labelloop.store.db import open_session
from tests.conftest import CRITICAL, LABELS, banking_rows, live_server, write_csv

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "screenshots"
PASSWORD = "correct-horse-battery"
PEOPLE = {"ann1": "annotator", "ann2": "annotator", "rev": "reviewer", "ml": "ml-team",
          "root": "admin"}
GUIDELINE = ("Pick the customer's intent.\n\n"
             "lost_or_stolen_card: the card is gone or was taken; safety-critical, block it.\n\n"
             "card_arrival: the customer waits for a new card in the post.\n\n"
             "pin_blocked and change_pin: about the PIN, blocked or to be changed.")


def chromium_path() -> str | None:
    return os.environ.get("LABELLOOP_CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser")


@dataclass
class Site:
    """One server for the browser tests; each test module makes projects of its own."""

    url: str
    settings: Settings
    pool: Path

    def project(self, name: str, *, critical: bool) -> str:
        """A project pre-labeled by the real MiniLM, the people of ``PEOPLE`` (password
        ``PASSWORD``) its members: with ``critical``, a safety-critical label and every
        task answered by two people; without, one person finishes a batch alone."""
        with open_session(self.settings.db_url) as s:
            project = create_project(s, name, LABELS,
                                     critical_labels=CRITICAL if critical else [],
                                     overlap=2 if critical else 1, critical_overlap=2,
                                     confidence_threshold=0.99, audit_share=0.0,
                                     gold_share=0.0, min_agreement=0.0,
                                     guideline_text=GUIDELINE)
            ingest_file(s, project, self.pool, text_field="text", label_field=None)
            prelabel_project(s, project, self.settings)
            for person, role in PEOPLE.items():
                add_member(s, project, user_for(s, person), role)
        return name


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str) -> Iterator[Site]:
    """A real server (uvicorn in a thread, its job worker on) and the people of ``PEOPLE``.
    Always SQLite: the pages call the same API the PostgreSQL pass tests."""
    home = tmp_path_factory.mktemp("web")
    settings = Settings(home=home / "home", mlflow_tracking_uri=mlflow_uri,
                        show_progress=False)
    pool = write_csv(home / "pool.csv", banking_rows("train", LABELS, 8))
    with open_session(settings.db_url) as s:
        for name, role in PEOPLE.items():
            create_user(s, name, role, PASSWORD)
    with live_server(settings) as url:
        yield Site(url, settings, pool)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    path = chromium_path()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no chromium: CI must install Debian's chromium (make test does)")
        pytest.skip("no chromium on this machine (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def open_as(browser, site: Site):  # noqa: ANN001, ANN201
    """``open_as(name)``: a fresh browser context signed in as ``name`` through the sign-in
    page; returns its page."""
    contexts = []

    def sign_in(name: str):  # noqa: ANN202
        ctx = browser.new_context(base_url=site.url, viewport={"width": 1280, "height": 900})
        contexts.append(ctx)
        page = ctx.new_page()
        page.goto("/login")
        page.locator("#name").fill(name)
        page.locator("#password").fill(PASSWORD)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.url == f"{site.url}/", page.locator("main").inner_text()
        return page

    yield sign_in
    for ctx in contexts:
        ctx.close()


def screenshot(page, name: str) -> Path:  # noqa: ANN001
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
