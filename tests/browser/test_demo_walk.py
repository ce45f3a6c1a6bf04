"""The accounts walk-through of the CloudDocs demo (issue 18), in Chromium, on the world
``tokensmith demo`` serves, following the pages' links:

sign up from the web app's sign-in, the message in the development outbox (a new tab, as a
mailbox would be), its link, "Create my account"; back in the first tab, "Sign in" returns to
CloudDocs' sign-in; "Your account" (the web app links it); an authenticator app (codes computed
with pyotp from the key the page shows) and a passkey (Chromium's virtual authenticator); sign
out, sign in with the passkey alone, sign out, sign in with the password and a code; then, on a
second device, "Forgot your password?", the outbox's link, a new password: the old password is
refused, the new one signs in (with a recovery code, and consent again), and the first device's
session is gone.

One test, one world: it is the demo's whole story and the browser run is short on time. Every
page keeps its Content-Security-Policy. With TOKENSMITH_UPDATE_SCREENSHOTS=1 the pages'
screenshots are written to docs/ (docs/accounts.md shows them)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pyotp
from playwright.sync_api import Page, expect
from pytest_playwright import CreateContextCallback

from tests.browser.conftest import ROOT, World
from tests.support.csp import watch_csp
from tests.support.virtual_authenticator import virtual_authenticator

PASSWORD = "tangerine submarine orchestra"
NEW_PASSWORD = "periwinkle lighthouse accordion"
EMAIL = "nora@example.com"
SHOTS = (
    "screenshot-signup.png",
    "screenshot-outbox.png",
    "screenshot-verify.png",
    "screenshot-account.png",
    "screenshot-reset-password.png",
)
PNG = b"\x89PNG\r\n\x1a\n"


def open_outbox(page: Page, watched: list[list[str]]) -> Page:
    """Follow "Open the development outbox" from a page that sent a message: a new tab."""
    with page.expect_popup() as opened:
        page.get_by_role("link", name="Open the development outbox").click()
    outbox = opened.value
    watched.append(watch_csp(outbox))
    expect(outbox.get_by_role("heading", name="Development outbox")).to_be_visible()
    return outbox


def follow_link(outbox: Page, subject: str, to: str) -> None:
    message = outbox.locator("ul.outbox li").filter(has_text=subject).filter(has_text=to)
    message.first.locator("a.outbox-link").first.click()


def test_sign_up_enrol_totp_and_a_passkey_sign_in_with_each_then_reset_the_password(
    world: World, page: Page, new_context: CreateContextCallback, tmp_path: Path
) -> None:
    target = ROOT / "docs" if os.environ.get("TOKENSMITH_UPDATE_SCREENSHOTS") == "1" else tmp_path
    watched = [watch_csp(page)]  # the CSP violations of every tab
    virtual_authenticator(page)
    page.set_viewport_size({"width": 720, "height": 760})

    # -- sign up from CloudDocs' sign-in, confirm by the outbox's link ----------------------
    page.goto(world.urls.web)
    page.get_by_role("link", name="Sign in with tokensmith").click()
    page.get_by_role("link", name="Create an account").click()
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    page.get_by_label("E-mail address").fill(EMAIL)
    page.get_by_label("Your name (optional)").fill("Nora Example")
    page.get_by_label("Password").fill(PASSWORD)
    page.evaluate("document.activeElement.blur()")
    page.screenshot(path=str(target / "screenshot-signup.png"))
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_contain_text("Check your mailbox")

    outbox = open_outbox(page, watched)
    outbox.set_viewport_size({"width": 720, "height": 640})
    outbox.screenshot(path=str(target / "screenshot-outbox.png"))
    follow_link(outbox, "Finish creating your account", EMAIL)
    expect(outbox.get_by_role("heading", name="Finish creating your account")).to_be_visible()
    outbox.screenshot(path=str(target / "screenshot-verify.png"))
    outbox.get_by_role("button", name="Create my account").click()
    expect(outbox.get_by_role("status")).to_contain_text("Your account is ready")
    outbox.close()

    # back in the first tab: "Sign in" is CloudDocs' sign-in, still waiting
    page.get_by_role("link", name="Sign in").click()
    expect(page.get_by_text("to continue to CloudDocs")).to_be_visible()
    page.get_by_label("Username or email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    world.consent(page)
    expect(page.get_by_text("Signed in as")).to_contain_text("Nora Example")

    # -- the account page: an authenticator app, then a passkey -----------------------------
    page.get_by_role("link", name="Your account").click()
    expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    page.locator("#totp-password").fill(PASSWORD)
    page.get_by_role("button", name="Set up an authenticator app").click()
    totp = pyotp.TOTP(page.locator("#totp-key").inner_text().replace(" ", ""))
    page.get_by_label("Code from the app").fill(totp.at(int(world.clock())))
    page.get_by_role("button", name="Turn on two-step verification").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    recovery_code = page.locator("#recovery-codes li").first.inner_text()
    page.get_by_role("link", name="Back to your account").click()

    page.get_by_label("Name").fill("This laptop")
    page.locator("#passkey-password").fill(PASSWORD)
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.locator(".passkey-name")).to_have_text(["This laptop"])
    expect(page.get_by_text("10 recovery codes left")).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(target / "screenshot-account.png"))

    # -- sign out; sign in with the passkey alone; sign out; the password and a code ---------
    page.goto(world.urls.web)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()
    page.get_by_role("link", name="Sign in with tokensmith").click()
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_text("Signed in as")).to_contain_text("Nora Example")  # consent kept

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()
    page.get_by_role("link", name="Sign in with tokensmith").click()
    page.get_by_label("Username or email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    # the enrolment used this time step's code: the next step's (in the window, RFC 6238 §5.2)
    code = totp.at(int(world.clock()), counter_offset=1)
    page.get_by_label("Code from your authenticator app").fill(code)
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("Signed in as")).to_contain_text("Nora Example")

    # -- another device: the password forgotten, reset by the outbox's link ------------------
    phone = new_context().new_page()
    watched.append(watch_csp(phone))
    phone.set_viewport_size({"width": 720, "height": 640})
    phone.goto(world.urls.web)
    phone.get_by_role("link", name="Sign in with tokensmith").click()
    phone.get_by_role("link", name="Forgot your password?").click()
    phone.get_by_label("E-mail address or username").fill(EMAIL)
    phone.get_by_role("button", name="Send me a link").click()
    expect(phone.get_by_role("status")).to_contain_text("If an account uses this address")
    outbox = open_outbox(phone, watched)
    follow_link(outbox, "Choose a new password", EMAIL)
    expect(outbox.get_by_role("heading", name="Choose a new password")).to_be_visible()
    outbox.get_by_label(re.compile("New password")).fill(NEW_PASSWORD)
    outbox.evaluate("document.activeElement.blur()")
    outbox.screenshot(path=str(target / "screenshot-reset-password.png"))
    outbox.get_by_role("button", name="Set password").click()
    expect(outbox.get_by_role("status")).to_contain_text("Your password is changed")
    outbox.close()

    phone.get_by_role("link", name="Sign in").click()
    phone.get_by_label("Username or email").fill(EMAIL)
    phone.get_by_label("Password").fill(PASSWORD)  # the old one: refused
    phone.get_by_role("button", name="Sign in", exact=True).click()
    expect(phone.get_by_role("alert")).to_be_visible()
    phone.get_by_label("Password").fill(NEW_PASSWORD)
    phone.get_by_role("button", name="Sign in", exact=True).click()
    phone.get_by_text("Use a recovery code instead").click()  # no authenticator app at hand
    phone.get_by_label("Recovery code").fill(recovery_code)
    phone.get_by_role("button", name="Use recovery code").click()
    world.consent(phone)  # a reset withdraws every application's access
    expect(phone.get_by_text("Signed in as")).to_contain_text("Nora Example")

    # the reset signed the first device out of tokensmith
    page.goto(f"{world.urls.issuer}/account")
    expect(page.get_by_text("once you are signed in")).to_be_visible()

    assert [v for tab in watched for v in tab] == []
    for name in SHOTS:
        assert (target / name).read_bytes().startswith(PNG)
        assert (ROOT / "docs" / name).read_bytes().startswith(PNG), f"docs/{name} is missing"
