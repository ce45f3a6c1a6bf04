"""The toolkit's error page (issue 15, trap 10): styled like tokensmith's own pages under a strict
CSP (its one style block allowed by hash, no 'unsafe-inline'), and replaceable by the app."""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi.responses import HTMLResponse

from tests.client.conftest import APP, MakeEnv, assert_error_page, github_provider, login
from tests.client.fake_github import FakeGitHub
from tokensmith.client import EmailNotVerified, ErrorPage


async def test_default_error_page_is_styled_under_a_strict_csp(
    make_env: MakeEnv, fake_github: FakeGitHub
) -> None:
    env = await make_env({"github": github_provider(fake_github)})
    page = await env.browser().get(f"{APP}/auth/github/callback?state=x&code=y")
    assert_error_page(page, 400, "InvalidState")
    csp = page.headers["content-security-policy"]
    assert "unsafe-inline" not in csp
    assert "default-src 'none'" in csp
    assert "script-src" not in csp
    (style,) = re.findall(r"<style>(.*?)</style>", page.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in csp
    assert ".card{" in style  # the look of the server's pages
    assert '<main class="card">' in page.text
    assert "<script" not in page.text
    assert ' style="' not in page.text


async def test_app_hook_renders_its_own_error_page(
    make_env: MakeEnv, fake_github: FakeGitHub
) -> None:
    seen: list[ErrorPage] = []

    def my_page(page: ErrorPage) -> HTMLResponse:
        seen.append(page)
        return HTMLResponse(
            f"<h1>Oops: {page.title}</h1><a href='{page.retry_url}'>back</a>",
            status_code=page.status_code,
        )

    fake_github.current_user = "mallory"  # primary e-mail unverified
    env = await make_env({"github": github_provider(fake_github)}, error_page=my_page)
    flow = await login(env.browser(), "github")
    assert flow.callback is not None
    assert flow.callback.status_code == 403
    assert flow.callback.text.startswith("<h1>Oops: E-mail address not verified</h1>")
    assert flow.callback.headers["cache-control"] == "no-store"
    (page,) = seen
    assert isinstance(page.error, EmailNotVerified)
    assert page.code == "EmailNotVerified"
    assert page.retry_url == f"{APP}/"
    # the toolkit still clears its transaction cookie on the app's page
    cleared = [h for h in flow.callback.headers.get_list("set-cookie") if "Max-Age=0" in h]
    assert any("_tx_" in h for h in cleared)
