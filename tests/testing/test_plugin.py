"""The tokensmith pytest plugin and its LocalIssuer."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tokensmith.resource import InvalidTokenError, KeyNotFoundError
from tokensmith.testing import LocalIssuer, ThreadedServer

SRC = Path(__file__).resolve().parents[2] / "src"


def test_plugin_registered_through_entry_point(pytestconfig: pytest.Config) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("tokensmith")
    assert plugin is not None
    assert plugin.__name__ == "tokensmith.testing.plugin"


def test_plugin_import_is_cheap() -> None:
    code = (
        "import sys, tokensmith.testing.plugin\n"
        "heavy = ['jwt', 'cryptography', 'uvicorn', 'starlette', 'fastapi', 'httpx']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


async def test_issuer_serves_metadata_and_jwks_over_http(tokensmith_issuer: LocalIssuer) -> None:
    async with httpx.AsyncClient() as http:
        metadata = (await http.get(tokensmith_issuer.metadata_url)).json()
        assert metadata["issuer"] == tokensmith_issuer.url
        assert tokensmith_issuer.url.startswith("http://127.0.0.1:")
        response = await http.get(metadata["jwks_uri"])
    assert response.headers["cache-control"] == "public, max-age=300"
    (jwk,) = response.json()["keys"]
    assert jwk["kid"] == tokensmith_issuer.current_key.kid
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
    assert "d" not in jwk  # public part only


async def test_issuer_tokens_pass_the_production_validator(
    tokensmith_issuer: LocalIssuer,
) -> None:
    async with httpx.AsyncClient() as http:
        validator = tokensmith_issuer.validator(http)
        principal = await validator.validate(
            tokensmith_issuer.token(sub="carol", scopes=["a", "b"], expires_in=60)
        )
        assert (principal.subject, principal.scopes) == ("carol", frozenset({"a", "b"}))
        with pytest.raises(InvalidTokenError, match="expired"):
            await validator.validate(tokensmith_issuer.expired_token())
        with pytest.raises(InvalidTokenError, match="aud"):
            await validator.validate(tokensmith_issuer.token(audience="other"))
        with pytest.raises(InvalidTokenError, match="JWS rejected"):
            await validator.validate(tokensmith_issuer.foreign_key_token())
        with pytest.raises(KeyNotFoundError):
            await validator.validate(tokensmith_issuer.foreign_key_token(same_kid=False))


@pytest.mark.parametrize("alg", ["RS256", "PS256", "EdDSA", "ES384"])
async def test_issuer_makes_other_key_types(tokensmith_issuer: LocalIssuer, alg: str) -> None:
    key = tokensmith_issuer.rotate_key(alg, keep_old=False)
    async with httpx.AsyncClient() as http:
        validator = tokensmith_issuer.validator(http, algorithms=[alg])
        assert (await validator.validate(tokensmith_issuer.token())).subject == "alice"
        keys = (await http.get(tokensmith_issuer.jwks_uri)).json()["keys"]
    assert [k["kid"] for k in keys] == [key.kid]


async def test_rotate_and_remove_old_key(tokensmith_issuer: LocalIssuer) -> None:
    old = tokensmith_issuer.current_key
    old_token = tokensmith_issuer.token()
    new = tokensmith_issuer.rotate_key()
    assert [k.kid for k in tokensmith_issuer.keys] == [old.kid, new.kid]
    tokensmith_issuer.remove_key(old.kid)
    async with httpx.AsyncClient() as http:
        validator = tokensmith_issuer.validator(http)
        assert (await validator.validate(tokensmith_issuer.token())).subject == "alice"
        with pytest.raises(KeyNotFoundError):
            await validator.validate(old_token)


def test_issuer_url_is_published_in_the_environment(tokensmith_issuer: LocalIssuer) -> None:
    assert os.environ["TOKENSMITH_TEST_ISSUER"] == tokensmith_issuer.url
    assert tokensmith_issuer.url.startswith("http://127.0.0.1:")


def test_each_test_gets_a_reset_issuer(tmp_path: Path) -> None:
    """What one test changes on the issuer is gone in the next (both in a session of their own,
    so this test does not depend on which tests ran before it)."""
    (tmp_path / "test_reset.py").write_text(
        textwrap.dedent(
            """
            import time
            import httpx

            def test_changes_everything(tokensmith_issuer, tokensmith_issuer_session):
                tokensmith_issuer.rotate_key()
                tokensmith_issuer.jwks_max_age = 1
                tokensmith_issuer.outage = True
                tokensmith_issuer.clock = lambda: 0.0
                opaque = tokensmith_issuer.opaque_token()
                tokensmith_issuer.requests["/jwks.json"] += 1
                kid = tokensmith_issuer.current_key.kid
                tokensmith_issuer_session.left_behind = (kid, opaque)

            def test_sees_a_fresh_issuer(tokensmith_issuer):
                kid, opaque = tokensmith_issuer.left_behind
                assert [key.kid for key in tokensmith_issuer.keys] != [kid]
                assert len(tokensmith_issuer.keys) == 1
                assert tokensmith_issuer.jwks_max_age == 300
                assert tokensmith_issuer.outage is False
                assert tokensmith_issuer.clock is time.time
                assert tokensmith_issuer.jwks_requests == 0
                answer = httpx.post(
                    tokensmith_issuer.introspection_endpoint,
                    data={"token": opaque},
                    auth=(
                        tokensmith_issuer.introspection_client_id,
                        tokensmith_issuer.introspection_client_secret,
                    ),
                )
                assert answer.json() == {"active": False}
            """
        )
    )
    result = run_pytest(tmp_path)
    assert "2 passed" in result.stdout, result.stdout + result.stderr


async def test_introspection_endpoint_requires_client_authentication(
    tokensmith_issuer: LocalIssuer,
) -> None:
    token = tokensmith_issuer.opaque_token(scopes=["docs:read"])
    async with httpx.AsyncClient() as http:
        anonymous = await http.post(tokensmith_issuer.introspection_endpoint, data={"token": token})
        assert anonymous.status_code == 401
        authenticated = await http.post(
            tokensmith_issuer.introspection_endpoint,
            data={"token": token},
            auth=(
                tokensmith_issuer.introspection_client_id,
                tokensmith_issuer.introspection_client_secret,
            ),
        )
        assert authenticated.json()["active"] is True
        tokensmith_issuer.revoke(token)
        revoked = await http.post(
            tokensmith_issuer.introspection_endpoint,
            data={"token": token},
            auth=(
                tokensmith_issuer.introspection_client_id,
                tokensmith_issuer.introspection_client_secret,
            ),
        )
    assert revoked.json() == {"active": False}


def test_plugin_works_in_a_user_project(tmp_path: Path) -> None:
    """A downstream project gets the fixture from the entry point alone (no conftest)."""
    (tmp_path / "test_user_api.py").write_text(
        textwrap.dedent(
            """
            import asyncio
            import httpx
            import pytest
            from tokensmith.resource import InvalidTokenError

            def test_with_issuer(tokensmith_issuer):
                async def check():
                    async with httpx.AsyncClient() as http:
                        validator = tokensmith_issuer.validator(http)
                        ok = await validator.validate(tokensmith_issuer.token(sub="u1"))
                        assert ok.subject == "u1"
                        with pytest.raises(InvalidTokenError):
                            await validator.validate(tokensmith_issuer.expired_token())
                asyncio.run(check())

            def test_that_fails(tokensmith_issuer):
                assert tokensmith_issuer.token() == "not a token"
            """
        )
    )
    result = run_pytest(tmp_path)
    assert "1 failed, 1 passed" in result.stdout, result.stdout + result.stderr


def run_pytest(project: Path) -> subprocess.CompletedProcess[str]:
    """``python -m pytest`` in ``project``, a folder outside this repository (no conftest), with
    this checkout's tokensmith."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(SRC)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
        capture_output=True,
        text=True,
        cwd=project,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize(("lifespan", "expected"), [("on", ["startup", "shutdown"]), ("off", [])])
def test_threaded_server_runs_the_app_lifespan_when_asked(
    lifespan: Literal["on", "off"], expected: list[str]
) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def record(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    app = Starlette(routes=[Route("/", PlainTextResponse("ok"))], lifespan=record)
    with ThreadedServer(app, lifespan=lifespan) as server:
        assert events == expected[:1]
        assert httpx.get(server.url).text == "ok"
    assert events == expected
