"""Tests of the app built at import time: plain test functions over real HTTP, no async plugin."""

import httpx

from notes_api import AUDIENCE
from tokensmith.testing import LocalIssuer


def get_notes(notes_url: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{notes_url}/notes", headers=headers)


def test_notes_need_a_token_with_the_scope(
    notes_url: str, tokensmith_issuer_session: LocalIssuer
) -> None:
    issuer = tokensmith_issuer_session
    reader = issuer.token(sub="alice", scopes=["notes:read"], audience=AUDIENCE)
    assert get_notes(notes_url, reader).json() == {"owner": "alice"}
    assert get_notes(notes_url, issuer.token(scopes=[], audience=AUDIENCE)).status_code == 403
    assert get_notes(notes_url).status_code == 401


def test_expired_and_foreign_tokens_are_refused(
    notes_url: str, tokensmith_issuer_session: LocalIssuer
) -> None:
    issuer = tokensmith_issuer_session
    expired = issuer.expired_token(scopes=["notes:read"], audience=AUDIENCE)
    assert get_notes(notes_url, expired).status_code == 401
    other_api = issuer.token(scopes=["notes:read"], audience="https://other.example.com")
    assert get_notes(notes_url, other_api).status_code == 401
