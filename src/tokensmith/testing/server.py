"""Serve an ASGI app with uvicorn on 127.0.0.1 and a free port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

from .ports import reserve_port

__all__ = ["ThreadedServer"]


class ThreadedServer:
    """``with ThreadedServer(app) as server: server.url`` — a real HTTP server for tests.

    It serves on a free port of ``host``, or on ``sock`` (see :mod:`tokensmith.testing.ports`);
    the socket is closed when the server stops. With ``lifespan="on"`` the app's lifespan runs:
    its startup before :meth:`start` returns (a failing startup is an error there), its shutdown
    in :meth:`stop`.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        sock: socket.socket | None = None,
        lifespan: Literal["on", "off"] = "off",
    ) -> None:
        self._socket = sock if sock is not None else reserve_port(host)
        host, self.port = self._socket.getsockname()[:2]
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(
            app,
            lifespan=lifespan,
            log_level="warning",
            access_log=False,
            loop="asyncio",
            http="h11",
            ws="none",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.005)

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._socket.close()

    def __enter__(self) -> ThreadedServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
