"""The code samples of docs/client.md, imported and run against the stand-in providers."""

from __future__ import annotations

import importlib.util
import re
import secrets
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from tests.client.conftest import APP, login
from tests.client.fake_github import FakeGitHub
from tests.client.fake_oidc import FakeOIDC

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLES = DOCS / "examples"
LINK = re.compile(r"\[([^\]]+)\]\(([^)\s#]+)(?:#[^)]*)?\)")


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def browser_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        mounts={APP: httpx.ASGITransport(app=app)}, follow_redirects=False, timeout=10.0
    )


async def test_client_github_example(fake_github: FakeGitHub, tmp_path: Path) -> None:
    example = load("client_github")
    settings = example.Settings(
        secret_key=secrets.token_bytes(32),
        base_url=APP,
        github_client_id=fake_github.client_id,
        github_client_secret=fake_github.client_secret,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/example.db",
        github_base_url=fake_github.url,
        github_api_url=fake_github.url,
    )
    app = example.create_app(settings)
    async with app.router.lifespan_context(app), browser_for(app) as browser:
        home = await browser.get(f"{APP}/")
        assert "Login with GitHub" in home.text
        flow = await login(browser, "github", next="/")
        assert flow.callback is not None
        assert flow.callback.headers["location"] == f"{APP}/"
        home = await browser.get(f"{APP}/")
        assert "Signed in as user" in home.text
        profile = await browser.get(f"{APP}/api/github-profile")
        assert profile.json() == {"login": "alice"}
        csrf = home.text.split('name="csrf_token" value="')[1].split('"')[0]
        out = await browser.post(f"{APP}/auth/logout", data={"csrf_token": csrf})
        assert out.status_code == 303
        assert "Login with GitHub" in (await browser.get(f"{APP}/")).text


async def test_client_oidc_frontend_example(fake_oidc: FakeOIDC, tmp_path: Path) -> None:
    example = load("client_oidc_frontend")
    app = example.create_app(
        secret_key=secrets.token_bytes(32),
        base_url=APP,
        frontend_url="https://spa.test",
        issuer=fake_oidc.issuer,
        client_id=fake_oidc.client_id,
        client_secret=fake_oidc.client_secret,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/example.db",
        google_client=("google-id", "google-secret"),
    )
    async with app.router.lifespan_context(app), browser_for(app) as browser:
        assert (await browser.get(f"{APP}/api/me")).status_code == 401
        flow = await login(browser, "corp")
        assert flow.callback is not None
        assert flow.callback.headers["location"] == "https://spa.test/welcome"
        me = await browser.get(f"{APP}/api/me")
        assert me.json()["provider"] == "corp"
        session = (await browser.get(f"{APP}/auth/session")).json()
        out = await browser.post(
            f"{APP}/auth/logout",
            headers={"X-CSRF-Token": session["csrf_token"], "Origin": "https://spa.test"},
        )
        assert out.status_code == 303
        assert out.headers["location"].startswith(f"{fake_oidc.url}/logout?")
        assert (await browser.get(f"{APP}/api/me")).status_code == 401


def test_every_link_of_the_client_page_resolves() -> None:
    """Relative links resolve from docs/, and a link that shows a path shows the real one."""
    page = DOCS / "client.md"
    links = LINK.findall(page.read_text(encoding="utf-8"))
    local = [(text, target) for text, target in links if "://" not in target]
    assert local
    for text, target in local:
        path = (page.parent / target).resolve()
        assert path.is_file(), f"{target} does not exist"
        shown = text.strip("`")
        if "/" in shown:
            assert path == (DOCS.parent / shown).resolve(), f"{text} shows another path"


def test_every_linked_example_is_run_here() -> None:
    """Each docs/examples/client_*.py the page links to has a test in this module."""
    text = (DOCS / "client.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\(examples/(client_\w+)\.py\)", text))
    assert linked == {path.stem for path in EXAMPLES.glob("client_*.py")}
    for name in linked:
        assert f"test_{name}_example" in globals(), name
