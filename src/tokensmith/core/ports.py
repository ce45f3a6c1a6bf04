"""The ports of core: one storage Protocol per concern, all async, all in the request's transaction.

Core owns them and sees only these; ``storage/`` implements them (SQLAlchemy Core on SQLite and
PostgreSQL, Redis for the short-lived concerns), and a contract suite runs against each.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from tokensmith.core.models import (
    AccessTokenRecord,
    AccountToken,
    Api,
    AuthorizationCode,
    Client,
    Grant,
    InitialAccessToken,
    Interaction,
    PasskeyCredential,
    RefreshToken,
    Session,
    TotpCredential,
    User,
)
from tokensmith.core.throttle import BackoffPolicy, FailureCount, Reservation


class Conflict(Exception):
    """A row with the same unique key already exists (raised by ``create`` methods)."""


class StaleStamp(Exception):
    """The user's security stamp is no longer the one expected (``GrantStore.issue``)."""


class ApiStore(Protocol):
    async def get(self, identifier: str) -> Api | None: ...
    async def create(self, api: Api) -> None: ...
    async def list(self) -> list[Api]: ...
    async def delete(self, identifier: str) -> bool: ...


class ClientStore(Protocol):
    async def get(self, client_id: str) -> Client | None: ...
    async def create(self, client: Client) -> None: ...
    async def list(self) -> list[Client]: ...
    async def delete(self, client_id: str) -> bool: ...
    async def set_secret_digest(self, client_id: str, secret_digest: str, now: int) -> bool: ...
    async def set_registration_token(self, client_id: str, digest: str, now: int) -> bool:
        """Replace a registered client's registration access token digest (RFC 7592)."""
        ...

    async def touch(self, client_id: str, now: int, *, older_than: int) -> bool:
        """Set ``last_used_at`` to ``now`` unless it is already ``older_than`` or later (one
        write a day at most, whatever the traffic)."""
        ...

    async def update(self, client: Client, now: int) -> bool:
        """Replace every field of an existing client but its id, secret digest and creation
        time; False when there is no such client."""
        ...


class UserStore(Protocol):
    async def get(self, user_id: str) -> User | None: ...
    async def find_by_login(self, login: str) -> User | None:
        """The user whose username or e-mail is ``login`` (already normalised)."""
        ...

    async def create(self, user: User) -> None: ...
    async def list(self) -> list[User]: ...
    async def set_password_hash(self, user_id: str, password_hash: str, now: int) -> bool: ...
    async def set_disabled(self, user_id: str, disabled: bool, now: int) -> bool: ...
    async def delete(self, user_id: str) -> bool: ...
    async def set_profile(
        self, user_id: str, *, name: str | None, email: str | None, email_verified: bool, now: int
    ) -> bool: ...


class CodeStore(Protocol):
    async def create(self, code: AuthorizationCode) -> None: ...

    async def consume(self, digest: str, now: int) -> AuthorizationCode | None:
        """Atomically mark the code consumed and return it; ``None`` if unknown or already used."""
        ...

    async def get(self, digest: str) -> AuthorizationCode | None: ...


class SecurityStampStore(Protocol):
    """A counter per subject that every event ending a user's sessions or grants renews
    (a password changed or reset, an account disabled or deleted, "sign out everywhere", a
    second factor reset). An authorization code records it when issued and is refused at
    redemption when it changed since (``core.grants.authorization_code``); a sign-in records it
    at its password step and writes its session only while it is still that one
    (``core.interaction``). Kept in SQL, keyed by the subject, whatever the accounts
    implementation and wherever the codes and sign-in transactions are."""

    async def hold(self, user_id: str) -> int:
        """The subject's stamp (0 for one never renewed), locked until the transaction ends:
        a concurrent ``renew`` waits for this transaction, and this waits for a concurrent
        ``renew`` to end, then reads what it wrote."""
        ...

    async def current(self, user_id: str) -> int:
        """The subject's stamp as committed (0 for one never renewed), without a lock: what a
        sign-in records at its password step, to compare when it creates the session
        (``hold``)."""
        ...

    async def renew(self, user_id: str) -> None:
        """Give the subject a new stamp. Called before the event deletes any session or
        revokes any grant, so that a code redeemed concurrently either reads the new stamp (and
        is refused) or commits its grant before the event's revocation runs (and that grant is
        revoked), and a sign-in likewise either reads the new stamp (and makes no session) or
        commits its session before the event's deletion runs (and that session is deleted)."""
        ...


class GrantStore(Protocol):
    async def create(self, grant: Grant) -> None: ...

    async def issue(
        self,
        grant: Grant | None,
        *,
        access_token: AccessTokenRecord | None,
        refresh_token: RefreshToken | None,
        stamp: tuple[str, int] | None = None,
        last: bool = False,
    ) -> None:
        """Write the rows of one issuance together, each when given: a new grant (left as it
        is when one with its id exists already, no ``Conflict``), the access-token record and
        the refresh token. In the request's transaction, like every store call; one statement
        where the database allows it.

        ``stamp``: ``(user_id, stamp)``, a code's redemption: nothing is written, and
        ``StaleStamp`` raised, unless the user's security stamp is still ``stamp``, held
        (``SecurityStampStore.hold``) until the transaction ends. The issuance is then the
        redemption's last write: when nothing was written in the transaction before, it may be
        committed by itself (PostgreSQL).

        ``last``: the caller writes nothing after this issuance (an opaque client-credentials
        token, the request's only write): likewise committed by itself when nothing was
        written in the transaction before (PostgreSQL: one round-trip instead of ``BEGIN``,
        the insert and ``COMMIT``). Should the request fail afterwards, the record stays: a
        token that was never handed out, which nobody can present."""
        ...

    async def get(self, grant_id: str) -> Grant | None: ...

    async def get_live(self, grant_id: str) -> Grant | None:
        """The grant, unless it is revoked or its user is gone or disabled (one read)."""
        ...

    async def revoke(self, grant_id: str, now: int) -> bool: ...
    async def list_for_user(self, user_id: str) -> list[Grant]:
        """Every grant of a user, revoked ones included, oldest first."""
        ...

    async def revoke_for_user(self, user_id: str, now: int) -> int:
        """Revoke every grant of a user (a password change, a disabled account)."""
        ...

    async def revoke_for_client(self, user_id: str, client_id: str, now: int) -> int:
        """Revoke every grant a user gave one client (the user withdrew consent)."""
        ...

    async def revoke_for_session(self, session_id: str, now: int) -> int:
        """Revoke the grants made in one SSO session, except those with ``offline_access``
        (which the user asked to outlive the session)."""
        ...

    async def revoke_for_audience(self, audience: str, now: int) -> int:
        """Revoke every grant for one API (the API is deleted)."""
        ...

    async def revoke_for_client_audience(self, client_id: str, audience: str, now: int) -> int:
        """Revoke every grant of one client for one API (a grant has one audience): the API
        was taken from the client. Other clients' grants for it stay."""
        ...

    async def revoke_for_client_scopes(
        self, client_id: str, scopes: Collection[str], now: int
    ) -> int:
        """Revoke every grant of one client that holds any of ``scopes`` (compared exactly):
        they were taken from the client."""
        ...


class AccessTokenStore(Protocol):
    """Server-side access-token records and the JWT deny-list."""

    async def record(self, token: AccessTokenRecord) -> None: ...
    async def get(self, jti: str) -> AccessTokenRecord | None: ...
    async def get_by_digest(self, digest: str) -> AccessTokenRecord | None: ...
    async def revoke(self, jti: str, now: int) -> bool: ...

    async def revoke_for_audience(self, audience: str, now: int) -> int:
        """Revoke every recorded, unexpired token for one API (the API is deleted): those of
        no grant too (opaque client-credentials tokens)."""
        ...

    async def revoke_for_client_audience(self, client_id: str, audience: str, now: int) -> int:
        """Revoke every recorded, unexpired token of one client for one API (the API was taken
        from the client): those of no grant too."""
        ...

    async def revoke_for_client_scopes(
        self, client_id: str, scopes: Collection[str], now: int
    ) -> int:
        """Revoke every recorded, unexpired token of one client whose scope holds any of
        ``scopes`` (compared exactly): those of no grant too."""
        ...

    async def deny_jti(self, jti: str, expires_at: int) -> None: ...
    async def is_denied(self, jti: str) -> bool: ...


class RefreshTokenStore(Protocol):
    async def create(self, token: RefreshToken) -> None: ...

    async def rotate(self, digest: str, now: int, *, client_id: str) -> RefreshToken | None:
        """Atomically mark the token rotated and return it; ``None`` if unknown, rotated, or
        issued to another client than ``client_id`` (then it is left as it was)."""
        ...

    async def rotate_with_grant(
        self, digest: str, now: int, *, client_id: str
    ) -> tuple[RefreshToken, Grant | None] | None:
        """``rotate``, and the rotated token's grant as ``GrantStore.get_live`` reads it
        (``None``: revoked, or its user gone or disabled), in one statement where the database
        allows it."""
        ...

    async def get(self, digest: str) -> RefreshToken | None: ...


class AssertionJtiStore(Protocol):
    async def use(self, client_id: str, jti: str, expires_at: int) -> bool:
        """Record a client assertion's ``jti``; ``False`` if it was used before (replay)."""
        ...


class ConsentStore(Protocol):
    """What a user allowed a client, per API: ``api`` is the identifier of the API (the token
    audience) the scopes were granted for, ``""`` for a request without one."""

    async def granted_scopes(self, user_id: str, client_id: str, api: str) -> frozenset[str]: ...
    async def grant(
        self, user_id: str, client_id: str, api: str, scopes: tuple[str, ...], now: int
    ) -> None: ...

    async def list_for_user(self, user_id: str) -> dict[str, dict[str, frozenset[str]]]:
        """Client id → API identifier → the scopes the user consented to."""
        ...

    async def withdraw(self, user_id: str, client_id: str) -> int: ...

    async def withdraw_for_api(self, api: str) -> int:
        """Delete every consent given for one API (the API is deleted)."""
        ...

    async def withdraw_for_client_api(self, client_id: str, api: str) -> int:
        """Delete every user's consent to one client for one API (the API was taken from the
        client)."""
        ...

    async def withdraw_for_client_scopes(self, client_id: str, scopes: Collection[str]) -> int:
        """Delete every user's consent to one client for any of ``scopes``, for every API (the
        scopes were taken from the client); the client's other consented scopes stay."""
        ...


class SessionStore(Protocol):
    async def create(self, session: Session) -> None: ...
    async def get(self, digest: str, now: int) -> Session | None: ...
    async def delete(self, digest: str) -> None: ...
    async def delete_for_user(self, user_id: str) -> int: ...
    async def list_for_user(self, user_id: str, now: int) -> list[Session]:
        """A user's unexpired sessions, oldest first."""
        ...


class InteractionStore(Protocol):
    async def create(self, interaction: Interaction) -> None: ...
    async def get(self, interaction_id: str, now: int) -> Interaction | None: ...
    async def delete(self, interaction_id: str) -> bool: ...

    async def set_pending(
        self, interaction_id: str, user_id: str, auth_time: int, stamp: int
    ) -> bool:
        """Record that ``user_id`` passed the password step of this interaction at
        ``auth_time``, checked against the security stamp ``stamp``, and must still present a
        second factor (``core.mfa``)."""
        ...

    async def delete_for_user(self, user_id: str) -> int:
        """Delete the interactions a user passed the password step of (the user is deleted)."""
        ...


class TotpStore(Protocol):
    """Each user's TOTP authenticator (``core.totp``), at most one."""

    async def get(self, user_id: str) -> TotpCredential | None: ...

    async def begin(self, user_id: str, sealed_secret: str, now: int) -> bool:
        """Store a new, unconfirmed key, replacing an unconfirmed one; ``False`` (nothing
        written) when the user has a confirmed one."""
        ...

    async def confirm(self, user_id: str, now: int) -> bool:
        """Activate the unconfirmed key; ``False`` if there is none."""
        ...

    async def use_step(self, user_id: str, step: int) -> bool:
        """Atomically record ``step`` as the last used time step if it is later than the one
        on record; ``False`` otherwise (a replayed code). Of concurrent uses of one step
        exactly one succeeds."""
        ...

    async def delete(self, user_id: str) -> bool: ...


class PasskeyStore(Protocol):
    """Each user's passkeys (``core.passkeys``)."""

    async def add(self, credential: PasskeyCredential) -> bool:
        """Store a new credential; ``False`` (nothing written) when its credential id is known."""
        ...

    async def list_for_user(self, user_id: str) -> list[PasskeyCredential]:
        """A user's passkeys, oldest first."""
        ...

    async def get(self, credential_id: str) -> PasskeyCredential | None: ...

    async def use(self, credential_id: str, sign_count: int, now: int) -> bool:
        """Atomically record a use: the counter becomes ``sign_count`` if it is greater than
        the one on record (or both are 0, an authenticator without a counter); ``False``
        otherwise (a counter that did not advance: a replay or a cloned authenticator). Of
        concurrent uses with one counter value exactly one succeeds."""
        ...

    async def delete(self, user_id: str, passkey_id: str) -> bool: ...
    async def delete_all(self, user_id: str) -> int: ...


class RecoveryCodeStore(Protocol):
    """One-time recovery codes, stored as digests (``core.recovery_codes``)."""

    async def replace(self, user_id: str, digests: tuple[str, ...], now: int) -> None:
        """Delete the user's codes, used or not, and store these."""
        ...

    async def use(self, user_id: str, digest: str, now: int) -> bool:
        """Atomically mark the unused code ``digest`` used; ``False`` if unknown or used."""
        ...

    async def count_unused(self, user_id: str) -> int: ...
    async def delete_all(self, user_id: str) -> int: ...


class ClientDocumentStore(Protocol):
    """Fetched Client ID Metadata Documents (``core.metadata_document``), kept until their HTTP
    cache lifetime ends and shared by every process: the raw body, validated again when read."""

    async def get(self, url: str, now: int) -> bytes | None: ...
    async def put(self, url: str, body: bytes, expires_at: int) -> None:
        """Keep ``body`` for ``url`` until ``expires_at``, replacing what was kept."""
        ...


class LoginFailureStore(Protocol):
    """Login attempt counters (``core.throttle``), shared by every process."""

    async def get(self, key: str) -> FailureCount | None: ...

    async def reserve(self, key: str, now: int, *, policy: BackoffPolicy, ttl: int) -> Reservation:
        """In one atomic step: when ``policy`` admits another attempt at ``now``, count it
        (``count + 1``, ``last_at = now``, the counter forgotten ``ttl`` s later) and grant it;
        otherwise refuse it and leave the counter as it is. Concurrent reservations of one key,
        from any number of processes, are serialised by the store: of 30 at once, exactly as
        many are granted as the policy admits."""
        ...

    async def release(self, key: str) -> None:
        """Give back one granted reservation (the attempt succeeded); never below zero."""
        ...

    async def clear(self, key: str) -> None: ...


class AccountTokenStore(Protocol):
    """The links of ``core.self_service`` (sign-up, e-mail verification, password reset,
    invitation), by the digest of their secret."""

    async def create(self, token: AccountToken) -> None: ...

    async def consume(self, digest: str, purpose: str, now: int) -> AccountToken | None:
        """In one atomic step: mark the unexpired, unused link of ``purpose`` used and return
        it; ``None`` when unknown, expired, used or of another purpose (of two concurrent
        consumptions, one wins)."""
        ...

    async def get(self, digest: str, purpose: str, now: int) -> AccountToken | None:
        """The unexpired, unused link, without using it."""
        ...

    async def revoke_for_user(self, user_id: str, purpose: str, now: int) -> int:
        """Mark every unused link of ``purpose`` of a user used (a newer link, a reset done)."""
        ...

    async def revoke_for_email(self, email: str, purpose: str, now: int) -> int:
        """Mark every unused link of ``purpose`` sent to ``email`` used (an invitation
        withdrawn or replaced)."""
        ...

    async def list_pending(self, purpose: str, now: int) -> list[AccountToken]:
        """The unexpired, unused links of ``purpose``, oldest first."""
        ...

    async def delete_for_user(self, user_id: str) -> int:
        """Delete every link of a user, used or not (the user is deleted)."""
        ...


class InitialAccessTokenStore(Protocol):
    """The operator's initial access tokens for dynamic client registration (RFC 7591 §3)."""

    async def create(self, token: InitialAccessToken) -> None: ...

    async def use(self, digest: str, now: int) -> bool:
        """Spend one use of a live token, atomically: False if unknown, expired or used up."""
        ...

    async def list(self) -> list[InitialAccessToken]: ...
    async def delete(self, digest: str) -> bool: ...


class AuditTrailStore(Protocol):
    """The audit events already stored (they are written off the request path by the server's
    audit writer)."""

    async def forget_user(self, user_id: str) -> int:
        """Remove the client address and the personal detail keys (``audit.PERSONAL_DETAIL``)
        from the user's events, keeping the events; how many changed."""
        ...


class Stores(Protocol):
    """The stores of one request, sharing one transaction."""

    @property
    def holds_connection(self) -> bool:
        """Whether the request holds its database connection now (its transaction is open;
        a lazily opened one may not be yet). Only a caller that holds none may wait for
        another request's load of a cached client or API (``TTLCache.get``'s ``wait``)."""
        ...

    @property
    def apis(self) -> ApiStore: ...
    @property
    def clients(self) -> ClientStore: ...
    @property
    def users(self) -> UserStore: ...
    @property
    def codes(self) -> CodeStore: ...
    @property
    def grants(self) -> GrantStore: ...
    @property
    def security_stamps(self) -> SecurityStampStore: ...
    @property
    def access_tokens(self) -> AccessTokenStore: ...
    @property
    def refresh_tokens(self) -> RefreshTokenStore: ...
    @property
    def assertion_jtis(self) -> AssertionJtiStore: ...
    @property
    def login_failures(self) -> LoginFailureStore: ...
    @property
    def consents(self) -> ConsentStore: ...
    @property
    def sessions(self) -> SessionStore: ...
    @property
    def interactions(self) -> InteractionStore: ...
    @property
    def account_tokens(self) -> AccountTokenStore: ...
    @property
    def client_documents(self) -> ClientDocumentStore: ...
    @property
    def totp(self) -> TotpStore: ...
    @property
    def recovery_codes(self) -> RecoveryCodeStore: ...
    @property
    def initial_access_tokens(self) -> InitialAccessTokenStore: ...
    @property
    def passkeys(self) -> PasskeyStore: ...
    @property
    def audit_trail(self) -> AuditTrailStore: ...

    async def commit(self) -> None:
        """Commit what was written so far; used where a failing request must still persist a
        security action (a replayed code's revocation, a burnt code)."""
        ...
