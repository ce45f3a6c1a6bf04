"""The screenshots in README.md are taken by this test: set TOKENSMITH_UPDATE_SCREENSHOTS=1 to
write them to docs/ (they are committed); otherwise the test takes them into a temporary folder
and checks that the committed ones are there."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import ROOT, World

DOCS = ROOT / "docs"
SHOTS = ("screenshot-login.png", "screenshot-consent.png")
PNG = b"\x89PNG\r\n\x1a\n"


def test_login_and_consent_screenshots(world: World, page: Page, tmp_path: Path) -> None:
    update = os.environ.get("TOKENSMITH_UPDATE_SCREENSHOTS") == "1"
    target = DOCS if update else tmp_path
    page.set_viewport_size({"width": 720, "height": 640})
    page.goto(world.urls.web)
    page.get_by_role("link", name="Sign in with tokensmith").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username or email").fill("demo")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.evaluate("document.activeElement.blur()")
    page.screenshot(path=str(target / SHOTS[0]))
    page.get_by_label("Password").fill(world.demo.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("button", name="Allow")).to_be_visible()
    page.screenshot(path=str(target / SHOTS[1]), full_page=True)
    for name in SHOTS:
        assert (target / name).read_bytes().startswith(PNG)
        assert (DOCS / name).read_bytes().startswith(PNG), f"docs/{name} is missing"
