"""Issued secrets: random, prefixed so that leaked ones are recognisable, stored as digests.

Client secrets, authorization codes, refresh tokens and session ids are high-entropy values (at
least 256 bits), so a keyed HMAC-SHA256 under a server pepper is the right digest: it costs
microseconds, and a stolen database alone gives nothing to brute-force. Comparisons are
constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets as _secrets

CLIENT_SECRET_PREFIX = "ts_cs_"
CODE_PREFIX = "ts_ac_"
REFRESH_TOKEN_PREFIX = "ts_rt_"
ACCESS_TOKEN_PREFIX = "ts_at_"
SESSION_PREFIX = "ts_ss_"
INTERACTION_PREFIX = "ts_ix_"
CLIENT_ID_PREFIX = "ts_ci_"


def new_secret(prefix: str, *, nbytes: int = 32) -> str:
    """A random value with ``nbytes`` of entropy (default 256 bits) behind ``prefix``."""
    return prefix + _secrets.token_urlsafe(nbytes)


def new_id(nbytes: int = 16) -> str:
    return _secrets.token_urlsafe(nbytes)


def digest(value: str, pepper: bytes) -> str:
    """The hex HMAC-SHA256 of ``value`` under the server ``pepper``."""
    return hmac.new(pepper, value.encode("utf-8"), hashlib.sha256).hexdigest()


def equals(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
