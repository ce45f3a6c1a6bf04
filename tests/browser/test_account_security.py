"""The account page's security forms in Chromium, through the demo's real pages: the sessions
list, a password change with the current password, then "sign out everywhere"; the pages keep
their Content-Security-Policy. (That the new password signs in: tests/server.)"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import World
from tests.support.csp import watch_csp

NEW_PASSWORD = "periwinkle lighthouse accordion"


def test_sessions_list_and_password_change_on_the_account_page(world: World, page: Page) -> None:
    violations = watch_csp(page)
    page.goto(world.urls.web)
    page.get_by_role("link", name="Sign in with tokensmith").click()
    world.sign_in(page)
    world.consent(page)
    expect(page.get_by_text("Signed in as")).to_be_visible()

    page.goto(f"{world.urls.issuer}/account")
    expect(page.get_by_role("heading", name="Your sessions")).to_be_visible()
    expect(page.locator("ul.sessions li").filter(has_text="(this browser)")).to_have_count(1)
    page.get_by_label("Current password", exact=True).first.fill(world.demo.password)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again", exact=True).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password is changed")

    page.get_by_role("button", name="Sign out everywhere").click()
    expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()
    page.goto(f"{world.urls.issuer}/account")  # this browser is signed out too
    expect(page.get_by_text("once you are signed in")).to_be_visible()
    assert violations == []
