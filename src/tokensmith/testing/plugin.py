"""The tokensmith pytest plugin (entry point ``pytest11: tokensmith``).

Fixtures:

* ``tokensmith_issuer`` — a :class:`~tokensmith.testing.LocalIssuer` served over real HTTP on
  127.0.0.1, reset for each test (one fresh ES256 key, no opaque tokens, zeroed counters);
* ``tokensmith_issuer_session`` — the same server, shared by the session, not reset.

This module is loaded into every pytest run of a project that installs tokensmith, so it imports
nothing heavy at module level.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .issuer import LocalIssuer


@pytest.fixture(scope="session")
def tokensmith_issuer_session() -> Iterator[LocalIssuer]:
    """A local issuer served over HTTP for the whole session."""
    from .issuer import LocalIssuer

    issuer = LocalIssuer()
    with issuer.serve():
        yield issuer


@pytest.fixture
def tokensmith_issuer(tokensmith_issuer_session: LocalIssuer) -> LocalIssuer:
    """The session's local issuer, reset to a fresh key and empty state for this test."""
    tokensmith_issuer_session.reset()
    return tokensmith_issuer_session
