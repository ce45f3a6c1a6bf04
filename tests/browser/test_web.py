"""The CloudDocs web app in Chromium: sign-in, consent, documents, sign-out, Deny, and SSO."""

from __future__ import annotations

import re

from playwright.sync_api import Page, Request, expect

from tests.browser.conftest import World


def test_web_login_consent_create_read_logout(world: World, page: Page) -> None:
    page.goto(world.urls.web)
    expect(page.get_by_role("heading", name="Your documents, anywhere")).to_be_visible()
    page.get_by_role("link", name="Sign in with tokensmith").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(world.urls.issuer)}/login\?"))
    world.sign_in(page)
    # the consent page names the API the client asks for, then what it may do there
    expect(page.locator("p.lead")).to_contain_text("CloudDocs asks to use CloudDocs API")
    expect(page.get_by_text("Create, change and delete your documents.")).to_be_visible()
    world.consent(page)

    expect(page).to_have_url(f"{world.urls.web}/")
    expect(page.get_by_text("Signed in as")).to_contain_text("Demo User")
    expect(page.get_by_text("No documents yet")).to_be_visible()
    page.get_by_label("Title").fill("Launch plan")
    page.get_by_label("Text").fill("1. Write it\n2. Ship it")
    page.get_by_role("button", name="Create document").click()

    expect(page.get_by_role("heading", name="Launch plan")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.locator("#doc-body")).to_have_text("1. Write it\n2. Ship it")
    page.get_by_role("link", name="All documents").click()
    expect(page.get_by_role("list", name="Your documents")).to_contain_text("Launch plan")

    # an hour later the access token has expired: the app refreshes it without bothering anyone
    world.clock.advance(3600)
    page.reload()
    expect(page.get_by_role("list", name="Your documents")).to_contain_text("Launch plan")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(world.urls.web)}/signed-out\??$"))
    expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()
    # the tokensmith session ended too: signing in again asks for the password
    page.get_by_role("link", name="Sign in with tokensmith").click()
    expect(page.get_by_label("Password")).to_be_visible()


def test_deny_on_consent_shows_a_clear_page_in_the_web_app(world: World, page: Page) -> None:
    page.goto(world.urls.web)
    page.get_by_role("link", name="Sign in with tokensmith").click()
    world.sign_in(page)
    world.consent(page, "Deny")
    expect(page).to_have_url(re.compile(rf"^{re.escape(world.urls.web)}/auth/tokensmith/callback"))
    expect(page.get_by_role("heading", name="Sign-in cancelled")).to_be_visible()
    expect(page.get_by_text("You cancelled the sign-in. Nothing was changed")).to_be_visible()
    page.get_by_role("link", name="Back to the application").click()
    expect(page.get_by_role("link", name="Sign in with tokensmith")).to_be_visible()
    expect(page.get_by_text("Signed in as")).to_have_count(0)


def test_second_client_reuses_the_sso_session_without_a_password(world: World, page: Page) -> None:
    password_posts: list[str] = []

    def watch(request: Request) -> None:
        if request.method == "POST" and request.url == f"{world.urls.issuer}/login":
            password_posts.append(request.url)

    page.on("request", watch)
    world.web_sign_in(page)
    assert len(password_posts) == 1

    page.goto(world.urls.spa)
    page.get_by_role("button", name="Sign in with tokensmith").click()
    # straight to the consent of the second client: no sign-in form
    expect(page.locator("p.lead")).to_contain_text("CloudDocs SPA asks to use CloudDocs API")
    world.consent(page)
    expect(page).to_have_url(f"{world.urls.spa}/")
    expect(page.locator("#user-name")).to_have_text("Demo User")
    expect(page.get_by_role("heading", name="Your documents")).to_be_visible()
    assert len(password_posts) == 1
