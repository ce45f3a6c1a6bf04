"""Passkeys in Chromium with the DevTools virtual authenticator (CTAP2, internal transport,
resident keys, user verification): register a passkey on the account page, sign out, sign in
with the passkey alone ("Sign in with a passkey", discoverable credentials), then sign in with
the password and the passkey as the second step. Each sign-in's ID token is redeemed here
(PKCE, the web client's secret) and its ``amr``/``acr`` checked.

The world runs on ``localhost``, as the demo does: WebAuthn needs a domain as RP ID. The
screenshot of the account page's passkeys goes to docs/ with TOKENSMITH_UPDATE_SCREENSHOTS=1."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
from playwright.sync_api import ConsoleMessage, Page, Request, expect

from tests.browser.conftest import ROOT, World
from tests.support.virtual_authenticator import virtual_authenticator
from tokensmith.core.mfa import ACR_MULTI_FACTOR

DOCS = ROOT / "docs"
SHOT = "screenshot-passkeys.png"


def sign_in_for_id_token(world: World, page: Page, act: object) -> dict[str, object]:
    """An authorization request of the web client made here (our PKCE pair); ``act`` signs
    in on the pages; the code sent back to the web app's callback is caught and redeemed."""
    data = world.demo
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    caught: list[str] = []

    def watch(request: Request) -> None:
        if request.url.startswith(data.web_redirect_uri + "?"):
            caught.append(request.url)

    # the web app receives the code too, but refuses it (the state is not one it sent) without
    # redeeming it: Playwright's routes do not see the target of a redirect, events do
    page.on("request", watch)
    params = {
        "response_type": "code",
        "client_id": data.web_client_id,
        "redirect_uri": data.web_redirect_uri,
        "scope": "openid profile",
        "state": "s-1",
        "nonce": "n-1",
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    page.goto(f"{world.urls.issuer}/authorize?{urlencode(params)}")
    act(page)  # type: ignore[operator]
    callback = re.compile("^" + re.escape(data.web_redirect_uri + "?"))
    allow = page.get_by_role("button", name="Allow", exact=True)
    expect(page.get_by_role("heading", name="Sign-in link expired").or_(allow)).to_be_visible()
    if allow.is_visible():
        allow.click()
    expect(page).to_have_url(callback)
    page.remove_listener("request", watch)
    code = parse_qs(urlsplit(caught[0]).query)["code"][0]
    answer = httpx.post(
        f"{world.urls.issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": data.web_redirect_uri,
            "code_verifier": verifier,
        },
        auth=(data.web_client_id, data.web_client_secret),
    )
    assert answer.status_code == 200, answer.text
    claims: dict[str, object] = jwt.decode(
        answer.json()["id_token"], options={"verify_signature": False}
    )
    return claims


def test_register_a_passkey_then_sign_in_with_it(world: World, page: Page, tmp_path: Path) -> None:
    target = DOCS if os.environ.get("TOKENSMITH_UPDATE_SCREENSHOTS") == "1" else tmp_path
    csp_errors: list[str] = []

    def watch(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            csp_errors.append(message.text)

    page.on("console", watch)
    virtual_authenticator(page)
    world.web_sign_in(page)

    page.goto(f"{world.urls.issuer}/account")
    expect(page.get_by_role("heading", name="Passkeys")).to_be_visible()
    page.get_by_label("Name").fill("Virtual authenticator")
    page.locator("#passkey-password").fill(world.demo.password)  # adding needs the password
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.locator(".passkey-name")).to_have_text(["Virtual authenticator"])
    expect(page.locator(".passkey-meta")).to_contain_text("never used")
    page.screenshot(path=str(target / SHOT), full_page=True)

    page.goto(world.urls.web)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()

    # passwordless: the passkey alone, with user verification
    def with_passkey(p: Page) -> None:
        expect(p.get_by_role("heading", name="Sign in")).to_be_visible()
        p.get_by_role("button", name="Sign in with a passkey").click()

    claims = sign_in_for_id_token(world, page, with_passkey)
    assert claims["amr"] == ["swk", "mfa"]
    assert claims["acr"] == ACR_MULTI_FACTOR

    page.goto(f"{world.urls.issuer}/account")
    expect(page.locator(".passkey-meta")).to_contain_text("last used")
    page.context.clear_cookies()

    # the password, then the passkey as the second step
    def with_password_then_passkey(p: Page) -> None:
        world.sign_in(p)
        expect(p.get_by_role("heading", name="Two-step verification")).to_be_visible()
        p.get_by_role("button", name="Use a passkey").click()

    claims = sign_in_for_id_token(world, page, with_password_then_passkey)
    assert claims["amr"] == ["pwd", "swk", "mfa"]
    assert claims["acr"] == ACR_MULTI_FACTOR
    assert csp_errors == []
    assert (target / SHOT).read_bytes().startswith(b"\x89PNG")
