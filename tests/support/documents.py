"""A local web server for Client ID Metadata Documents (tests of fetching them): each path answers
what the test sets, optionally late, and every request is recorded (so a test can show that a
refused address was never connected to)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0


@dataclass
class DocumentServer:
    port: int
    answers: dict[str, Answer] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(path, Host header) of every request received."""

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def serve(self, path: str, document: dict[str, object] | bytes, **kwargs: object) -> str:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.answers[path] = Answer(body=body, **kwargs)  # type: ignore[arg-type]
        return self.url(path)


@contextmanager
def document_server() -> Iterator[DocumentServer]:
    state: DocumentServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append((self.path, self.headers.get("Host", "")))
            answer = state.answers.get(self.path, Answer(status=404, body=b"{}"))
            if answer.delay:
                time.sleep(answer.delay)
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up (slow, oversized)
                self.wfile.write(answer.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = DocumentServer(port=server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
