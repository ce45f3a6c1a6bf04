"""The browser side of core, called directly with real stores (SQLite and PostgreSQL): the
``/authorize`` pipeline (``core.authorize``), the login and consent decisions
(``core.interaction``), logout (``core.logout``) and the account page (``core.account``).

Each answer is a value: where the browser goes, and how its session cookie changes; errors are
``OAuthError``s that say themselves whether they go to the client or to a page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.server.harness import PASSWORD, REDIRECT, ServerEnv, query_of
from tokensmith.core import account, interaction, logout
from tokensmith.core import authorize as authz
from tokensmith.core.audit import CONSENT_DENIED, CONSENT_GRANTED, CONSENT_WITHDRAWN, AuditEvent
from tokensmith.core.errors import (
    AuthorizationPageError,
    InteractionExpired,
    InvalidRequest,
    InvalidScope,
    LoginRequired,
    NotSignedIn,
    OAuthError,
)
from tokensmith.core.interaction import KEEP, AuthorizeOutcome, LoginForm
from tokensmith.core.models import Session
from tokensmith.core.registration import NewClient
from tokensmith.core.secrets import digest
from tokensmith.server.runtime import Runtime


@dataclass(frozen=True)
class FakeBrowser:
    """A browser as core sees it (``interaction.BrowserView``)."""

    browser_digest: str
    session: Session | None = None


ALICE = FakeBrowser("digest-of-alices-browser")
MALLORY = FakeBrowser("digest-of-another-browser")


@pytest.fixture
def env(server_env: ServerEnv) -> ServerEnv:
    return server_env


def runtime(env: ServerEnv) -> Runtime:
    rt: Runtime = env.app.state.runtime
    return rt


def events(env: ServerEnv) -> list[AuditEvent]:
    """Record the server's audit events from now on."""
    seen: list[AuditEvent] = []
    runtime(env).server.audit = seen.append
    return seen


def query(env: ServerEnv, client: NewClient, **overrides: str | None) -> str:
    params, _ = env.authorize_params(client, **overrides)
    return urlencode(params)


async def start(
    env: ServerEnv, client: NewClient, browser: FakeBrowser = ALICE, **overrides: str | None
) -> AuthorizeOutcome:
    rt = runtime(env)
    async with rt.db.transaction() as stores:
        return await authz.authorize(
            rt.server, query(env, client, **overrides), stores, browser=browser
        )


async def log_in(env: ServerEnv, txn: str, browser: FakeBrowser = ALICE) -> AuthorizeOutcome:
    rt = runtime(env)
    async with rt.db.transaction() as stores:
        started = await interaction.begin_login(
            rt.server, stores, browser, txn, "alice", address="192.0.2.1"
        )
    check = await interaction.check_password(rt.server, started, PASSWORD)
    async with rt.db.transaction() as stores:
        done = await interaction.finish_login(rt.server, stores, browser, started, check)
    assert isinstance(done, AuthorizeOutcome)
    return done


async def signed_in(env: ServerEnv, client: NewClient) -> tuple[FakeBrowser, AuthorizeOutcome]:
    """ALICE's browser after logging in at the login page of a new authorization."""
    first = await start(env, client)
    assert first.kind == "login"
    assert first.interaction_id
    done = await log_in(env, first.interaction_id)
    value = done.session.new_value
    assert value is not None
    async with runtime(env).db.transaction() as stores:
        session = await stores.sessions.get(
            digest(value, runtime(env).server.pepper), int(env.clock())
        )
    assert session is not None
    return FakeBrowser(ALICE.browser_digest, session), done


async def test_request_without_session_goes_to_the_login_page_of_this_browser(
    env: ServerEnv,
) -> None:
    client = await env.client()
    outcome = await start(env, client)
    assert outcome.kind == "login"
    assert outcome.location is None
    assert outcome.session == KEEP
    rt = runtime(env)
    async with rt.db.transaction() as stores:
        found = await interaction.load(rt.server, stores, ALICE, outcome.interaction_id)
        assert found.request.client_id == client.client.client_id
        with pytest.raises(InteractionExpired) as other:
            await interaction.load(rt.server, stores, MALLORY, outcome.interaction_id)
    assert not other.value.redirectable


async def test_unknown_client_is_a_page_error_never_a_redirect(env: ServerEnv) -> None:
    client = await env.client()
    with pytest.raises(AuthorizationPageError) as refused:
        await start(env, client, client_id="nobody")
    assert not refused.value.redirectable
    with pytest.raises(AuthorizationPageError) as wrong_uri:
        await start(env, client, redirect_uri="https://evil.test/cb")
    assert wrong_uri.value.redirectable is False


async def test_error_after_the_redirect_uri_is_trusted_goes_to_it_with_state(
    env: ServerEnv,
) -> None:
    client = await env.client()
    with pytest.raises(InvalidScope) as refused:
        await start(env, client, scope="admin", state="st-1")
    assert refused.value.return_to == interaction_return_to("st-1")
    location = authz.error_redirect_url(refused.value, "https://issuer.test")
    assert location.startswith(REDIRECT + "?")
    assert query_of(location) == {
        "error": "invalid_scope",
        "error_description": refused.value.description,
        "state": "st-1",
        "iss": "https://issuer.test",
    }


def interaction_return_to(state: str) -> Any:
    from tokensmith.core.errors import ReturnTo

    return ReturnTo(REDIRECT, state)


async def test_prompt_none_without_session_is_login_required_to_the_client(env: ServerEnv) -> None:
    client = await env.client()
    with pytest.raises(LoginRequired) as refused:
        await start(env, client, prompt="none", state="st-2")
    assert refused.value.return_to == interaction_return_to("st-2")


async def test_id_token_hint_not_ours_is_invalid_request_to_the_client(env: ServerEnv) -> None:
    client = await env.client()
    with pytest.raises(InvalidRequest) as refused:
        await start(env, client, id_token_hint="not.a.token", state="st-3")
    assert refused.value.redirectable
    assert refused.value.return_to == interaction_return_to("st-3")


def test_page_only_errors_never_become_redirects() -> None:
    error = AuthorizationPageError("the client is not registered").to_client(REDIRECT, "s")
    assert not error.redirectable
    assert error.return_to is None
    assert InvalidRequest("x").to_client(REDIRECT, "s").redirectable


async def test_login_returns_a_new_session_cookie_and_continues_to_consent(
    env: ServerEnv,
) -> None:
    await env.user()
    client = await env.client()
    browser, done = await signed_in(env, client)
    assert done.kind == "consent"
    assert done.session.new_value is not None
    assert not done.session.clear
    assert browser.session is not None
    assert browser.session.auth_time == int(env.clock())


async def test_wrong_password_is_the_login_page_again_with_401(env: ServerEnv) -> None:
    await env.user()
    client = await env.client()
    first = await start(env, client)
    assert first.interaction_id
    rt = runtime(env)
    async with rt.db.transaction() as stores:
        started = await interaction.begin_login(
            rt.server, stores, ALICE, first.interaction_id, "alice", address="192.0.2.1"
        )
    check = await interaction.check_password(rt.server, started, "wrong password")
    async with rt.db.transaction() as stores:
        page = await interaction.finish_login(rt.server, stores, ALICE, started, check)
    assert page == LoginForm(
        txn=first.interaction_id,
        client_name="CloudDocs Web",
        username="alice",
        error=interaction.WRONG_CREDENTIALS,
        status=401,
    )


async def test_consent_allow_records_the_consent_audits_and_issues_a_code(
    env: ServerEnv,
) -> None:
    await env.user()
    client = await env.client()
    browser, done = await signed_in(env, client)
    seen = events(env)
    rt = runtime(env)
    assert done.interaction_id
    async with rt.db.transaction() as stores:
        answer = await interaction.decide_consent(
            rt.server, stores, browser, done.interaction_id, "allow"
        )
    assert isinstance(answer, AuthorizeOutcome)
    assert answer.kind == "redirect"
    assert answer.location
    assert "code" in query_of(answer.location)
    assert [e.event for e in seen] == [CONSENT_GRANTED]
    async with rt.db.transaction() as stores:
        assert browser.session is not None
        granted = await stores.consents.granted_scopes(
            browser.session.user_id, client.client.client_id, "https://api.clouddocs.test"
        )
        assert granted == {"docs:read"}
        with pytest.raises(InteractionExpired):  # the code ended the interaction
            await interaction.load(rt.server, stores, browser, done.interaction_id)


async def test_consent_deny_sends_access_denied_and_ends_the_interaction(
    env: ServerEnv,
) -> None:
    await env.user()
    client = await env.client()
    browser, done = await signed_in(env, client)
    seen = events(env)
    rt = runtime(env)
    assert done.interaction_id
    async with rt.db.transaction() as stores:
        answer = await interaction.decide_consent(
            rt.server, stores, browser, done.interaction_id, "deny"
        )
    assert isinstance(answer, AuthorizeOutcome)
    assert answer.location
    assert query_of(answer.location)["error"] == "access_denied"
    assert [e.event for e in seen] == [CONSENT_DENIED]
    async with rt.db.transaction() as stores:
        with pytest.raises(InteractionExpired):
            await interaction.load(rt.server, stores, browser, done.interaction_id)


async def test_consent_without_session_goes_to_the_login_page(env: ServerEnv) -> None:
    client = await env.client()
    first = await start(env, client)
    assert first.interaction_id
    rt = runtime(env)
    async with rt.db.transaction() as stores:
        answer = await interaction.consent_page(rt.server, stores, ALICE, first.interaction_id)
    assert answer == AuthorizeOutcome("login", interaction_id=first.interaction_id)


async def test_logout_with_a_session_and_no_hint_asks_and_keeps_the_session(
    env: ServerEnv,
) -> None:
    await env.user()
    client = await env.client()
    browser, _ = await signed_in(env, client)
    rt = runtime(env)
    async with rt.db.transaction() as stores:
        asked = await logout.start(rt.server, stores, {}, browser.session)
    assert asked.kind == "confirm"
    assert asked.session == KEEP
    async with rt.db.transaction() as stores:
        done = await logout.confirm(rt.server, stores, {}, browser.session)
    assert done.kind == "done"
    assert done.session.clear
    assert browser.session is not None
    async with rt.db.transaction() as stores:
        assert await stores.sessions.get(browser.session.digest, int(env.clock())) is None


async def test_logout_refuses_an_unregistered_post_logout_redirect_uri(env: ServerEnv) -> None:
    client = await env.client()
    rt = runtime(env)
    params = {
        "client_id": client.client.client_id,
        "post_logout_redirect_uri": "https://evil.test/bye",
    }
    async with rt.db.transaction() as stores:
        with pytest.raises(InvalidRequest) as refused:
            await logout.start(rt.server, stores, params, None)
    assert not refused.value.redirectable


async def test_account_without_session_is_not_signed_in(env: ServerEnv) -> None:
    rt = runtime(env)
    async with rt.db.transaction() as stores:
        with pytest.raises(NotSignedIn) as refused:
            await account.page(stores, None)
        with pytest.raises(NotSignedIn):
            await account.remove_app(rt.server, stores, None, "any")
    assert refused.value.status_code == 401
    assert isinstance(refused.value, OAuthError)


async def test_removing_an_app_withdraws_consent_and_audits_once(env: ServerEnv) -> None:
    await env.user()
    client = await env.client()
    browser, done = await signed_in(env, client)
    rt = runtime(env)
    assert done.interaction_id
    async with rt.db.transaction() as stores:
        await interaction.decide_consent(rt.server, stores, browser, done.interaction_id, "allow")
    seen = events(env)
    async with rt.db.transaction() as stores:
        page = await account.page(stores, browser.session)
        assert [app.client_id for app in page.apps] == [client.client.client_id]
        assert await account.remove_app(rt.server, stores, browser.session, client.client.client_id)
        assert not await account.remove_app(
            rt.server, stores, browser.session, client.client.client_id
        )
        assert (await account.page(stores, browser.session)).apps == ()
    assert [e.event for e in seen] == [CONSENT_WITHDRAWN]
