"""CloudDocs web with "Login with GitHub" (a local GitHub stand-in): the button appears only when
GitHub is configured, and a GitHub sign-in lands on a page that explains where documents are."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.client.fake_github import FakeGitHub
from tests.client.servers import dead_url, serve
from tokensmith.demo.clouddocs.web import CloudDocsWebConfig, create_web

WEB = "http://web.clouddocs.test"


def web_config(tmp_path: Path, **overrides: Any) -> CloudDocsWebConfig:
    values: dict[str, Any] = {
        "issuer": dead_url(),  # tokensmith is not needed for these pages
        "client_id": "web",
        "client_secret": "secret",
        "base_url": WEB,
        "api_url": dead_url(),
        "secret_key": b"s" * 32,
        "database_path": tmp_path / "web.sqlite3",
    }
    values.update(overrides)
    return CloudDocsWebConfig(**values)


@pytest.fixture
async def fake_github() -> AsyncIterator[FakeGitHub]:
    fake = FakeGitHub()
    async with serve(fake.app):
        yield fake


async def open_web(config: CloudDocsWebConfig) -> tuple[Any, httpx.AsyncClient]:
    app = create_web(config)
    client = httpx.AsyncClient(
        mounts={"all://web.clouddocs.test": httpx.ASGITransport(app=app)},
        follow_redirects=True,
        timeout=10.0,
    )
    return app, client


async def test_without_github_settings_there_is_no_github_button(tmp_path: Path) -> None:
    app, client = await open_web(web_config(tmp_path))
    async with app.router.lifespan_context(app), client:
        home = await client.get(f"{WEB}/")
    assert "Sign in with tokensmith" in home.text
    assert "GitHub" not in home.text
    assert "script" not in home.text.lower()
    assert "default-src 'none'" in home.headers["content-security-policy"]


async def test_login_with_github(tmp_path: Path, fake_github: FakeGitHub) -> None:
    config = web_config(
        tmp_path,
        github_client_id=fake_github.client_id,
        github_client_secret=fake_github.client_secret,
        github_base_url=fake_github.url,
        github_api_url=fake_github.url,
    )
    app, client = await open_web(config)
    async with app.router.lifespan_context(app), client:
        home = await client.get(f"{WEB}/")
        assert "Sign in with GitHub" in home.text
        landed = await client.get(f"{WEB}/auth/github/login?next=/")
        assert str(landed.url) == f"{WEB}/"
        assert "Welcome, Alice Liddell" in landed.text
        assert "You signed in with GitHub" in landed.text
        assert "Sign out" in landed.text
        # documents need a tokensmith account: the document routes send a GitHub user home
        form = await client.post(f"{WEB}/documents", data={"title": "x"}, follow_redirects=False)
        assert form.status_code == 303
        assert form.headers["location"] == "/"
