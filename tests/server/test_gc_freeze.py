"""``gc_freeze``: once the server has started, the objects alive then are left out of Python's
later garbage collections (a full collection over the whole app paused every request in flight
for ~80 ms, docs/performance.md); off unless set (``tokensmith serve`` sets it: see
``tests/server/test_serve_command.py``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tests.support.settings import FAST_HASH
from tokensmith.server.app import create_app
from tokensmith.settings import Settings

ISSUER = "https://as.test"


def tracked(obj: object) -> bool:
    """Whether ``obj`` is in one of the collector's generations (a frozen object is not)."""
    return any(o is obj for o in gc.get_objects())


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    assert gc.get_freeze_count() == 0
    yield
    gc.unfreeze()  # the rest of this test process collects as before


@pytest.mark.parametrize("freeze", [True, False])
async def test_the_start_up_is_frozen_only_when_asked(sqlite_url: str, freeze: bool) -> None:
    settings = Settings(issuer=ISSUER, database_url=sqlite_url, gc_freeze=freeze, **FAST_HASH)  # type: ignore[arg-type]
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        if freeze:
            assert gc.get_freeze_count() > 10_000  # the modules, routes and schemas
            assert not tracked(runtime)
            assert not tracked(app)
        else:
            assert gc.get_freeze_count() == 0
            assert tracked(runtime)
        made_after: list[object] = []  # a list is always tracked
        assert tracked(made_after)  # what requests make is collected as ever
