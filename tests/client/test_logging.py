"""What a provider or a browser sends cannot forge lines in the toolkit's log (CWE-117).

The callback's ``error_description`` is attacker-controlled (anyone can send a victim's browser,
or their own, to ``/auth/op/callback?error=...&error_description=...%0A...``); it is logged with
every non-printable character escaped, so each log record stays one line.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.client.conftest import APP, MakeEnv, assert_error_page, login, oidc_provider
from tests.client.fake_oidc import FakeOIDC
from tokensmith.client import LoginError, ProviderError

FORGED = "nope\r\nINFO tokensmith.client login: provider=op user=admin\u2028\x1b[2Jx"


@pytest.mark.parametrize(
    ("error", "page"), [("access_denied", "LoginCancelled"), ("server_error", "ProviderError")]
)
async def test_error_description_cannot_forge_log_lines(
    make_env: MakeEnv, fake_oidc: FakeOIDC, caplog: pytest.LogCaptureFixture, error: str, page: str
) -> None:
    env = await make_env({"op": oidc_provider(fake_oidc)})
    browser = env.browser()
    flow = await login(browser, "op", complete=False)
    query = parse_qs(urlsplit(flow.callback_url).query)
    caplog.set_level(logging.DEBUG, logger="tokensmith.client")
    response = await browser.get(
        f"{APP}/auth/op/callback",
        params={
            "state": query["state"][0],
            "iss": query["iss"][0],
            "error": error,
            "error_description": FORGED,
        },
    )
    assert_error_page(response, 400, page)
    messages = [record.getMessage() for record in caplog.records]
    logged = [m for m in messages if "nope" in m]
    assert logged, messages  # the description is logged...
    for message in messages:  # ...but every record stays one line, without terminal escapes
        assert message.isprintable(), repr(message)
    assert "\\r\\nINFO tokensmith.client" in logged[0]


def test_error_details_are_escaped_when_made() -> None:
    assert LoginError("a\nb\x00c\u2028d").detail == "a\\nb\\x00c\\u2028d"
    assert ProviderError("é ok", error="invalid_grant").detail == "é ok"  # printable stays
