"""The code samples of docs/resource-server.md, run for real (those of docs/testing.md are a
project of their own: tests/testing/test_fresh_project.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tokensmith.resource import CombinedValidator
from tokensmith.testing import LocalIssuer

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_resource_fastapi_sample(tokensmith_issuer: LocalIssuer) -> None:
    sample = load("resource_fastapi")
    async with httpx.AsyncClient() as http:
        app = sample.create_app(tokensmith_issuer.url, tokensmith_issuer.default_audience, http)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notes") as api:
            reader = tokensmith_issuer.token(sub="dana", scopes=["notes:read"])
            headers = {"Authorization": f"Bearer {reader}"}
            listed = await api.get("/notes", headers=headers)
            assert listed.json() == {"owner": "dana", "scopes": ["notes:read"]}
            denied = await api.post("/notes", headers=headers)
            assert denied.status_code == 403
            assert 'scope="notes:read notes:write"' in denied.headers["www-authenticate"]
            assert (await api.get("/notes")).headers["www-authenticate"] == 'Bearer realm="notes"'
            assert "usePkceWithAuthorizationCodeGrant" in (await api.get("/docs")).text


async def test_resource_validate_sample(
    tokensmith_issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = load("resource_validate")
    issuer, audience = tokensmith_issuer.url, tokensmith_issuer.default_audience
    principal = await sample.who_is_calling(
        tokensmith_issuer.token(sub="erin"), issuer=issuer, audience=audience
    )
    assert principal.subject == "erin"
    refused = await sample.who_is_calling(
        tokensmith_issuer.expired_token(), issuer=issuer, audience=audience
    )
    assert refused is None
    assert "refused: token expired" in capsys.readouterr().out


async def test_resource_opaque_sample(tokensmith_issuer: LocalIssuer) -> None:
    sample = load("resource_opaque")
    async with httpx.AsyncClient() as http:
        validator = sample.make_validator(
            http,
            issuer=tokensmith_issuer.url,
            audience=tokensmith_issuer.default_audience,
            client_id=tokensmith_issuer.introspection_client_id,
            client_secret=tokensmith_issuer.introspection_client_secret,
        )
        assert isinstance(validator, CombinedValidator)
        opaque = tokensmith_issuer.opaque_token(sub="finn")
        assert (await validator.validate(opaque)).token_type == "opaque"
        assert (await validator.validate(tokensmith_issuer.token())).token_type == "jwt"
