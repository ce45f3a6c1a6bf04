"""Per-client "MFA required" (issue 18): a client option that asks for a second factor at
/authorize exactly like the server-wide ``mfa_required`` policy, for that client only. Over HTTP
on SQLite and PostgreSQL (and Redis for the short-lived state); the CLI and the stored column."""

from __future__ import annotations

from tests.server.harness import ServerEnv, assert_redirect_error
from tests.support.cli import Cli
from tests.support.mfa import OIDC, enrol, finish, signed_in, submit_code, to_second_step, tokens
from tests.support.oidc import oidc_client, verify_id_token
from tokensmith.admin.views import client_json
from tokensmith.core.mfa import ACR_MULTI_FACTOR


async def refused_without_a_factor(env: ServerEnv) -> None:
    plain = await oidc_client(env, name="Plain")
    strict = await oidc_client(env, name="Strict", mfa_required=True)
    assert client_json(strict.client)["mfa_required"] is True
    assert client_json(plain.client)["mfa_required"] is False
    await env.user()
    ua = env.browser()
    refused = await env.authorize(ua, strict, **OIDC)
    assert_redirect_error(
        refused.response,
        "unmet_authentication_requirements",
        redirect_uri=refused.params["redirect_uri"],
        state=refused.params["state"],
        issuer=env.settings.issuer,
        status=303,
    )
    # the same single-factor session signs in to a client without the option
    fine = await env.authorize(ua, plain, **OIDC)
    assert "code" in fine.result
    # with a factor set up, a fresh browser gets the second step for the strict client
    enrolment = await enrol(env, ua)
    other = env.browser()
    flow, page = await to_second_step(env, other, strict, **OIDC)
    done = await finish(env, other, await submit_code(env, other, page, enrolment.code(env)))
    claims = await verify_id_token(env, strict, await tokens(env, strict, done, flow))
    assert claims["acr"] == ACR_MULTI_FACTOR


async def test_a_client_that_requires_mfa_refuses_a_user_without_a_factor(
    server_env: ServerEnv,
) -> None:
    await refused_without_a_factor(server_env)


async def test_with_redis(redis_env: ServerEnv) -> None:
    await refused_without_a_factor(redis_env)


async def test_prompt_none_is_refused_the_same_way(server_env: ServerEnv) -> None:
    env = server_env
    plain = await oidc_client(env, name="Plain")
    strict = await oidc_client(env, name="Strict", mfa_required=True)
    await env.user()
    ua = await signed_in(env, plain)
    flow = await env.start_authorize(ua, strict, prompt="none", **OIDC)
    assert_redirect_error(
        flow.response,
        "unmet_authentication_requirements",
        redirect_uri=flow.params["redirect_uri"],
        state=flow.params["state"],
        issuer=env.settings.issuer,
    )


async def test_turning_it_on_applies_to_the_next_authorization(server_env: ServerEnv) -> None:
    env = server_env
    client = await oidc_client(env)
    await env.user()
    ua = await signed_in(env, client)
    updated = await env.admin.update_client(client.client.client_id, changes={"mfa_required": True})
    assert updated.mfa_required
    env.clock.advance(env.settings.client_cache_ttl + 1)  # the server's cached copy expires
    again = await env.start_authorize(ua, client, **OIDC)
    assert again.response.status_code in (302, 303)
    assert again.result.get("error") == "unmet_authentication_requirements", again.result
    # a single-factor session of a user who has a factor is stepped up, then gets a code
    enrolment = await enrol(env, await signed_in(env, await oidc_client(env, name="Plain")))
    step = await env.start_authorize(ua, client, **OIDC)
    assert step.location.startswith(env.settings.mfa_path)
    page = await ua.get(step.location)
    done = await finish(env, ua, await submit_code(env, ua, page, enrolment.code(env)))
    result = done.headers["location"]
    assert "code=" in result, result
    await env.admin.update_client(client.client.client_id, changes={"mfa_required": False})
    stored = await env.admin.get_client(client.client.client_id)
    assert not stored.mfa_required


def test_clients_create_and_update_mfa_required(sqlite_url: str) -> None:
    cli = Cli(sqlite_url)
    created = cli.json(
        "clients", "create", "--name", "Strict", "--redirect-uri", "https://rp.test/cb",
        "--mfa-required",
    )  # fmt: skip
    assert created["mfa_required"] is True
    client_id = created["client_id"]
    assert "MFA required: yes" in " ".join(cli("clients", "show", client_id).stdout.split())
    off = cli.json("clients", "update", client_id, "--no-mfa-required")
    assert off["mfa_required"] is False
    on = cli.json("clients", "update", client_id, "--mfa-required")
    assert on["mfa_required"] is True
