"""PKCE (RFC 7636), S256 only.

OAuth 2.1 §4.1.1 and RFC 9700 §2.1.1: every client uses PKCE; ``plain`` is refused (our policy,
stricter than RFC 7636, which allows it). A verifier is 43-128 characters of ``[A-Za-z0-9-._~]``
(RFC 7636 §4.1); an S256 challenge is the unpadded base64url of a SHA-256 digest: exactly 43
characters of the base64url alphabet (§4.2).
"""

from __future__ import annotations

import hashlib
import hmac
import re

from tokensmith.core.errors import InvalidGrant, InvalidRequest
from tokensmith.core.jose import b64url_encode

SUPPORTED_METHODS = ("S256",)
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def s256(verifier: str) -> str:
    """The S256 code challenge of ``verifier``."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return b64url_encode(digest)


def check_challenge(challenge: str | None, method: str | None) -> str:
    """Validate the authorization request's ``code_challenge``; return it."""
    if challenge is None:
        raise InvalidRequest("code_challenge is required (PKCE with S256)")
    if method is None:
        # RFC 7636 §4.3 defaults to plain, which we refuse: the method must be explicit.
        raise InvalidRequest("code_challenge_method is required and must be S256")
    if method not in SUPPORTED_METHODS:
        raise InvalidRequest("code_challenge_method must be S256")
    if not _S256_CHALLENGE.fullmatch(challenge):
        raise InvalidRequest("code_challenge must be 43 base64url characters without padding")
    return challenge


def check_verifier(verifier: str | None, challenge: str) -> None:
    """Check the token request's ``code_verifier`` against the stored challenge."""
    if verifier is None:
        raise InvalidGrant("code_verifier is required")
    if not _VERIFIER.fullmatch(verifier):
        raise InvalidGrant("code_verifier must be 43-128 unreserved characters")
    if not hmac.compare_digest(s256(verifier), challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge")


def verifier_matches(verifier: str | None, challenge: str) -> bool:
    """Whether ``verifier`` is well-formed and matches ``challenge`` (no exception)."""
    try:
        check_verifier(verifier, challenge)
    except InvalidGrant:
        return False
    return True
