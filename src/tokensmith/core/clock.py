"""Time is injected: every component takes a ``Clock`` so tests can move it."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]
system_clock: Clock = time.time


class FakeClock:
    """A settable clock for tests and benchmarks."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds
