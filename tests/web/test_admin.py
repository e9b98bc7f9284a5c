"""An admin adds a user, gives them a role in a project and a token, and revokes it, from
the admin page; the new user signs in and finds the project."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from labelloop.store.db import open_session
from labelloop.store.models import ApiToken, Membership, User


@pytest.fixture(scope="module", autouse=True)
def _project(site) -> str:  # noqa: ANN001
    return site.project("adm", critical=False)


def test_an_admin_adds_a_user_a_membership_and_a_token_then_revokes_it(site, open_as):
    page = open_as("root")
    page.goto("/admin")
    page.get_by_label("Name", exact=True).fill("newbie")
    page.locator("#nu-role").select_option("annotator")
    page.get_by_label("Password").fill("newbie-password")
    with page.expect_navigation():
        page.get_by_role("button", name="Add user").click()
    assert page.locator("#users").get_by_role("rowheader", name="newbie").count() == 1
    page.locator("#sm-project").select_option("adm")
    page.locator("#sm-user").select_option("newbie")
    page.locator("#sm-role").select_option("reviewer")
    with page.expect_navigation():
        page.get_by_role("button", name="Set role").click()
    assert "Remove newbie from adm" in page.locator("#members").inner_text()
    page.locator("#tk-user").select_option("newbie")
    page.get_by_label("New token's name").fill("laptop")
    page.get_by_role("button", name="Create a token").click()
    page.locator("#token-once").wait_for()
    plain = page.locator("#token-once").inner_text().rsplit(" ", 1)[-1]
    assert plain.startswith("ll_")
    page.get_by_role("button", name="Revoke token").first.click()
    page.wait_for_function("document.getElementById('tokens-body').textContent"
                           ".includes('Revoke') === false")
    with open_session(site.settings.db_url, read_only=True) as s:
        user = s.scalar(select(User).where(User.name == "newbie"))
        member = s.scalar(select(Membership).where(Membership.user_id == user.id))
        tokens = list(s.scalars(select(ApiToken).where(ApiToken.user_id == user.id)))
    assert (user.role, member.role) == ("annotator", "reviewer")
    assert len(tokens) == 1 and tokens[0].name == "laptop" and tokens[0].revoked_at
    bad = page.request.get("/users/me", headers={"Authorization": f"Bearer {plain}"})
    assert bad.status == 401  # revoked: it stopped working at once
    newbie = page.context.browser.new_context(base_url=site.url).new_page()
    newbie.goto("/login")
    newbie.locator("#name").fill("newbie")
    newbie.locator("#password").fill("newbie-password")
    with newbie.expect_navigation():
        newbie.keyboard.press("Enter")
    row = newbie.get_by_role("row", name="adm")
    assert "reviewer" in row.inner_text() and row.get_by_role("link").count() == 3
    newbie.context.close()
