"""RFC 9700 checklist for the client toolkit (security checklist §1b, BCP-C01..C13).

Most items are proved in ``tests/client`` (``docs/security.md`` points at them); these use the same
fake OpenID provider and app.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.client.conftest import APP, MakeEnv, login, oidc_provider
from tests.client.fake_oidc import FakeOIDC


async def test_bcp_c08_authorization_url_is_code_flow(
    make_env: MakeEnv, fake_oidc: FakeOIDC
) -> None:
    env = await make_env({"op": oidc_provider(fake_oidc)})
    for _ in range(2):
        flow = await login(env.browser(), "op", complete=False)
        query = parse_qs(urlsplit(flow.start.headers["location"]).query)
        assert query["response_type"] == ["code"]
        assert query["code_challenge_method"] == ["S256"]
        assert "response_mode" not in query or query["response_mode"] == ["query"]


async def test_bcp_c11_callback_strips_code_and_sets_headers(
    make_env: MakeEnv, fake_oidc: FakeOIDC
) -> None:
    env = await make_env({"op": oidc_provider(fake_oidc)})
    flow = await login(env.browser(), "op", next="/documents")
    assert flow.callback is not None
    callback = flow.callback
    assert callback.status_code == 303, callback.text
    location = callback.headers["location"]
    assert "code=" not in location
    assert "state=" not in location
    assert location in ("/documents", APP + "/documents"), location
    assert callback.headers["referrer-policy"] == "no-referrer"
    assert "no-store" in callback.headers["cache-control"]
