"""What a person sees on the server's pages (issue 15, trap 10): the product name in every title
and header, a favicon (no 404), and on the consent page what the API registered as a scope's
description first, its technical name second. The strict CSP holds on every page."""

from __future__ import annotations

import re

from tests.server.harness import ServerEnv
from tests.support.pages import (
    assert_page_headers,
    assert_same_origin_resources,
    open_consent,
    open_login,
)

API = "https://api.pages.test"


async def test_favicon_is_served_not_404(server_env: ServerEnv) -> None:
    response = await server_env.browser().get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.content.startswith(b"<svg ")
    assert b"<script" not in response.content
    login = await server_env.browser().get("/login?txn=ts_ix_nothing")
    assert '<link rel="icon" href="/favicon.ico" type="image/svg+xml">' in login.text


async def test_pages_carry_the_default_product_name(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    page, _, _ = await open_login(env, env.browser(), client)
    assert "<title>Sign in · tokensmith</title>" in page.text
    assert '<span class="product-name">tokensmith</span>' in page.text


async def test_pages_carry_the_configured_product_name(server_env: ServerEnv) -> None:
    settings = server_env.settings.model_copy(update={"product_name": "Example <Corp> sign-in"})
    async with ServerEnv.start(settings, server_env.clock) as env:
        client = await env.client()
        await env.user()
        ua = env.browser()
        login, _, _ = await open_login(env, ua, client)
        escaped = "Example &lt;Corp&gt; sign-in"
        assert f"<title>Sign in · {escaped}</title>" in login.text
        assert f'<span class="product-name">{escaped}</span>' in login.text
        assert "· tokensmith<" not in login.text
        error = await env.browser().get("/login?txn=ts_ix_nothing")
        assert f"· {escaped}</title>" in error.text
        consent, _, _ = await open_consent(env, env.browser(), client)
        assert f"<title>Allow access? · {escaped}</title>" in consent.text
        account = await ua.get("/account")
        assert f"· {escaped}</title>" in account.text


async def test_consent_shows_the_registered_description_first(server_env: ServerEnv) -> None:
    env = server_env
    await env.admin.create_api(
        identifier=API,
        scopes=["notes:read", "notes:share"],
        name="Notes API",
        descriptions={"notes:read": "Read your notes", "notes:share": "Share notes for you"},
    )
    client = await env.client(api=API, scopes=["notes:read", "notes:share"])
    await env.user()
    page, _, _ = await open_consent(env, env.browser(), client, scope="notes:read notes:share")
    assert_page_headers(page)
    assert_same_origin_resources(page.text)
    items = re.findall(r'<ul class="scopes">(.*?)</ul>', page.text, re.DOTALL)[0]
    entries = re.findall(
        r'<li><span class="scope-description">([^<]*)</span> '
        r'<span class="scope-name">([^<]*)</span></li>',
        items,
    )
    assert entries == [
        ("Read your notes", "notes:read"),
        ("Share notes for you", "notes:share"),
    ]
    assert 'style="' not in page.text
    assert "<style" not in page.text
