"""Audit events (issue 8): login success and failure, consent, tokens issued, refreshed and
revoked, reuse detected, logout; stored in ts_audit_events by a background writer."""

from __future__ import annotations

from tests.server.harness import ServerEnv
from tests.support.audit import events
from tests.support.clients import refresh, start


async def test_audit_trail_of_a_session(server_env: ServerEnv) -> None:
    env = server_env
    user = await env.user()
    client, body = await start(env)
    ua = env.browser()
    flow = await env.start_authorize(ua, client)
    await env.login(ua, flow.response, password="wrong password")
    first = str(body["refresh_token"])
    rotated = (await refresh(env, client, first)).json()
    await refresh(env, client, first)  # reuse
    await env.revoke(client, rotated["access_token"])
    names = [e[0] for e in await events(env)]
    for expected in (
        "login.failed",
        "login.succeeded",
        "consent.granted",
        "token.issued",
        "token.refreshed",
        "refresh_token.reused",
        "token.revoked",
    ):
        assert expected in names, (expected, names)
    logins = [e for e in await events(env) if e[0] == "login.succeeded"]
    assert logins[0][2] == user.id
