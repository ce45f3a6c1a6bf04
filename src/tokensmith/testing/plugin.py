"""The tokensmith pytest plugin (entry point ``pytest11: tokensmith``).

Fixtures:

* ``tokensmith_issuer`` — a :class:`~tokensmith.testing.LocalIssuer` served over real HTTP on
  127.0.0.1, reset for each test (one fresh ES256 key, no opaque tokens, zeroed counters);
* ``tokensmith_issuer_session`` — the same server, shared by the session, not reset.

The issuer's URL is known before any conftest or test module is imported: the plugin reserves a
free port on 127.0.0.1 when pytest starts and puts ``http://127.0.0.1:<port>`` in the environment
variable ``TOKENSMITH_TEST_ISSUER`` (each pytest process, e.g. each xdist worker, has its own). So
an app that reads its issuer from the environment when its module is imported can be pointed at
the test issuer by a conftest. The server itself starts only when a test first asks for one of the
fixtures; until then connections to that port are refused.

This module is loaded into every pytest run of a project that installs tokensmith, so it imports
nothing heavy at module level.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .issuer import LocalIssuer

__all__ = ["ISSUER_ENV"]

ISSUER_ENV = "TOKENSMITH_TEST_ISSUER"
"""The environment variable that holds the test issuer's URL during a pytest run."""

_RESERVED = pytest.StashKey[socket.socket]()


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Reserve the issuer's address and publish it before conftests are imported."""
    from .ports import reserve_port

    try:
        sock = reserve_port("127.0.0.1")
    except OSError:  # no loopback here: the fixtures will say so if a test asks for them
        return
    host, port = sock.getsockname()[:2]
    previous = os.environ.get(ISSUER_ENV)
    os.environ[ISSUER_ENV] = f"http://{host}:{port}"
    early_config.stash[_RESERVED] = sock

    def release() -> None:
        sock.close()
        if previous is None:
            os.environ.pop(ISSUER_ENV, None)
        else:
            os.environ[ISSUER_ENV] = previous

    early_config.add_cleanup(release)


@pytest.fixture(scope="session")
def tokensmith_issuer_session(pytestconfig: pytest.Config) -> Iterator[LocalIssuer]:
    """A local issuer served over HTTP for the whole session, at ``$TOKENSMITH_TEST_ISSUER``."""
    from .issuer import LocalIssuer

    issuer = LocalIssuer()
    with issuer.serve(sock=pytestconfig.stash.get(_RESERVED, None)):
        yield issuer


@pytest.fixture
def tokensmith_issuer(tokensmith_issuer_session: LocalIssuer) -> LocalIssuer:
    """The session's local issuer, reset to a fresh key and empty state for this test."""
    tokensmith_issuer_session.reset()
    return tokensmith_issuer_session
