"""Swagger UI of the CloudDocs API (issue 7): no CDN, and "Authorize" signs in against tokensmith
with PKCE in a popup, after which "Try it out" calls a protected route with the token."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import World


def test_swagger_ui_authorizes_with_pkce_and_calls_the_api(world: World, page: Page) -> None:
    outside: list[str] = []
    page.on(
        "request",
        lambda r: (
            outside.append(r.url)
            if not r.url.startswith(("http://127.0.0.1", "http://localhost", "data:"))
            else None
        ),
    )
    page.goto(f"{world.urls.api}/docs")
    expect(page.get_by_role("heading", name=re.compile("CloudDocs API"))).to_be_visible()
    page.locator("button.authorize").first.click()
    dialog = page.locator(".modal-ux")
    expect(dialog).to_be_visible()
    with page.expect_popup() as popup_info:
        dialog.locator("button.authorize").first.click()
    popup = popup_info.value
    world.sign_in(popup)
    world.consent(popup)
    if not popup.is_closed():  # it may close (its redirect page's work done) before we wait
        popup.wait_for_event("close", timeout=15_000)
    expect(page.get_by_text("Authorized", exact=True)).to_be_visible(timeout=15_000)
    page.get_by_role("button", name="Close", exact=True).click()

    operation = page.locator(".opblock-get").filter(has_text="/documents").first
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    expect(
        operation.locator(".live-responses-table tr.response .response-col_status").first
    ).to_have_text(re.compile("200"))
    assert outside == [], outside
