"""A free local port, reserved before its server starts (standard library only: the pytest
plugin uses it while pytest starts, before anything heavy may be imported)."""

from __future__ import annotations

import socket

__all__ = ["reserve_port"]


def reserve_port(host: str = "127.0.0.1") -> socket.socket:
    """A TCP socket bound to a free port of ``host``, not yet listening.

    Its address is known (and no other process can take it) before the server starts:
    connections are refused until a :class:`~tokensmith.testing.ThreadedServer` serves on it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
    except OSError:
        sock.close()
        raise
    return sock
