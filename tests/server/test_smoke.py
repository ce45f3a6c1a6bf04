from __future__ import annotations

from tests.server.harness import ServerEnv


async def test_code_flow_end_to_end(server_env: ServerEnv) -> None:
    env = server_env
    client = await env.client()
    await env.user()
    ua = env.browser()
    flow = await env.authorize(ua, client)
    assert flow.response.status_code == 303, flow.response.text
    assert flow.location.startswith("https://rp.test/cb?")
    result = flow.result
    assert result["state"] == flow.params["state"]
    assert result["iss"] == env.settings.issuer
    token = await env.redeem(client, flow.code, flow.verifier)
    assert token.status_code == 200, token.text
    body = token.json()
    claims = await env.decode_access_token(body["access_token"])
    assert claims["scope"] == "docs:read"
