"""The browser's way through an authorization: login, consent and the code (OpenID Connect Core
§3.1.2.3 to §3.1.2.5, RFC 6749 §4.1.2).

A validated ``AuthorizationRequest`` (``core.authorize``) goes through :func:`proceed`, which
decides the next step: the login page, the consent page (both through a pending ``Interaction``
bound to the browser that started it), or the client's redirect URI with a new code. The login
and consent pages come back here: :func:`login_page`, :func:`begin_login` / :func:`finish_login`
around the password check (``core.login``), :func:`consent_page` and :func:`decide_consent`.

The browser's state is data: core reads the browser's digest and session (:class:`BrowserView`)
and says in its answer how the session cookie changes (:class:`SessionChange`); the edge reads
and writes the cookies. Errors are ``OAuthError``s: redirectable ones go to the client (with
``state`` and ``iss``), the others are pages.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

from tokensmith.core import audit, mfa, passkeys, throttle
from tokensmith.core.accounts import Accounts, StoreAccounts
from tokensmith.core.audit import AuditEvent
from tokensmith.core.errors import (
    ConsentRequired,
    HashingBusy,
    InteractionExpired,
    InvalidRequest,
    LoginRequired,
    OAuthError,
    SlowDown,
    UnmetAuthenticationRequirements,
)
from tokensmith.core.login import LoginAttempt, PasswordLogin
from tokensmith.core.models import (
    Api,
    AuthorizationCode,
    AuthorizationRequest,
    Client,
    ClientOrigin,
    Interaction,
    Session,
    User,
)
from tokensmith.core.passwords import Admission, PasswordCheck
from tokensmith.core.ports import Stores
from tokensmith.core.redirect_uris import redirect_url
from tokensmith.core.secrets import (
    CODE_PREFIX,
    INTERACTION_PREFIX,
    SESSION_PREFIX,
    digest,
    equals,
    new_id,
    new_secret,
)

if TYPE_CHECKING:
    from tokensmith.core.server import AuthorizationServer

EXPIRED = (
    "This sign-in page has expired or was opened in another browser. Go back to the "
    "application and sign in again."
)
WRONG_CREDENTIALS = "The username or password is not correct."
WRONG_CODE = "That code is not correct, or was used already."
NO_SECOND_FACTOR = (
    "this application requires two-step verification: set it up on your account page first"
)
SIGN_IN_AGAIN = (
    "Your account's password or sign-in settings changed while you were signing in. Sign in again."
)
STANDARD_SCOPES = {
    "openid": "Confirm who you are (your account identifier).",
    "profile": "See your name and username.",
    "email": "See your email address.",
    "offline_access": "Keep access while you are away, also after you sign out.",
}
_TXN = re.compile(re.escape(INTERACTION_PREFIX) + r"[A-Za-z0-9_-]+")


def well_formed_txn(txn: str | None) -> str | None:
    """``txn`` if it has the form of an interaction id this server issues, else ``None`` (the
    sign-up and forgotten-password pages carry the sign-in they were opened from, to link back
    to it; whether it still exists is for the login page to find out)."""
    if not txn or len(txn) > 100 or not _TXN.fullmatch(txn):
        return None
    return txn


class BrowserView(Protocol):
    """What core reads of the browser: its (peppered) id digest and its SSO session."""

    @property
    def browser_digest(self) -> str: ...

    @property
    def session(self) -> Session | None: ...


@dataclass(frozen=True, slots=True)
class SessionChange:
    """How the session cookie changes with an answer: a new session id (a login), cleared (a
    logout), or unchanged."""

    new_value: str | None = field(default=None, repr=False)
    clear: bool = False


KEEP = SessionChange()
CLEAR = SessionChange(clear=True)


@dataclass(frozen=True, slots=True)
class AuthorizeOutcome:
    """Where the browser goes next: back to the client (with a code, or with ``error``), or to
    the login or consent page of ``interaction_id``; and how its session cookie changes."""

    kind: Literal["redirect", "login", "consent", "error", "mfa"]
    location: str | None = None
    interaction_id: str | None = None
    error: OAuthError | None = None
    session: SessionChange = KEEP


@dataclass(frozen=True, slots=True)
class LoginForm:
    """The login page of an interaction: first shown, or again after a refused attempt."""

    txn: str
    client_name: str
    username: str = ""
    error: str | None = None
    status: int = 200
    retry_after: int = 0
    """Seconds to wait (``Retry-After``) when the attempt was refused by the back-off."""


class SignInChanged(Exception):
    """A sign-in step refused because the account changed since the password step: its
    security stamp was renewed (a password changed or reset, its access ended by the user or
    the operator), or the session being stepped up ended. Not an answer to commit: the route
    rolls the step's transaction back (nothing of it is kept: no session, no code, no factor
    used up, no hash upgraded) and shows ``form``, the sign-in's login page saying why."""

    def __init__(self, form: LoginForm) -> None:
        super().__init__("the account changed during the sign-in")
        self.form = form


@dataclass(frozen=True, slots=True)
class ConsentForm:
    """The consent page: who asks, for which API, each scope with what it allows."""

    txn: str
    client_name: str
    username: str
    scopes: tuple[tuple[str, str], ...]
    api_name: str | None
    api_identifier: str
    offline: bool
    redirect_host: str
    client_origin: ClientOrigin = "static"
    """A client the operator did not make is shown as such (``metadata_document``: unverified,
    its domain prominent; ``registered``: registered itself)."""
    client_domain: str | None = None
    """The host of a metadata-document client's URL (its ``client_id``)."""


@dataclass(frozen=True, slots=True)
class LoginStarted:
    """Step 1 of a login, committed before the password is checked: the reserved attempt and
    its place on the hashing pool, or the page refusing it (``form``: 429 throttled, 503 the
    pool's queue full, ``attempt`` then ``None``)."""

    interaction: Interaction
    attempt: LoginAttempt | None
    username: str
    form: LoginForm | None = None
    admission: Admission | None = None
    """The pool's place for step 2 (``Passwords.admit``); the route closes it if step 2 never
    runs (a no-op once the job has it)."""


# -- the decision ---------------------------------------------------------------------------


async def replace_session(
    stores: Stores,
    pepper: bytes,
    old: Session | None,
    *,
    user_id: str,
    auth_time: int,
    expires_at: int,
    amr: tuple[str, ...] = ("pwd",),
    mfa_at: int | None = None,
) -> tuple[Session, SessionChange]:
    """A session under a new id, ending ``old`` (the browser's, if any): at every login and
    every privilege change — a second factor proved or enrolled, a password changed — so an id
    planted or seen before cannot ride on the stronger session (ASVS V7, security.md W-27/W-30).

    The user's security stamp is held first (``SecurityStampStore.hold``, to the end of the
    transaction): an event that ends the user's sessions renews the stamp before it deletes
    them (``accounts.end_access``), so it either ended before (a sign-in compares the stamp,
    ``_signed_in``) or waits for this transaction and then deletes the session written here."""
    await stores.security_stamps.hold(user_id)
    if old is not None:
        await stores.sessions.delete(old.digest)
    value = new_secret(SESSION_PREFIX)
    session = Session(
        digest=digest(value, pepper),
        user_id=user_id,
        auth_time=auth_time,
        expires_at=expires_at,
        amr=amr,
        mfa_at=mfa_at,
    )
    await stores.sessions.create(session)
    return session, SessionChange(new_value=value)


async def proceed(
    server: AuthorizationServer,
    request: AuthorizationRequest,
    stores: Stores,
    *,
    session: Session | None,
    browser_digest: str,
    interaction: Interaction | None,
    consent_given: bool = False,
) -> AuthorizeOutcome:
    """Decide login, consent or code for a validated request (``prompt=none`` turns a needed
    page into ``login_required`` / ``consent_required`` to the client, OpenID Connect Core
    §3.1.2.6)."""
    now = server.now()
    user = await session_user(request, session, stores, interaction, now, accounts=server.accounts)
    client = await server.get_client(request.client_id, stores)
    if client is None:
        raise InvalidRequest("the client was removed").to_client(
            request.redirect_uri, request.state
        )
    if user is None or session is None:
        if "none" in request.prompt:
            raise LoginRequired("the user is not logged in").to_client(
                request.redirect_uri, request.state
            )
        return await _interaction(server, "login", request, stores, browser_digest, interaction)
    second_factor = await mfa.needs_second_factor(
        server.factors,
        stores,
        session,
        required_by_policy=server.policy.mfa_required or client.mfa_required,
    )
    if second_factor is None:
        raise UnmetAuthenticationRequirements(NO_SECOND_FACTOR).to_client(
            request.redirect_uri, request.state
        )
    if second_factor:
        if "none" in request.prompt:
            raise LoginRequired("the session needs a second factor").to_client(
                request.redirect_uri, request.state
            )
        return await _interaction(server, "mfa", request, stores, browser_digest, interaction)
    if await needs_consent(client, user, request, stores, consent_given=consent_given):
        if "none" in request.prompt:
            raise ConsentRequired("the user has not consented to this client").to_client(
                request.redirect_uri, request.state
            )
        return await _interaction(server, "consent", request, stores, browser_digest, interaction)
    location = await issue_code(server, request, user, session, stores)
    if interaction is not None:
        await stores.interactions.delete(interaction.id)
    return AuthorizeOutcome("redirect", location=location)


async def session_user(
    request: AuthorizationRequest,
    session: Session | None,
    stores: Stores,
    interaction: Interaction | None,
    now: int,
    *,
    accounts: Accounts | None = None,
) -> User | None:
    """The user of the session, if it satisfies the request: ``prompt=login`` needs a login
    during this interaction, ``max_age`` a recent enough one, ``id_token_hint`` the same user;
    a disabled user has no session."""
    if session is None:
        return None
    if "login" in request.prompt and (
        interaction is None or session.auth_time < interaction.created_at
    ):
        return None
    if request.max_age is not None and session.auth_time + request.max_age < now:
        return None
    if request.hint_subject is not None and request.hint_subject != session.user_id:
        return None
    user = await (accounts or StoreAccounts()).get(stores, session.user_id)
    if user is None or user.disabled:
        return None
    return user


async def needs_consent(
    client: Client,
    user: User,
    request: AuthorizationRequest,
    stores: Stores,
    *,
    consent_given: bool = False,
) -> bool:
    if client.first_party and not client.is_dynamic:  # never for one the operator did not make
        return False
    if consent_given:
        return False
    if "consent" in request.prompt:
        return True
    # consent is per client, API and scope: docs:read allowed for one API is not allowed
    # for another API that defines a scope of the same name
    granted = await stores.consents.granted_scopes(user.id, client.client_id, request.audience)
    return not set(request.scopes) <= granted


async def _interaction(
    server: AuthorizationServer,
    kind: Literal["login", "consent", "mfa"],
    request: AuthorizationRequest,
    stores: Stores,
    browser_digest: str,
    interaction: Interaction | None,
) -> AuthorizeOutcome:
    if interaction is None:
        now = server.now()
        interaction = Interaction(
            id=new_secret(INTERACTION_PREFIX, nbytes=24),
            browser_digest=browser_digest,
            request=request,
            created_at=now,
            expires_at=now + server.policy.interaction_ttl,
        )
        await stores.interactions.create(interaction)
    return AuthorizeOutcome(kind, interaction_id=interaction.id)


async def issue_code(
    server: AuthorizationServer,
    request: AuthorizationRequest,
    user: User,
    session: Session,
    stores: Stores,
) -> str:
    """Store a new authorization code and return the redirect URI that carries it, with
    ``state`` and ``iss`` (RFC 6749 §4.1.2, RFC 9207). The code records the user's security
    stamp, read locked (held already when this transaction signed the user in) and then the
    session read again: an event that ended the session before the lock is seen
    (``login_required``), one after it renews the stamp the code holds."""
    now = server.now()
    stamp = await stores.security_stamps.hold(user.id)
    if await stores.sessions.get(session.digest, now) is None:
        raise LoginRequired("the session ended meanwhile").to_client(
            request.redirect_uri, request.state
        )
    value = new_secret(CODE_PREFIX)
    await stores.codes.create(
        AuthorizationCode(
            digest=digest(value, server.pepper),
            client_id=request.client_id,
            user_id=user.id,
            redirect_uri=request.redirect_uri,
            redirect_uri_sent=request.redirect_uri_sent,
            scopes=request.scopes,
            audience=request.audience,
            code_challenge=request.code_challenge,
            nonce=request.nonce,
            auth_time=session.auth_time,
            session_id=session.digest,
            grant_id=new_id(),
            expires_at=now + server.policy.authorization_code_ttl,
            amr=session.amr,
            security_stamp=stamp,
        )
    )
    return redirect_url(
        request.redirect_uri, {"code": value, "state": request.state, "iss": server.issuer}
    )


def denied_location(server: AuthorizationServer, request: AuthorizationRequest) -> str:
    """The client's redirect URI with ``access_denied`` (RFC 6749 §4.1.2.1)."""
    return redirect_url(
        request.redirect_uri,
        {
            "error": "access_denied",
            "error_description": "the user denied the request",
            "state": request.state,
            "iss": server.issuer,
        },
    )


# -- pending interactions -------------------------------------------------------------------


async def load(
    server: AuthorizationServer, stores: Stores, browser: BrowserView, txn: str | None
) -> Interaction:
    """The pending interaction ``txn`` of this browser; ``InteractionExpired`` if it does not
    exist, has expired or was started by another browser."""
    # Only ids this server could have issued reach the database (a NUL, for one, is an error
    # in PostgreSQL rather than "not found").
    txn = well_formed_txn(txn)
    if txn is None:
        raise InteractionExpired(EXPIRED)
    interaction = await stores.interactions.get(txn, server.now())
    if interaction is None or not equals(interaction.browser_digest, browser.browser_digest):
        raise InteractionExpired(EXPIRED)
    return interaction


async def _continue(
    server: AuthorizationServer,
    stores: Stores,
    interaction: Interaction,
    *,
    session: Session | None,
    browser_digest: str,
    change: SessionChange = KEEP,
    consent_given: bool = False,
) -> AuthorizeOutcome:
    """After a login or consent: another page, or the client. An error for the client ends the
    interaction; the session change (a login) stands either way."""
    try:
        outcome = await proceed(
            server,
            interaction.request,
            stores,
            session=session,
            browser_digest=browser_digest,
            interaction=interaction,
            consent_given=consent_given,
        )
    except OAuthError as exc:
        if not exc.redirectable:
            raise
        await stores.interactions.delete(interaction.id)
        return AuthorizeOutcome("error", error=exc, session=change)
    return AuthorizeOutcome(
        outcome.kind,
        location=outcome.location,
        interaction_id=outcome.interaction_id,
        session=change,
    )


# -- login ----------------------------------------------------------------------------------


def password_login(server: AuthorizationServer) -> PasswordLogin:
    """The password login's steps (``core.login``)."""
    return PasswordLogin(
        passwords=server.passwords, clock=server.clock, audit=server.audit, accounts=server.accounts
    )


async def _client_name(server: AuthorizationServer, stores: Stores, client_id: str) -> str:
    client = await server.get_client(client_id, stores)
    return client.name if client else client_id


def _audit_changed(
    server: AuthorizationServer, interaction: Interaction, user_id: str | None, now: int
) -> None:
    """A sign-in step refused because the account changed since its password step."""
    server.audit(
        AuditEvent(
            audit.LOGIN_FAILED,
            now,
            client_id=interaction.request.client_id,
            user_id=user_id,
            detail={"reason": "account_changed"},
        )
    )


async def _sign_in_again(
    server: AuthorizationServer, stores: Stores, interaction: Interaction, *, username: str
) -> SignInChanged:
    """The refusal of a sign-in step whose account changed since its password step: the
    login page of the interaction, saying why."""
    return SignInChanged(
        LoginForm(
            txn=interaction.id,
            client_name=await _client_name(server, stores, interaction.request.client_id),
            username=username,
            error=SIGN_IN_AGAIN,
            status=401,
        )
    )


async def login_page(
    server: AuthorizationServer, stores: Stores, browser: BrowserView, txn: str | None
) -> LoginForm:
    """The login page of a pending interaction, the ``login_hint`` filled in."""
    interaction = await load(server, stores, browser, txn)
    return LoginForm(
        txn=interaction.id,
        client_name=await _client_name(server, stores, interaction.request.client_id),
        username=interaction.request.login_hint or "",
    )


async def begin_login(
    server: AuthorizationServer,
    stores: Stores,
    browser: BrowserView,
    txn: str,
    username: str,
    *,
    address: str,
) -> LoginStarted:
    """Step 1 (``core.login``), in the first transaction, committed before the password is
    checked: the interaction, the attempt reserved on the throttling counters and a place on
    the hashing pool, or a page refusing it (429 throttled; 503 the pool's queue full, taken
    before the counters are touched)."""
    interaction = await load(server, stores, browser, txn)
    username = username[:320]

    async def refused(error: str, status: int, retry_after: int) -> LoginForm:
        return LoginForm(
            txn=interaction.id,
            client_name=await _client_name(server, stores, interaction.request.client_id),
            username=username,
            error=f"{error} Wait {retry_after} seconds, then try again.",
            status=status,
            retry_after=retry_after,
        )

    # the pool's place first: a login refused for a full queue touches no counter
    try:
        admission = server.passwords.admit()
    except HashingBusy as exc:
        server.audit(AuditEvent(audit.LOGIN_BUSY, server.now(), address=address))
        busy = await refused(
            "Too many people are signing in right now.", exc.status_code, HashingBusy.RETRY_AFTER
        )
        return LoginStarted(interaction, None, username, busy)
    with contextlib.ExitStack() as unless_reserved:
        unless_reserved.callback(admission.close)
        attempt = await password_login(server).reserve(username, stores, address=address)
        if attempt.retry_after:
            throttled = await refused("Too many failed attempts.", 429, attempt.retry_after)
            return LoginStarted(interaction, attempt, username, throttled)
        unless_reserved.pop_all()
    return LoginStarted(interaction, attempt, username, admission=admission)


async def check_password(
    server: AuthorizationServer, started: LoginStarted, password: str
) -> PasswordCheck:
    """Step 2, holding no transaction: argon2 on the worker pool, in the place taken by
    step 1."""
    assert started.attempt is not None, "a refused login has no step 2"
    return await password_login(server).verify(started.attempt, password, started.admission)


async def finish_login(
    server: AuthorizationServer,
    stores: Stores,
    browser: BrowserView,
    started: LoginStarted,
    check: PasswordCheck,
) -> LoginForm | AuthorizeOutcome:
    """Step 3, in the second transaction: conclude the attempt; on success replace the
    browser's session by a new one (a new id at every login) and continue the authorization;
    else the login page again (401, the same words for a wrong password and an unknown user)."""
    assert started.attempt is not None, "a refused login is not concluded"
    result = await password_login(server).conclude(started.attempt, check, stores)
    # the interaction may have been finished meanwhile (the same form sent twice)
    interaction = await load(server, stores, browser, started.interaction.id)
    user = result.user
    if user is None:
        return LoginForm(
            txn=interaction.id,
            client_name=await _client_name(server, stores, interaction.request.client_id),
            username=started.username,
            error=WRONG_CREDENTIALS,
            status=401,
        )
    if await server.factors.has_second_factor(stores, user.id):
        # no session before the second factor: the interaction remembers who passed the
        # password, bound to this browser, and the security stamp that password was checked
        # against, for the second step (``submit_second_factor``)
        await stores.interactions.set_pending(
            interaction.id, user.id, server.now(), started.attempt.stamp
        )
        return AuthorizeOutcome("mfa", interaction_id=interaction.id)
    now = server.now()
    return await _signed_in(
        server,
        stores,
        browser,
        interaction,
        user.id,
        now,
        auth_time=now,
        amr=("pwd",),
        mfa_at=None,
        stamp=started.attempt.stamp,
        username=started.username,
    )


async def _signed_in(
    server: AuthorizationServer,
    stores: Stores,
    browser: BrowserView,
    interaction: Interaction,
    user_id: str,
    now: int,
    *,
    auth_time: int,
    amr: tuple[str, ...],
    mfa_at: int | None,
    stamp: int | None,
    stepped_up: Session | None = None,
    username: str = "",
) -> AuthorizeOutcome:
    """A sign-in done: the browser's session replaced by a new one (a new id at every
    sign-in), and the authorization continued.

    First the user's security stamp is held (``SecurityStampStore.hold``: locked to the end
    of the transaction) and checked: it must still be ``stamp``, the one read at the password
    step (``None``: a passkey sign-in, which has no password step), and a session stepped up
    (``stepped_up``) must still exist; else ``SignInChanged``, and the route rolls the step
    back. An event that ends the user's access renews the stamp before it deletes sessions
    (``accounts.end_access``): committed before the hold, it is seen here; otherwise it waits
    for this transaction, then deletes the session made here (the code issued here recorded
    the stamp it replaces). The login's password-hash upgrade (``core.login``) is written
    before the hold, as the events write the user before the stamp: the two never wait for
    each other."""
    held = await stores.security_stamps.hold(user_id)
    if (stamp is not None and held != stamp) or (
        stepped_up is not None and await stores.sessions.get(stepped_up.digest, now) is None
    ):
        _audit_changed(server, interaction, user_id, now)
        raise await _sign_in_again(server, stores, interaction, username=username)
    session, change = await replace_session(
        stores,
        server.pepper,
        browser.session,
        user_id=user_id,
        auth_time=auth_time,
        expires_at=now + server.policy.session_ttl,
        amr=amr,
        mfa_at=mfa_at,
    )
    return await _continue(
        server,
        stores,
        interaction,
        session=session,
        browser_digest=browser.browser_digest,
        change=change,
    )


# -- consent --------------------------------------------------------------------------------


async def describe(
    stores: Stores, request: AuthorizationRequest, api: Api | None = None
) -> tuple[tuple[str, str], ...]:
    """Each requested scope with what it allows (the API's descriptions, then the standard
    ones)."""
    if api is None and request.audience:
        api = await stores.apis.get(request.audience)
    descriptions = dict(STANDARD_SCOPES)
    if api is not None:
        descriptions.update(api.descriptions)
    return tuple((s, descriptions.get(s, f"Use the '{s}' permission.")) for s in request.scopes)


async def _consent_form(
    server: AuthorizationServer, stores: Stores, session: Session, interaction: Interaction
) -> ConsentForm:
    request = interaction.request
    client = await server.get_client(request.client_id, stores)
    user = await server.accounts.get(stores, session.user_id)
    api = await stores.apis.get(request.audience) if request.audience else None
    return ConsentForm(
        txn=interaction.id,
        client_name=client.name if client else request.client_id,
        username=user.username if user else "",
        scopes=await describe(stores, request, api),
        api_name=(api.name if api else request.audience) or None,
        api_identifier=request.audience,
        offline="offline_access" in request.scopes,
        redirect_host=urlsplit(request.redirect_uri).netloc or request.redirect_uri,
        client_origin=client.origin if client else "static",
        client_domain=(
            urlsplit(client.client_id).hostname
            if client is not None and client.origin == "metadata_document"
            else None
        ),
    )


async def consent_page(
    server: AuthorizationServer, stores: Stores, browser: BrowserView, txn: str | None
) -> ConsentForm | AuthorizeOutcome:
    """The consent page of a pending interaction; without a session, its login page."""
    interaction = await load(server, stores, browser, txn)
    if browser.session is None:
        return AuthorizeOutcome("login", interaction_id=interaction.id)
    if await owes_second_factor(server, stores, browser.session):
        return AuthorizeOutcome("mfa", interaction_id=interaction.id)
    return await _consent_form(server, stores, browser.session, interaction)


async def decide_consent(
    server: AuthorizationServer,
    stores: Stores,
    browser: BrowserView,
    txn: str,
    decision: str | None,
) -> ConsentForm | AuthorizeOutcome:
    """The user's answer: ``allow`` records the consent (per user, client, API and scope) with
    its audit event and continues; ``deny`` ends the interaction and sends ``access_denied`` to
    the client; anything else shows the page again."""
    interaction = await load(server, stores, browser, txn)
    session = browser.session
    if session is None:
        return AuthorizeOutcome("login", interaction_id=interaction.id)
    if await owes_second_factor(server, stores, session):
        return AuthorizeOutcome("mfa", interaction_id=interaction.id)
    request = interaction.request
    if decision == "allow":
        now = server.now()
        await stores.consents.grant(
            session.user_id, request.client_id, request.audience, request.scopes, now
        )
        server.audit(
            AuditEvent(
                audit.CONSENT_GRANTED,
                now,
                client_id=request.client_id,
                user_id=session.user_id,
                detail={"scope": " ".join(request.scopes), "api": request.audience},
            )
        )
        return await _continue(
            server,
            stores,
            interaction,
            session=session,
            browser_digest=browser.browser_digest,
            consent_given=True,
        )
    if decision == "deny":
        await stores.interactions.delete(interaction.id)
        server.audit(
            AuditEvent(
                audit.CONSENT_DENIED,
                server.now(),
                client_id=request.client_id,
                user_id=session.user_id,
            )
        )
        return AuthorizeOutcome("redirect", location=denied_location(server, request))
    return await _consent_form(server, stores, session, interaction)


# -- the second factor ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SecondFactorForm:
    """The sign-in's second step (``core.mfa``): the factors the user can present."""

    txn: str
    client_name: str
    username: str
    factors: tuple[str, ...]
    error: str | None = None
    status: int = 200
    retry_after: int = 0


_Form = TypeVar("_Form", LoginForm, SecondFactorForm)


def _throttled(form: _Form, retry_after: int) -> _Form:
    """A sign-in page again, refused by the back-off (429, ``Retry-After``)."""
    return dataclasses.replace(
        form,
        error=f"Too many attempts. Wait {retry_after} seconds, then try again.",
        status=429,
        retry_after=retry_after,
    )


@dataclass(frozen=True, slots=True)
class _Subject:
    """Who presents the second factor: the user who just passed the password in this
    interaction (no session yet), or the user of the browser's single-factor session."""

    user: User
    amr: tuple[str, ...]
    auth_time: int
    factors: tuple[mfa.SecondFactor, ...]
    stamp: int | None
    """The security stamp the password step read (``Interaction.pending_stamp``)."""
    session: Session | None
    """The single-factor session being stepped up (no password step in this interaction)."""


async def owes_second_factor(server: AuthorizationServer, stores: Stores, session: Session) -> bool:
    """Whether a session is single-factor while its user has a second factor: not enough for
    any page that acts for the user (``core.mfa``)."""
    return not mfa.is_multi_factor(session.amr) and await server.factors.has_second_factor(
        stores, session.user_id
    )


async def _subject(
    server: AuthorizationServer, stores: Stores, browser: BrowserView, interaction: Interaction
) -> _Subject | None:
    """Who owes the second step, if anyone; ``SignInChanged`` when the user who passed the
    password step has had their security stamp renewed since (their password changed or
    reset, their access ended): checked before anything is reserved or used up."""
    amr: tuple[str, ...]
    session: Session | None = None
    if interaction.pending_user_id is not None:
        user_id, amr, auth_time = (
            interaction.pending_user_id,
            ("pwd",),
            interaction.pending_auth_time,
        )
    elif browser.session is not None:
        session = browser.session
        user_id, amr, auth_time = session.user_id, session.amr, session.auth_time
    else:
        return None
    user = await server.accounts.get(stores, user_id)
    if user is None or user.disabled:
        return None
    stamp = interaction.pending_stamp
    if session is None and (
        stamp is None or await stores.security_stamps.current(user.id) != stamp
    ):
        raise await _sign_in_again(server, stores, interaction, username=user.username)
    factors = await server.factors.enrolled(stores, user.id)
    if not factors:
        return None
    return _Subject(user, amr, auth_time, factors, stamp if session is None else None, session)


async def second_factor_page(
    server: AuthorizationServer, stores: Stores, browser: BrowserView, txn: str | None
) -> SecondFactorForm | AuthorizeOutcome:
    """The second step of a pending interaction; the login page when nobody owes one
    (``SignInChanged``: the account changed since the password step)."""
    interaction = await load(server, stores, browser, txn)
    subject = await _subject(server, stores, browser, interaction)
    if subject is None:
        return AuthorizeOutcome("login", interaction_id=interaction.id)
    return SecondFactorForm(
        txn=interaction.id,
        client_name=await _client_name(server, stores, interaction.request.client_id),
        username=subject.user.username,
        factors=tuple(f.name for f in subject.factors),
    )


async def submit_second_factor(
    server: AuthorizationServer,
    stores: Stores,
    browser: BrowserView,
    txn: str,
    factor_name: str,
    response: str,
    *,
    address: str,
) -> SecondFactorForm | AuthorizeOutcome:
    """Check a second factor: the attempt is reserved on the throttling counters of the
    account and the address first (``mfa.reserve_attempt``); a wrong or replayed code is the
    page again (401), a refused attempt 429. On success the browser gets a new session (a new
    id) whose ``amr`` adds the factor's methods and ``mfa``, with the password's ``auth_time``
    (so ``max_age`` still counts from the password), and the authorization continues.

    The account must not have changed since the password step (its security stamp, or the
    session stepped up): checked first, before the attempt is reserved, and again, locked,
    where the session is made (``_signed_in``); ``SignInChanged`` otherwise."""
    interaction = await load(server, stores, browser, txn)
    try:
        subject = await _subject(server, stores, browser, interaction)
    except SignInChanged:
        _audit_changed(server, interaction, interaction.pending_user_id, server.now())
        raise
    if subject is None:
        return AuthorizeOutcome("login", interaction_id=interaction.id)
    user = subject.user
    form = SecondFactorForm(
        txn=interaction.id,
        client_name=await _client_name(server, stores, interaction.request.client_id),
        username=user.username,
        factors=tuple(f.name for f in subject.factors),
    )
    now = server.now()
    retry_after = await mfa.reserve_attempt(server.audit, stores, user.id, address, now)
    if retry_after:
        return _throttled(form, retry_after)
    factor = next((f for f in subject.factors if f.name == factor_name), None)
    response = response[: passkeys.MAX_RESPONSE if factor_name == "passkey" else 200]
    if factor is None or not await factor.verify(stores, user.id, response, now=now):
        mfa.failed(server.audit, user.id, address, now, factor_name[:32])
        return dataclasses.replace(form, error=WRONG_CODE, status=401)
    await mfa.passed(server.audit, stores, user.id, address, now, factor)
    if factor.name == server.passkeys.name:
        await stores.login_failures.release(PASSKEY_OPTIONS + address)
    return await _signed_in(
        server,
        stores,
        browser,
        interaction,
        user.id,
        now,
        auth_time=subject.auth_time,
        amr=mfa.with_factor(subject.amr, factor),
        mfa_at=now,
        stamp=subject.stamp,
        stepped_up=subject.session,
        username=user.username,
    )


# -- passkeys (``core.passkeys``) -----------------------------------------------------------

PASSKEY_FAILED = "That passkey could not be used to sign in."
PASSKEY_OPTIONS = "passkey-options:ip:"
"""The counter of passkey options requests (challenges stored) per address."""


def _passkey_binding(interaction: Interaction, browser: BrowserView) -> str:
    """A sign-in challenge belongs to this interaction in this browser."""
    return f"{interaction.id}:{browser.browser_digest}"


async def passkey_options(
    server: AuthorizationServer,
    stores: Stores,
    browser: BrowserView,
    txn: str,
    *,
    second_factor: bool,
    address: str,
) -> str | None:
    """The ``navigator.credentials.get`` options of the login page's "Sign in with a passkey"
    (discoverable credentials, user verification required), or of the second step (the
    passkeys of the user who passed the password); ``None`` when that user has none.

    Each request stores a challenge, so each is reserved on the address's counter
    (``PASSKEY_OPTIONS``, the login's per-address back-off), and given back when a passkey
    ceremony from the address succeeds: only unfinished ones add up, to ``SlowDown`` (429)."""
    interaction = await load(server, stores, browser, txn)
    now = server.now()
    reserved = await stores.login_failures.reserve(
        PASSKEY_OPTIONS + address, now, policy=throttle.ADDRESS, ttl=throttle.FAILURE_MEMORY
    )
    if not reserved.granted:
        retry_after = max(1, throttle.ADDRESS.locked_until(reserved.record) - now)
        server.audit(AuditEvent(audit.LOGIN_THROTTLED, now, address=address))
        raise SlowDown(
            "too many passkey requests from this address",
            headers={"Retry-After": str(retry_after)},
        )
    if not second_factor:
        return await server.passkeys.authentication_options(
            stores,
            purpose=passkeys.SIGN_IN,
            user_id=None,
            binding=_passkey_binding(interaction, browser),
            now=now,
        )
    try:
        subject = await _subject(server, stores, browser, interaction)
    except SignInChanged:  # no challenge: the second step will send them to the login page
        return None
    if subject is None or not any(f.name == server.passkeys.name for f in subject.factors):
        return None
    return await server.passkeys.authentication_options(
        stores,
        purpose=passkeys.SECOND_FACTOR,
        user_id=subject.user.id,
        binding=interaction.id,
        now=now,
    )


async def submit_passkey_sign_in(
    server: AuthorizationServer,
    stores: Stores,
    browser: BrowserView,
    txn: str,
    response: str,
    *,
    address: str,
) -> LoginForm | AuthorizeOutcome:
    """Passwordless sign-in: a discoverable credential's assertion, with user verification,
    for the challenge of this interaction in this browser. The attempt is reserved on the
    address's counter first (the user is not known before the assertion is checked). On
    success a new session (``amr`` ``swk`` + ``mfa``, ``acr`` multi-factor) and the
    authorization continues; else the login page (401, or 429)."""
    interaction = await load(server, stores, browser, txn)
    form = LoginForm(
        txn=interaction.id,
        client_name=await _client_name(server, stores, interaction.request.client_id),
        username="",
    )
    now = server.now()
    key = "passkey:ip:" + address
    reserved = await stores.login_failures.reserve(
        key, now, policy=throttle.ADDRESS, ttl=throttle.FAILURE_MEMORY
    )
    if not reserved.granted:
        retry_after = max(1, throttle.ADDRESS.locked_until(reserved.record) - now)
        server.audit(AuditEvent(audit.MFA_THROTTLED, now, address=address))
        return _throttled(form, retry_after)
    done = await server.passkeys.verify_assertion(
        stores,
        purpose=passkeys.SIGN_IN,
        response=response,
        binding=_passkey_binding(interaction, browser),
        user_id=None,
        now=now,
        address=address,
        require_user_verification=True,
    )
    user = await stores.users.get(done.credential.user_id) if done is not None else None
    if done is None or user is None or user.disabled:
        return dataclasses.replace(form, error=PASSKEY_FAILED, status=401)
    await stores.login_failures.release(key)
    await stores.login_failures.release(PASSKEY_OPTIONS + address)
    server.audit(
        AuditEvent(
            audit.LOGIN_SUCCEEDED,
            now,
            client_id=interaction.request.client_id,
            user_id=user.id,
            address=address,
            detail={"method": "passkey"},
        )
    )
    return await _signed_in(
        server,
        stores,
        browser,
        interaction,
        user.id,
        now,
        auth_time=now,
        amr=passkeys.AMR_PASSWORDLESS,
        mfa_at=now,
        stamp=None,  # no password step; the stamp is held all the same (``_signed_in``)
    )
