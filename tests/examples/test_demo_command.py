"""``tokensmith demo`` as a person runs it: a subprocess in an empty folder, a sign-in through the
CloudDocs web app over HTTP (the login and consent forms, as a browser posts them), a document
written and listed through the API, Ctrl-C, and a second run on the same folder."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from tests.conftest import FAST_HASH
from tests.server.harness import hidden_fields

from tokensmith.demo.seed import DemoDataError, DemoUrls, seed
from tokensmith.demo.servers import DemoError, demo_settings, load_examples

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def free_base_port() -> int:
    """A base port with it and the next three free (checked by binding them)."""
    for _ in range(50):
        base = random.randint(20000, 32000)  # below Linux's ephemeral ports
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + 4):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise AssertionError("no four consecutive free ports")


class Demo:
    def __init__(self, folder: Path, base: int, logs: Path) -> None:
        self.folder, self.base, self.logs = folder, base, logs
        self.log = logs / "demo-0.log"
        self.runs = 0
        self.issuer = f"http://127.0.0.1:{base}"
        self.web = f"http://127.0.0.1:{base + 1}"
        self.api = f"http://127.0.0.1:{base + 2}"
        self.spa = f"http://127.0.0.1:{base + 3}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.runs += 1
        self.log = self.logs / f"demo-{self.runs}.log"  # one log per run
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENSMITH_", "GITHUB_"))}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from tokensmith.cli import main; main()",
                    "demo",
                    "--dir",
                    str(self.folder),
                    "--port",
                    str(self.base),
                ],
                cwd=self.folder.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while "Press Ctrl-C" not in self.output():
            assert self.process.poll() is None, f"the demo exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"the demo did not start:\n{self.output()}"
            time.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGINT) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    folder = tmp_path / "demo"
    assert not folder.exists()
    running = Demo(folder, free_base_port(), tmp_path)
    try:
        yield running
    finally:
        running.kill()


def sign_in(
    http: httpx.Client, url: str, *, issuer: str, username: str, password: str
) -> httpx.Response:
    """Follow redirects from ``url`` like a browser, filling tokensmith's login and consent
    forms; returns the first page that is not on the authorization server."""
    response = http.get(url)
    for _ in range(15):
        if response.status_code in (302, 303):
            response = http.get(urljoin(str(response.url), response.headers["location"]))
            continue
        on_issuer = str(response.url).startswith(issuer + "/")
        if response.status_code != 200 or not on_issuer:
            return response
        fields = hidden_fields(response.text)
        if response.url.path == "/login":
            fields.update(username=username, password=password)
        elif response.url.path == "/consent":
            fields["decision"] = "allow"
        else:
            return response
        response = http.post(str(response.url.copy_with(query=None)), data=fields)
    raise AssertionError("the sign-in did not finish")


def demo_password(demo: Demo) -> str:
    data = json.loads((demo.folder / "demo.json").read_text())
    assert data["username"] == "demo"
    return str(data["password"])


@pytest.mark.slow
def test_demo_starts_signs_in_stops_and_reuses_its_data(demo: Demo) -> None:
    demo.start()
    password = demo_password(demo)
    banner = demo.output()
    assert f"demo / {password}" in banner
    for url in (demo.issuer, demo.web, demo.api, demo.spa):
        assert url in banner
    assert "Open first:" in banner
    assert (demo.folder / "demo.json").stat().st_mode & 0o777 == 0o600

    with httpx.Client(follow_redirects=False, timeout=10.0) as http:
        assert http.get(f"{demo.issuer}/.well-known/openid-configuration").status_code == 200
        assert http.get(f"{demo.spa}/config.json").json()["issuer"] == demo.issuer
        home = sign_in(
            http,
            f"{demo.web}/auth/tokensmith/login?next=/",
            issuer=demo.issuer,
            username="demo",
            password=password,
        )
        assert home.status_code == 200, home.text[:500]
        assert str(home.url) == f"{demo.web}/"
        assert "Your documents" in home.text
        assert "Demo User" in home.text
        csrf = hidden_fields(home.text)["csrf_token"]
        created = http.post(
            f"{demo.web}/documents",
            data={"csrf_token": csrf, "title": "Demo plan", "body": "Ship it"},
        )
        assert created.status_code == 303, created.text[:500]
        listing = http.get(f"{demo.web}/")
        assert "Demo plan" in listing.text

    assert demo.stop(signal.SIGINT) == 0
    assert "CloudDocs demo stopped." in demo.output()

    demo.start()  # the same folder: same user, password and documents
    assert demo_password(demo) == password
    assert f"demo / {password}" in demo.output()
    with httpx.Client(follow_redirects=False, timeout=10.0) as http:
        home = sign_in(
            http,
            f"{demo.web}/auth/tokensmith/login?next=/",
            issuer=demo.issuer,
            username="demo",
            password=password,
        )
        assert "Demo plan" in home.text
    assert demo.stop(signal.SIGTERM) == 0


@pytest.mark.slow
def test_demo_on_a_port_in_use_says_so(demo: Demo) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", demo.base + 2))
        busy.listen()
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "from tokensmith.cli import main; main()",
                "demo",
                "--dir",
                str(demo.folder),
                "--port",
                str(demo.base),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"port {demo.base + 2}" in result.stderr
    assert "--port" in result.stderr


def test_without_the_examples_folder_the_demo_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DemoError, match="source checkout"):
        load_examples(tmp_path / "examples")


async def test_a_demo_folder_belongs_to_its_ports_and_version(tmp_path: Path) -> None:
    urls = DemoUrls.from_base(18000)
    settings = demo_settings(tmp_path, urls.issuer, **FAST_HASH)
    first = await seed(settings, tmp_path, urls=urls)
    assert await seed(settings, tmp_path, urls=urls) == first  # reused, nothing created
    with pytest.raises(DemoDataError, match="same --port"):
        await seed(settings, tmp_path, urls=DemoUrls.from_base(19000))
    state = tmp_path / "demo.json"
    old = json.loads(state.read_text())
    del old["version"]
    state.write_text(json.dumps(old))
    with pytest.raises(DemoDataError, match="another version"):
        await seed(settings, tmp_path, urls=urls)
