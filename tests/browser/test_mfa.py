"""Two-step verification in Chromium: set up an authenticator app on the account page (the QR
code is shown under the strict CSP, the key read from the page, codes computed with pyotp),
then sign in to the CloudDocs web app with the password and a code.

The screenshots of docs/accounts.md are taken here (TOKENSMITH_UPDATE_SCREENSHOTS=1 writes them
to docs/, as in ``test_screenshots.py``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pyotp
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.browser.conftest import ROOT, World

DOCS = ROOT / "docs"
SHOTS = ("screenshot-mfa-setup.png", "screenshot-mfa.png")


def test_enrol_totp_then_sign_in_with_a_code(world: World, page: Page, tmp_path: Path) -> None:
    target = DOCS if os.environ.get("TOKENSMITH_UPDATE_SCREENSHOTS") == "1" else tmp_path
    csp_errors: list[str] = []

    def watch(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            csp_errors.append(message.text)

    page.on("console", watch)
    world.web_sign_in(page)

    page.goto(f"{world.urls.issuer}/account")
    expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    page.locator("#totp-password").fill(world.demo.password)  # setting up needs the password
    page.get_by_role("button", name="Set up an authenticator app").click()
    expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
    qr = page.get_by_role("img", name="QR code of your authenticator key")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")  # allowed by the CSP
    page.screenshot(path=str(target / SHOTS[0]), full_page=True)
    secret = page.locator("#totp-key").inner_text().replace(" ", "")
    totp = pyotp.TOTP(secret)
    page.get_by_label("Code from the app").fill(totp.at(int(world.clock())))
    page.get_by_role("button", name="Turn on two-step verification").click()
    expect(page.get_by_role("heading", name="Two-step verification is on")).to_be_visible()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.get_by_role("link", name="Back to your account").click()
    expect(page.get_by_text("10 recovery codes left")).to_be_visible()

    page.goto(world.urls.web)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()

    page.get_by_role("link", name="Sign in with tokensmith").click()
    world.sign_in(page)
    expect(page).to_have_url(re.compile(rf"^{re.escape(world.urls.issuer)}/login/mfa\?"))
    expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    page.screenshot(path=str(target / SHOTS[1]), full_page=True)
    page.get_by_label("Code from your authenticator app").fill("000000")
    if totp.at(int(world.clock())) != "000000":
        page.get_by_role("button", name="Verify").click()
        expect(page.get_by_role("alert")).to_contain_text("not correct")
    # the enrolment used this time step's code: the next step's (in the window, RFC 6238 §5.2)
    page.get_by_label("Code from your authenticator app").fill(
        totp.at(int(world.clock()), counter_offset=1)
    )
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(f"{world.urls.web}/")
    expect(page.get_by_text("Signed in as")).to_contain_text("Demo User")
    assert csp_errors == []
    for name in SHOTS:
        assert (target / name).read_bytes().startswith(b"\x89PNG")
        assert (DOCS / name).is_file(), f"docs/{name} is missing"
