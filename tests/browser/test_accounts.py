"""Self-service accounts in Chromium, through the demo's real pages: sign up and confirm by the
link in the development outbox, then sign in to CloudDocs; forget the password and reset it by
the outbox's link. No page breaks its Content-Security-Policy (no inline script or style).

With TOKENSMITH_UPDATE_SCREENSHOTS=1 the pages' screenshots are written to docs/."""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import ROOT, World
from tests.support.csp import watch_csp

NEW_PASSWORD = "tangerine submarine orchestra"
PNG = b"\x89PNG\r\n\x1a\n"


def shots(tmp_path: Path) -> Path:
    return ROOT / "docs" if os.environ.get("TOKENSMITH_UPDATE_SCREENSHOTS") == "1" else tmp_path


def open_outbox_link(world: World, page: Page, subject: str) -> None:
    page.goto(f"{world.urls.issuer}/dev/outbox")
    item = page.locator("ul.outbox li").filter(has_text=subject).first
    item.locator("a.outbox-link").first.click()


def test_sign_up_confirm_by_the_outbox_link_then_sign_in(
    world: World, page: Page, tmp_path: Path
) -> None:
    violations = watch_csp(page)
    page.set_viewport_size({"width": 720, "height": 760})
    page.goto(world.urls.web)
    page.get_by_role("link", name="Sign in with tokensmith").click()
    page.get_by_role("link", name="Create an account").click()
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    page.get_by_label("E-mail address").fill("nora@example.com")
    page.get_by_label("Your name (optional)").fill("Nora Example")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.evaluate("document.activeElement.blur()")
    page.screenshot(path=str(shots(tmp_path) / "screenshot-signup.png"))
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_contain_text("Check your mailbox")

    open_outbox_link(world, page, "Finish creating your account")
    expect(page.get_by_role("heading", name="Finish creating your account")).to_be_visible()
    page.get_by_role("button", name="Create my account").click()
    expect(page.get_by_role("status")).to_contain_text("Your account is ready")

    page.goto(world.urls.web)
    page.get_by_role("link", name="Sign in with tokensmith").click()
    page.get_by_label("Username or email").fill("nora@example.com")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    world.consent(page)
    expect(page.get_by_text("Signed in as")).to_contain_text("Nora Example")
    assert violations == []
    assert (shots(tmp_path) / "screenshot-signup.png").read_bytes().startswith(PNG)


def test_forgotten_password_reset_by_the_outbox_link(
    world: World, page: Page, tmp_path: Path
) -> None:
    violations = watch_csp(page)
    page.set_viewport_size({"width": 720, "height": 640})
    page.goto(world.urls.web)
    page.get_by_role("link", name="Sign in with tokensmith").click()
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("E-mail address or username").fill(world.demo.username)
    page.get_by_role("button", name="Send me a link").click()
    expect(page.get_by_role("status")).to_contain_text("If an account uses this address")

    open_outbox_link(world, page, "Choose a new password")
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.get_by_label(re.compile("New password")).fill(NEW_PASSWORD)
    page.evaluate("document.activeElement.blur()")
    page.screenshot(path=str(shots(tmp_path) / "screenshot-reset-password.png"))
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password is changed")

    page.goto(world.urls.web)
    page.get_by_role("link", name="Sign in with tokensmith").click()
    page.get_by_label("Username or email").fill(world.demo.username)
    page.get_by_label("Password").fill(world.demo.password)  # the old one: refused
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_be_visible()
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    world.consent(page)
    expect(page.get_by_role("heading", name="Your documents")).to_be_visible()
    assert violations == []
