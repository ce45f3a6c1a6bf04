"""The CloudDocs SPA in Chromium: PKCE from WebCrypto, tokens in memory, silent refresh through
refresh-token rotation, and sign-out."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import World


def is_refresh(world: World) -> object:
    def check(response: object) -> bool:
        request = response.request  # type: ignore[attr-defined]
        return request.url == f"{world.urls.issuer}/token" and "grant_type=refresh_token" in (
            request.post_data or ""
        )

    return check


def test_spa_login_refresh_after_expiry_and_logout(short_lived_world: World, page: Page) -> None:
    world = short_lived_world
    page.clock.install()  # the SPA's timers are ours to move
    page.goto(world.urls.spa)
    with page.expect_request(re.compile(r".*/authorize\?.*")) as started:
        page.get_by_role("button", name="Sign in with tokensmith").click()
    authorize = started.value.url
    assert "code_challenge_method=S256" in authorize
    assert "code_challenge=" in authorize
    world.sign_in(page)
    world.consent(page)

    expect(page).to_have_url(f"{world.urls.spa}/")  # the code is gone from the address bar
    expect(page.locator("#user-name")).to_have_text("Demo User")
    expect(page.get_by_text("No documents yet")).to_be_visible()
    page.get_by_label("Title", exact=True).last.fill("From the SPA")
    page.locator("#new-body").fill("Made in the browser")
    page.get_by_role("button", name="Create document").click()
    expect(page.get_by_role("list", name="Your documents")).to_contain_text("From the SPA")

    # tokens are in memory only
    stored = page.evaluate(
        "() => JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})"
    )
    assert "ts_" not in stored
    assert "eyJ" not in stored

    # 1. the access token expires on the servers' clock: the API answers 401, the SPA refreshes
    #    with its refresh token (rotated by tokensmith) and retries
    world.clock.advance(3600)
    with page.expect_response(is_refresh(world)) as refreshed:  # type: ignore[arg-type]
        page.get_by_role("button", name="Reload").click()
    assert refreshed.value.status == 200
    first = refreshed.value.json()
    assert first["refresh_token"].startswith("ts_rt_")
    assert refreshed.value.headers["access-control-allow-origin"] == world.urls.spa
    expect(page.get_by_role("status")).to_have_text("Documents reloaded.")
    expect(page.get_by_role("list", name="Your documents")).to_contain_text("From the SPA")
    expect(page.locator("#token-info")).to_contain_text(re.compile(r"renewed (once|\d+ times)"))

    # 2. silent refresh ahead of expiry, on the SPA's own timer
    with page.expect_response(is_refresh(world)) as renewed:  # type: ignore[arg-type]
        page.clock.fast_forward(60_000)
    assert renewed.value.status == 200
    second = renewed.value.json()
    assert second["refresh_token"] != first["refresh_token"]
    expect(page.locator("#token-info")).to_contain_text(re.compile(r"renewed \d+ times"))

    # sign out: the refresh token is revoked, then the tokensmith session ends
    with page.expect_response(f"{world.urls.issuer}/revoke") as revoked:
        page.get_by_role("button", name="Sign out").click()
    assert revoked.value.status == 200
    expect(page).to_have_url(re.compile(rf"^{re.escape(world.urls.spa)}/\??$"))
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    expect(page.get_by_role("button", name="Sign in with tokensmith")).to_be_visible()
    page.get_by_role("button", name="Sign in with tokensmith").click()
    expect(page.get_by_label("Password")).to_be_visible()
