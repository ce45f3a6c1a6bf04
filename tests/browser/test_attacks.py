"""What another site cannot do to a signed-in user: post the consent form for them, or frame
the sign-in page (clickjacking). The attacker's pages are on ``127.0.0.1``, another site than
``localhost`` where tokensmith runs; they use a plain form and a click, no script."""

from __future__ import annotations

from urllib.parse import urlencode

from playwright.sync_api import Page, expect

from tests.browser.conftest import World


def test_cross_site_form_post_to_consent_is_refused(world: World, page: Page) -> None:
    page.goto(world.urls.web)
    page.get_by_role("link", name="Sign in with tokensmith").click()
    world.sign_in(page)
    expect(page.get_by_role("button", name="Allow")).to_be_visible()
    # the worst case: the attacker even knows this consent's transaction and CSRF token
    fields = {
        name: page.locator(f'input[name="{name}"]').get_attribute("value") or ""
        for name in ("txn", "csrf_token")
    }
    query = urlencode({"action": f"{world.urls.issuer}/consent", **fields, "decision": "allow"})
    page.goto(f"{world.attacker}/csrf?{query}")
    with page.expect_response(f"{world.urls.issuer}/consent") as posted:
        page.get_by_role("button", name="Claim").click()
    assert posted.value.status == 403
    assert posted.value.request.all_headers().get("sec-fetch-site") == "cross-site"
    expect(page.get_by_role("heading", name="The form could not be accepted")).to_be_visible()
    assert not page.url.startswith(world.urls.web)
    page.goto(world.urls.web)
    expect(page.get_by_role("link", name="Sign in with tokensmith")).to_be_visible()


def test_login_page_refuses_to_be_framed(world: World, page: Page) -> None:
    login = f"{world.urls.web}/auth/tokensmith/login?next=/"
    page.goto(login)  # a real sign-in page, with its transaction
    expect(page.get_by_label("Password")).to_be_visible()
    target = page.url
    page.goto(f"{world.attacker}/frame?{urlencode({'src': target})}")
    page.wait_for_load_state("load")
    control = page.frame_locator("#control")
    expect(control.locator("#hello")).to_have_text("hello")  # frames do load on this page
    victim = next(
        f for f in page.frames if f.name == "" and f != page.main_frame and "hello" not in f.url
    )
    assert victim.locator("#password").count() == 0
    assert victim.locator("form").count() == 0
    expect(page.frame_locator("#victim").locator("#password")).to_have_count(0)
