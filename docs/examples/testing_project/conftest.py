"""Point the app at the test issuer before any test module imports it, and serve the app."""

import os
from collections.abc import Iterator

import pytest

from tokensmith.testing import ThreadedServer

# Set by the tokensmith plugin when pytest starts, before conftests are imported.
os.environ["NOTES_ISSUER"] = os.environ["TOKENSMITH_TEST_ISSUER"]


@pytest.fixture(scope="session")
def notes_url() -> Iterator[str]:
    from notes_api import app

    # uvicorn on a free local port, in a thread; the app's lifespan runs once, for the session
    with ThreadedServer(app, lifespan="on") as server:
        yield server.url
