"""Two-step verification through the real pages: set up an authenticator on the account page
(the key read from the page, codes computed with pyotp at the server's test clock) or register a
passkey there (``tests.support.authenticator``), and sign in with a code."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyotp

from tests.server.harness import PASSWORD, Flow, ServerEnv, hidden_fields, query_of
from tests.support.authenticator import SoftAuthenticator
from tokensmith.core.registration import NewClient

KEY = re.compile(r'id="totp-key">([A-Z2-7 ]+)<')
RECOVERY = re.compile(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>")
RP_ID = "as.test"
ORIGIN = "https://as.test"


@dataclass
class Enrolment:
    secret: str
    recovery_codes: list[str]

    def code(self, env: ServerEnv, *, offset: int = 0) -> str:
        """The code of the time step ``offset`` steps from the server's clock."""
        return pyotp.TOTP(self.secret).at(int(env.clock()), counter_offset=offset)


def csrf(page: httpx.Response) -> str:
    return hidden_fields(page.text)["csrf_token"]


async def enrol(env: ServerEnv, ua: httpx.AsyncClient) -> Enrolment:
    """Set up TOTP for the user signed in to ``ua``; the clock moves to the next time step
    afterwards, so the enrolment's code is not the next sign-in's."""
    account = await ua.get(env.settings.account_path)
    assert account.status_code == 200, account.text[:300]
    token = csrf(account)
    started = await ua.post("/account/mfa/totp", data={"csrf_token": token, "password": PASSWORD})
    assert started.status_code == 303, started.text[:300]
    setup = await ua.get(started.headers["location"])
    assert setup.status_code == 200
    assert 'src="data:image/svg+xml' in setup.text
    match = KEY.search(setup.text)
    assert match, setup.text
    secret = match.group(1).replace(" ", "")
    code = pyotp.TOTP(secret).at(int(env.clock()))
    done = await ua.post("/account/mfa/totp/confirm", data={"csrf_token": token, "code": code})
    assert done.status_code == 200, done.text[:500]
    codes = RECOVERY.findall(done.text)
    assert len(codes) == 10
    env.clock.advance(30)
    return Enrolment(secret, codes)


async def register_passkey(
    env: ServerEnv,
    ua: httpx.AsyncClient,
    auth: SoftAuthenticator,
    name: str = "Laptop",
    *,
    password: str = PASSWORD,
) -> httpx.Response:
    """Register ``auth``'s passkey on the account page of the user signed in to ``ua``."""
    account = await ua.get(env.settings.account_path)
    assert account.status_code == 200, account.text[:300]
    token = csrf(account)
    options = await ua.post(
        env.settings.account_path + "/passkeys/options", data={"csrf_token": token}
    )
    assert options.status_code == 200, options.text[:300]
    assert options.headers["cache-control"] == "no-store"
    body = options.json()
    assert body["rp"]["id"] == RP_ID
    assert body["authenticatorSelection"]["residentKey"] == "required"
    assert body["authenticatorSelection"]["userVerification"] == "preferred"
    return await ua.post(
        env.settings.account_path + "/passkeys",
        data={
            "csrf_token": token,
            "name": name,
            "credential": auth.create(body),
            "password": password,
        },
    )


async def to_second_step(
    env: ServerEnv, ua: httpx.AsyncClient, client: NewClient, **params: str | None
) -> tuple[Flow, httpx.Response]:
    """Authorize and type the password: the browser is sent to the second step, whose page is
    returned (with the flow)."""
    flow = await env.start_authorize(ua, client, **params)
    response = flow.response
    for _ in range(3):
        path = urlsplit(response.headers.get("location", "")).path
        if path == env.settings.mfa_path:
            page = await ua.get(response.headers["location"])
            assert page.status_code == 200, page.text[:300]
            return flow, page
        assert path == env.settings.login_path, (response.status_code, response.text[:300])
        login = await ua.get(response.headers["location"])
        fields = hidden_fields(login.text)
        fields.update(username="alice", password=PASSWORD)
        response = await ua.post(env.settings.login_path, data=fields)
    raise AssertionError("never reached the second step")


async def submit_code(
    env: ServerEnv, ua: httpx.AsyncClient, page: httpx.Response, code: str, *, factor: str = "totp"
) -> httpx.Response:
    fields = hidden_fields(page.text)
    fields.update(factor=factor, code=code)
    return await ua.post(env.settings.mfa_path, data=fields)


async def finish(env: ServerEnv, ua: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
    """After the second step: consent when asked, until the browser leaves for the client."""
    return await env.login(ua, response)


OIDC = {"scope": "openid profile", "nonce": "n-1"}


async def signed_in(env: ServerEnv, client: NewClient) -> httpx.AsyncClient:
    """A browser signed in with the password only (alice has no second factor yet)."""
    ua = env.browser()
    flow = await env.authorize(ua, client, **OIDC)
    assert flow.response.status_code == 303, flow.response.text[:300]
    return ua


async def tokens(env: ServerEnv, client: NewClient, response: httpx.Response, flow: Any) -> Any:
    assert response.status_code == 303, response.text[:500]
    result = query_of(response.headers["location"])
    assert "code" in result, result
    redeemed = await env.redeem(client, result["code"], flow.verifier)
    assert redeemed.status_code == 200, redeemed.text
    body = redeemed.json()
    body["_nonce"] = flow.params.get("nonce")
    return body
