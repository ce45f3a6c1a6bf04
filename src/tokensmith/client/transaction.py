"""The login transaction: ``state``, PKCE verifier and ``nonce``, bound to one browser.

Why each value exists:

* ``state`` (RFC 6749 §10.12, RFC 9700 §4.7): a one-time value bound to this browser, so that an
  attacker cannot make the victim's browser complete a login the attacker started (login CSRF).
* PKCE S256 (RFC 7636, RFC 9700 §2.1.1): the verifier never leaves our back channel, so a stolen or
  injected authorization code is useless without it. Always sent, also to GitHub and Google.
* ``nonce`` (OpenID Connect Core §3.1.2.1, RFC 9700 §4.5.3.2): binds the ID token to this
  transaction; an ID token minted for another login is refused.

All three live in one short-lived cookie, sealed with AES-GCM (so it can be neither read nor
altered), whose associated data names the cookie, so a transaction cookie copied under another
name does not open. The cookie name is derived from ``state``, so parallel logins in one browser do
not overwrite each other. Pure code: no web framework, no I/O.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from dataclasses import dataclass, field

from tokensmith.client.crypto import CookieKeyRing
from tokensmith.client.errors import InvalidState
from tokensmith.core.pkce import s256

__all__ = [
    "LoginTransaction",
    "code_challenge",
    "is_safe_return_path",
    "new_transaction",
    "open_transaction",
    "seal_transaction",
    "transaction_cookie_name",
]

_VERIFIER_RE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_STATE_MAX = 512


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginTransaction:
    provider: str
    state: str = field(repr=False)
    code_verifier: str = field(repr=False)
    nonce: str | None = field(repr=False)
    return_to: str
    created_at: float

    @property
    def code_challenge(self) -> str:
        return code_challenge(self.code_verifier)


def new_transaction(provider: str, *, oidc: bool, return_to: str, now: float) -> LoginTransaction:
    """Fresh random values for one login (256 bits each)."""
    return LoginTransaction(
        provider=provider,
        state=secrets.token_urlsafe(32),
        code_verifier=secrets.token_urlsafe(48),
        nonce=secrets.token_urlsafe(32) if oidc else None,
        return_to=return_to,
        created_at=now,
    )


def code_challenge(verifier: str) -> str:
    """RFC 7636 §4.2, S256."""
    if not _VERIFIER_RE.match(verifier):
        raise ValueError("invalid PKCE code_verifier")
    return s256(verifier)


def transaction_cookie_name(keys: CookieKeyRing, state: str, *, prefix: str) -> str:
    """``<prefix>_tx_<digest of state>``; ``prefix`` is ``ClientConfig.cookie_name_prefix``
    (``__Host-tsc_...`` over https)."""
    return f"{prefix}_tx_{keys.digest('tx-cookie', state)[:22]}"


def seal_transaction(keys: CookieKeyRing, tx: LoginTransaction, cookie_name: str) -> str:
    payload = {
        "p": tx.provider,
        "s": tx.state,
        "v": tx.code_verifier,
        "n": tx.nonce,
        "r": tx.return_to,
        "t": tx.created_at,
    }
    data = json.dumps(payload, separators=(",", ":")).encode()
    return keys.transactions.seal(data, _aad(cookie_name))


def open_transaction(
    keys: CookieKeyRing,
    *,
    cookie_name: str,
    cookie_value: str | None,
    provider: str,
    state: str,
    now: float,
    ttl: float,
) -> LoginTransaction:
    """Open and check the transaction cookie for a callback; raises :class:`InvalidState`.

    Checks, in order: a cookie exists for this ``state`` (browser binding), it decrypts under its
    own name (integrity), it belongs to this provider (the callback path, RFC 9700 §4.4.2.2), its
    ``state`` equals the one received (constant time) and it is not older than ``ttl``.
    """
    if not cookie_value:
        raise InvalidState("no transaction cookie for this state in this browser")
    raw = keys.transactions.open(cookie_value, _aad(cookie_name))
    if raw is None:
        raise InvalidState("transaction cookie does not decrypt")
    try:
        data = json.loads(raw)
        tx = LoginTransaction(
            provider=str(data["p"]),
            state=str(data["s"]),
            code_verifier=str(data["v"]),
            nonce=None if data["n"] is None else str(data["n"]),
            return_to=str(data["r"]),
            created_at=float(data["t"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidState("transaction cookie malformed") from exc
    if not hmac.compare_digest(tx.provider.encode(), provider.encode()):
        raise InvalidState(f"transaction started for provider {tx.provider!r}, not {provider!r}")
    if not hmac.compare_digest(tx.state.encode(), state.encode()):
        raise InvalidState("state does not match the transaction")
    if not (tx.created_at - 5 <= now <= tx.created_at + ttl):
        raise InvalidState("transaction expired")
    return tx


def check_state_param(state: str | None) -> str:
    """The ``state`` query parameter, or :class:`InvalidState` (fail closed when missing)."""
    if not state or len(state) > _STATE_MAX:
        raise InvalidState("callback without a usable state parameter")
    return state


def is_safe_return_path(path: str) -> bool:
    """Only same-origin absolute paths: ``/x``, never ``//host``, ``/\\host``, schemes or controls
    (RFC 9700 §4.11.1: the client must not be an open redirector)."""
    if not path.startswith("/") or path.startswith("//") or path.startswith("/\\"):
        return False
    if any(ord(c) < 0x21 or ord(c) == 0x7F or c == "\\" for c in path):
        return False
    return len(path) <= 2048


def _aad(cookie_name: str) -> bytes:
    return b"tokensmith.client.tx|" + cookie_name.encode()
