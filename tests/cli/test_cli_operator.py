"""Issue 15, traps 8 and 9: the CLI refuses broken set-ups at the command (one line with the fix,
no traceback), and covers what an operator needs (users delete/enable, clients update, passwords
that stay out of shell history, readable keys and clients, grants and sessions, a table for people
and ``--json`` for every listing).

The commands run in-process through Typer's runner (the console script's own entry point, without
a Python start-up per command); the password prompt runs the installed ``tokensmith`` console
script on a pseudo-terminal, and ``tests/cli/test_cli.py`` runs it for JSON output and errors.
SQLite and PostgreSQL where the store matters. Rows the server would write (grants, sessions,
consents, audit events) are seeded through the real stores.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from select import select as select_fds
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from typer.testing import CliRunner

from tests.support.cli import assert_no_traceback
from tests.support.database import forget_keys
from tests.support.settings import FAST_HASH
from tokensmith.admin import Admin
from tokensmith.cli import app
from tokensmith.core.admin_access import ADMIN_SCOPES
from tokensmith.core.models import Grant, Session
from tokensmith.settings import Settings
from tokensmith.storage.sqlalchemy import tables as t
from tokensmith.storage.sqlalchemy.engine import sqlite_file

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
UTC_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"


def script_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin",
        "PYTHONPATH": str(ROOT / "src"),  # this checkout, not whichever one is installed
        "TOKENSMITH_DATABASE_URL": database_url,
        "TOKENSMITH_ISSUER": "https://as.test",
    }
    env.update({f"TOKENSMITH_{k.upper()}": str(v) for k, v in FAST_HASH.items()})
    env.update(extra)
    return env


class Tool:
    """The ``tokensmith`` command on one database, run in-process by Typer's runner (``env``:
    the variables the console script would get; ``at_terminal`` runs the script itself)."""

    def __init__(self, database_url: str, **extra: str) -> None:
        self.database_url = database_url
        self.env = script_env(database_url, **extra)
        self.runner = CliRunner()
        path = sqlite_file(database_url) if "://" in database_url else None
        if path is not None and os.path.exists(path):
            os.chmod(path, 0o600)  # a copied template: no "narrowed the mode" line on stderr

    def __call__(
        self, *args: str, ok: bool = True, input: str = ""
    ) -> subprocess.CompletedProcess[str]:
        # the settings variables only: PATH and PYTHONPATH are for the console script
        env = {k: v for k, v in self.env.items() if k not in ("PATH", "PYTHONPATH")}
        result = self.runner.invoke(app, list(args), env=env, input=input)
        assert_no_traceback(result)
        done = subprocess.CompletedProcess(
            list(args), result.exit_code, result.stdout, result.stderr
        )
        assert "Traceback" not in done.stdout + done.stderr, done.stderr
        if ok:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def json(self, *args: str, input: str = "") -> Any:
        return json.loads(self(*args, "--json", input=input).stdout)

    def refused(self, *args: str, match: str, input: str = "") -> str:
        """A command refused with exit 1 and one ``error:`` line on stderr matching ``match``."""
        done = self(*args, ok=False, input=input)
        assert done.returncode == 1, (args, done.returncode, done.stdout, done.stderr)
        error = done.stderr.strip()
        assert error.startswith("error: "), error
        assert len(error.splitlines()) == 1, error
        assert re.search(match, error, re.IGNORECASE | re.DOTALL), (match, error)
        return error


@pytest.fixture
def tool(database_url: str) -> Tool:
    return Tool(database_url)


@pytest.fixture
def sqlite_tool(sqlite_url: str) -> Tool:
    return Tool(sqlite_url)


def settings_of(database_url: str) -> Settings:
    return Settings(issuer="https://as.test", database_url=database_url, **FAST_HASH)  # type: ignore[arg-type]


def seed(database_url: str, *rows: Grant | Session) -> None:
    """Write grants and sessions as the server would."""

    async def go() -> None:
        async with Admin(settings_of(database_url)) as admin, admin.db.transaction() as stores:
            for row in rows:
                if isinstance(row, Grant):
                    await stores.grants.create(row)
                else:
                    await stores.sessions.create(row)

    asyncio.run(go())


# -- trap 8: broken set-ups refused at the command ---------------------------------------------


def test_missing_sqlite_file_is_refused_and_only_db_upgrade_creates_it(tmp_path: Path) -> None:
    path = tmp_path / "mistyped" / "tokensmith.db"
    tool = Tool(f"sqlite+aiosqlite:///{path}")
    for command in (("users", "list"), ("apis", "create", "--identifier", "urn:a", "--scope", "x")):
        tool.refused(
            *command, match=rf"no database at {re.escape(str(path))}.*tokensmith db upgrade"
        )
        assert not path.parent.exists()  # neither the file nor its folder was created
    assert "up to date" in tool("db", "upgrade").stdout
    assert path.exists()
    assert tool("users", "list").stdout.strip() == "no users"


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("postgresql://ts:secret@db.example/ts", r"postgresql\+asyncpg://"),
        ("postgres://ts@db.example/ts", r"postgresql\+asyncpg://ts@db\.example/ts"),
        ("sqlite:///tokensmith.db", r"sqlite\+aiosqlite:///tokensmith\.db"),
    ],
)
def test_synchronous_driver_urls_get_the_async_driver_hint(
    tmp_path: Path, url: str, hint: str
) -> None:
    error = Tool(url).refused("clients", "list", match=hint)
    assert "psycopg" not in error
    assert "secret" not in error  # a password in the URL is not echoed
    assert not (tmp_path / "tokensmith.db").exists()


def test_client_credentials_client_needs_an_api(tool: Tool) -> None:
    tool.refused(
        "clients", "create", "--name", "Worker", "--grant", "client_credentials",
        match=r"client_credentials client needs an API.*apis create.*--api",
    )  # fmt: skip
    assert tool.json("clients", "list") == []
    tool("apis", "create", "--identifier", "urn:a", "--scope", "x")
    worker = tool.json(
        "clients", "create", "--name", "Worker", "--grant", "client_credentials", "--api", "urn:a"
    )
    tool.refused(
        "clients", "update", worker["client_id"], "--remove-api", "urn:a",
        match="needs an API",
    )  # fmt: skip
    assert tool.json("clients", "show", worker["client_id"])["apis"] == ["urn:a"]


def test_apis_delete_refuses_while_clients_use_it_and_force_leaves_no_orphan(tool: Tool) -> None:
    tool("apis", "create", "--identifier", "urn:docs", "--scope", "docs:read")
    tool("apis", "create", "--identifier", "urn:mail", "--scope", "mail:send")
    web = tool.json(
        "clients", "create", "--name", "Web", "--redirect-uri", "https://rp.test/cb",
        "--scope", "openid", "--scope", "docs:read", "--scope", "mail:send",
        "--api", "urn:docs", "--api", "urn:mail",
    )["client_id"]  # fmt: skip
    worker = tool.json(
        "clients", "create", "--name", "Worker", "--grant", "client_credentials",
        "--scope", "docs:read", "--api", "urn:docs",
    )["client_id"]  # fmt: skip
    error = tool.refused("apis", "delete", "urn:docs", match="used by client")
    assert web in error
    assert worker in error
    assert "--force" in error
    # --force would leave the worker with no API: refused, and nothing changed (one transaction)
    tool.refused("apis", "delete", "urn:docs", "--force", match=rf"{worker}.*needs an API")
    assert [a["identifier"] for a in tool.json("apis", "list")] == ["urn:docs", "urn:mail"]
    assert tool.json("clients", "show", web)["apis"] == ["urn:docs", "urn:mail"]
    tool("clients", "delete", worker)
    done = tool("apis", "delete", "urn:docs", "--force")
    assert f"removed it from client(s): {web}" in done.stdout
    shown = tool.json("clients", "show", web)
    assert (shown["apis"], shown["scopes"]) == (["urn:mail"], ["openid", "mail:send"])
    assert [a["identifier"] for a in tool.json("apis", "list")] == ["urn:mail"]
    tool.refused("apis", "delete", "urn:docs", match="no API urn:docs")
    # an API nobody uses goes without --force
    tool("clients", "delete", web)
    tool("apis", "delete", "urn:mail")
    assert tool("apis", "list").stdout.strip() == "no APIs"


# -- trap 9: admin gaps --------------------------------------------------------------------------


def test_clients_update_keeps_id_and_secret_and_validates_as_create(tool: Tool) -> None:
    tool(
        "apis",
        "create",
        "--identifier",
        "urn:docs",
        "--scope",
        "docs:read",
        "--scope",
        "docs:write",
    )
    created = tool.json(
        "clients", "create", "--name", "Web", "--redirect-uri", "https://rp.test/cb",
        "--scope", "docs:read", "--api", "urn:docs",
    )  # fmt: skip
    client_id = created["client_id"]
    digest_before = asyncio.run(_secret_digest(tool.database_url, client_id))
    updated = tool.json(
        "clients", "update", client_id, "--name", "Web 2",
        "--add-redirect-uri", "https://rp.test/cb2", "--remove-redirect-uri", "https://rp.test/cb",
        "--add-post-logout-redirect-uri", "https://rp.test/bye", "--add-scope", "docs:write",
        "--add-grant", "refresh_token", "--access-token-ttl", "600", "--first-party",
    )  # fmt: skip
    assert updated["client_id"] == client_id
    assert "client_secret" not in updated
    assert updated["name"] == "Web 2"
    assert updated["redirect_uris"] == ["https://rp.test/cb2"]
    assert updated["post_logout_redirect_uris"] == ["https://rp.test/bye"]
    assert updated["scopes"] == ["docs:read", "docs:write"]
    assert updated["grant_types"] == ["authorization_code", "refresh_token"]
    assert (updated["access_token_ttl"], updated["first_party"]) == (600, True)
    assert tool.json("clients", "show", client_id) == updated
    assert asyncio.run(_secret_digest(tool.database_url, client_id)) == digest_before
    assert (
        tool.json("clients", "update", client_id, "--access-token-ttl", "0")["access_token_ttl"]
        is None
    )  # back to the server default
    for args, match in (
        (["--add-redirect-uri", "http://rp.test/cb"], "http redirect URIs"),
        (["--add-redirect-uri", "https://rp.test/*"], "wildcard"),
        (["--remove-redirect-uri", "https://rp.test/nope"], "has no redirect uri .*rp.test/cb2"),
        (["--add-scope", "mail:send"], "not defined by urn:docs"),
        (["--add-api", "urn:nope"], "no API .*urn:nope.*apis create"),
        (["--remove-redirect-uri", "https://rp.test/cb2"], "needs a redirect URI"),
        (["--add-grant", "password"], "password grant"),
        (["--name", " "], "name"),
        (["--id-token-alg", "HS256"], "RS256, ES256 or EdDSA"),
    ):
        tool.refused("clients", "update", client_id, *args, match=match)
    assert tool.json("clients", "show", client_id)["redirect_uris"] == ["https://rp.test/cb2"]
    tool.refused("clients", "update", "ts_ci_nope", "--name", "X", match="no client ts_ci_nope")
    assert tool("clients", "update", client_id, ok=False).returncode == 2  # nothing to change


def test_clients_update_remove_api_or_scope_revokes_that_clients_grants_for_it(
    tool: Tool,
) -> None:
    """``--remove-api`` and ``--remove-scope`` revoke the client's grants for what it lost and
    withdraw its users' consents to it, in the update's transaction; given back, nothing
    revives. Its other grants and another client's grants for the same API stay."""
    tool("apis", "create", "--identifier", "urn:docs", "--scope", "docs:read")
    tool("apis", "create", "--identifier", "urn:mail", "--scope", "docs:read")
    web = tool.json(
        "clients", "create", "--name", "Web", "--redirect-uri", "https://rp.test/cb",
        "--scope", "openid", "--scope", "docs:read", "--api", "urn:docs", "--api", "urn:mail",
    )["client_id"]  # fmt: skip
    peer = tool.json(
        "clients", "create", "--name", "Peer", "--redirect-uri", "https://rp.test/cb",
        "--scope", "docs:read", "--api", "urn:docs",
    )["client_id"]  # fmt: skip
    alice = tool.json("users", "create", "--username", "alice", "--password", PASSWORD)["id"]
    now = 1_800_000_000
    seed(
        tool.database_url,
        Grant("docs", web, alice, ("docs:read",), "urn:docs", now, now),
        Grant("mail", web, alice, ("docs:read",), "urn:mail", now, now),
        Grant("oidc", web, alice, ("openid", "docs:read"), "urn:mail", now, now),
        Grant("peer", peer, alice, ("docs:read",), "urn:docs", now, now),
    )
    asyncio.run(_consents(tool.database_url, alice, [
        (web, "urn:docs", ("openid", "docs:read")),
        (web, "urn:mail", ("openid", "docs:read")),
        (peer, "urn:docs", ("docs:read",)),
    ]))  # fmt: skip

    def revoked() -> set[str]:
        return {g["id"] for g in tool.json("users", "grants", "alice") if g["revoked_at"]}

    tool("clients", "update", web, "--remove-api", "urn:docs")
    assert revoked() == {"docs"}
    tool("clients", "update", web, "--remove-scope", "openid")
    assert revoked() == {"docs", "oidc"}
    tool("clients", "update", web, "--add-api", "urn:docs", "--add-scope", "openid")
    assert revoked() == {"docs", "oidc"}
    assert asyncio.run(_consents_of(tool.database_url, alice)) == {
        web: {"urn:mail": frozenset({"docs:read"})},
        peer: {"urn:docs": frozenset({"docs:read"})},
    }


async def _consents(
    database_url: str, user_id: str, given: list[tuple[str, str, tuple[str, ...]]]
) -> None:
    async with Admin(settings_of(database_url)) as admin, admin.db.transaction() as stores:
        for client_id, api, scopes in given:
            await stores.consents.grant(user_id, client_id, api, scopes, 1)


async def _consents_of(database_url: str, user_id: str) -> dict[str, dict[str, frozenset[str]]]:
    async with Admin(settings_of(database_url)) as admin, admin.db.transaction() as stores:
        return await stores.consents.list_for_user(user_id)


async def _secret_digest(database_url: str, client_id: str) -> str | None:
    async with Admin(settings_of(database_url)) as admin:
        client = await admin.get_client(client_id)
    assert client is not None
    return client.secret_digest


def test_clients_show_and_list_are_readable(sqlite_tool: Tool) -> None:
    tool = sqlite_tool
    created = tool.json(
        "clients", "create", "--name", "Web", "--redirect-uri", "https://rp.test/cb"
    )
    shown = tool("clients", "show", created["client_id"]).stdout
    assert "['" not in shown
    assert "None" not in shown
    assert "True" not in shown
    assert re.search(r"^redirect URIs: +https://rp\.test/cb$", shown, re.M)
    assert re.search(r"^APIs: +none", shown, re.M)
    assert re.search(r"^access token TTL: +server default$", shown, re.M)
    assert re.search(rf"^created: +{UTC_TIME}$", shown, re.M)
    listing = tool("clients", "list").stdout.splitlines()
    assert listing[0].split() == ["CLIENT", "ID", "TYPE", "NAME", "GRANTS", "APIS"]
    assert listing[1].startswith(created["client_id"])


def test_passwords_from_stdin_never_on_the_command_line(database_url: str) -> None:
    tool = Tool(database_url)
    user = tool.json(
        "users", "create", "--username", "bob", "--password-stdin", input=f"{PASSWORD}\n"
    )
    assert asyncio.run(_password_ok(database_url, "bob", PASSWORD))
    tool("users", "set-password", "bob", "--password-stdin", input="a brand new password\n")
    assert asyncio.run(_password_ok(database_url, user["id"], "a brand new password"))
    tool.refused(
        "users", "set-password", "bob", "--password-stdin", match="standard input is empty"
    )
    tool.refused(
        "users", "set-password", "bob", "--password-stdin", input="short\n", match="at least 15"
    )
    done = tool(
        "users", "create", "--username", "x", "--password", "p", "--password-stdin", ok=False
    )
    assert done.returncode == 2
    assert "not both" in done.stderr


async def _password_ok(database_url: str, login: str, password: str) -> bool:
    async with Admin(settings_of(database_url)) as admin:
        user = await admin.find_user(login)
        assert user is not None
        return admin.passwords().verify(user.password_hash, password)


def at_terminal(tool: Tool, args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run the console script on a pseudo-terminal (its controlling terminal, as a person's
    shell would give it), answer each prompt in turn; its exit status and everything shown."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the script, with the pty as stdin/stdout/stderr and /dev/tty
        os.execve(
            str(Path(sys.executable).with_name("tokensmith")), ["tokensmith", *args], tool.env
        )
    shown = b""
    pending = list(answers)
    while True:
        ready, _, _ = select_fds([fd], [], [], 60)
        assert ready, f"no output from {args}: {shown!r}"
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
        # click shows "Password:", then getpass turns echo off and writes " ": answer then
        if shown.endswith((b"Password: ", b"confirmation: ")):
            os.write(fd, pending.pop(0).encode() + b"\n" if pending else b"\x03")  # or Ctrl-C
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_password_prompt_is_hidden_and_confirmed(sqlite_url: str) -> None:
    """Without --password or --password-stdin the password is asked for at the terminal: not
    echoed, typed twice; with no terminal the command says to use --password-stdin."""
    tool = Tool(sqlite_url)
    code, shown = at_terminal(tool, ["users", "create", "--username", "carol"], [PASSWORD] * 2)
    assert code == 0, shown
    assert "Password:" in shown
    assert "Repeat for confirmation:" in shown
    assert PASSWORD not in shown  # not echoed
    assert asyncio.run(_password_ok(sqlite_url, "carol", PASSWORD))
    code, shown = at_terminal(
        tool, ["users", "set-password", "carol"], [PASSWORD, "something else"]
    )
    assert code != 0
    assert "do not match" in shown
    assert asyncio.run(_password_ok(sqlite_url, "carol", PASSWORD))
    tool.refused("users", "set-password", "carol", match="no terminal.*--password-stdin")


def test_users_grants_sessions_revoke_enable_delete(tool: Tool) -> None:
    tool("apis", "create", "--identifier", "urn:docs", "--scope", "docs:read")
    client_id = tool.json(
        "clients", "create", "--name", "Web", "--redirect-uri", "https://rp.test/cb",
        "--scope", "docs:read", "--api", "urn:docs",
    )["client_id"]  # fmt: skip
    alice = tool.json("users", "create", "--username", "alice", "--password", PASSWORD)
    bob = tool.json("users", "create", "--username", "bob", "--password", PASSWORD)
    now = 1_800_000_000
    far = 4_000_000_000
    rows: list[Grant | Session] = [
        Grant("g1", client_id, alice["id"], ("docs:read",), "urn:docs", now, now, session_id="s1"),
        Grant("g2", client_id, alice["id"], ("docs:read", "offline_access"), "urn:docs", now, now),
        Grant("g3", client_id, bob["id"], ("docs:read",), "urn:docs", now, now),
        Session("s1" + "0" * 62, alice["id"], now, far, ("pwd",)),
        Session("s2" + "0" * 62, bob["id"], now, far, ("pwd",)),
    ]  # fmt: skip
    seed(tool.database_url, *rows)
    asyncio.run(_consent_and_audit(tool.database_url, alice["id"], client_id))

    grants = tool.json("users", "grants", "alice")
    assert [(g["id"], g["revoked_at"]) for g in grants] == [("g1", None), ("g2", None)]
    assert grants[1]["scopes"] == ["docs:read", "offline_access"]
    table = tool("users", "grants", "alice").stdout
    assert table.splitlines()[0].split()[:2] == ["GRANT", "ID"]
    assert re.search(UTC_TIME, table)
    sessions = tool.json("users", "sessions", "alice")
    assert [s["id"] for s in sessions] == ["s1" + "0" * 62]
    assert re.search(UTC_TIME, tool("users", "sessions", "alice").stdout)

    assert "revoked grant g1" in tool("users", "revoke", "alice", "--grant", "g1").stdout
    tool.refused("users", "revoke", "alice", "--grant", "g1", match="revoked already")
    tool.refused("users", "revoke", "alice", "--grant", "g3", match="no grant g3")  # bob's
    tool.refused("users", "revoke", "alice", "--grant", "nope", match="no grant nope")
    assert "ended 1 session(s), revoked 1 grant(s)" in tool("users", "revoke", "alice").stdout
    assert tool.json("users", "sessions", "alice") == []
    assert all(g["revoked_at"] is not None for g in tool.json("users", "grants", "alice"))
    assert tool("users", "sessions", "alice").stdout.strip() == "no sessions for alice"
    # bob's are untouched
    assert [g["revoked_at"] for g in tool.json("users", "grants", "bob")] == [None]
    assert len(tool.json("users", "sessions", "bob")) == 1

    tool("users", "disable", "alice")
    tool("users", "enable", "alice")
    (listed,) = [u for u in tool.json("users", "list") if u["username"] == "alice"]
    assert listed["disabled"] is False
    assert tool("users", "list").stdout.splitlines()[0].split()[:2] == ["USERNAME", "EMAIL"]

    assert f"deleted user alice ({alice['id']})" in tool("users", "delete", "alice").stdout
    assert [u["username"] for u in tool.json("users", "list")] == ["bob"]
    tool.refused("users", "delete", "alice", match="no user alice")
    tool.refused("users", "enable", "alice", match="no user alice")
    tool.refused("users", "grants", "alice", match="no user alice")
    kept = asyncio.run(_what_stays(tool.database_url, alice["id"]))
    assert kept == {"audit events": 1, "grants": 2, "consents": 0}
    # bob keeps everything
    tool("users", "delete", "bob")
    assert asyncio.run(_what_stays(tool.database_url, bob["id"]))["grants"] == 1
    assert asyncio.run(_revoked_count(tool.database_url, bob["id"])) == 1


async def _consent_and_audit(database_url: str, user_id: str, client_id: str) -> None:
    async with Admin(settings_of(database_url)) as admin:
        async with admin.db.transaction() as stores:
            await stores.consents.grant(user_id, client_id, "urn:docs", ("docs:read",), 1)
        async with admin._engine.begin() as conn:
            await conn.execute(
                insert(t.audit_events).values(
                    at=1, event="login", user_id=user_id, client_id=None, address=None, detail="{}"
                )
            )


async def _what_stays(database_url: str, user_id: str) -> dict[str, int]:
    async with Admin(settings_of(database_url)) as admin:
        out = {}
        async with admin._engine.connect() as conn:
            for label, table in (
                ("audit events", t.audit_events),
                ("grants", t.grants),
                ("consents", t.consents),
            ):
                query = select(func.count()).select_from(table).where(table.c.user_id == user_id)
                out[label] = int((await conn.execute(query)).scalar_one())
        return out


async def _revoked_count(database_url: str, user_id: str) -> int:
    async with Admin(settings_of(database_url)) as admin, admin._engine.connect() as conn:
        g = t.grants
        query = select(func.count()).where(g.c.user_id == user_id, g.c.revoked_at.is_not(None))
        return int((await conn.execute(query)).scalar_one())


def test_keys_list_says_what_each_key_does_now(sqlite_tool: Tool, sqlite_url: str) -> None:
    asyncio.run(forget_keys(sqlite_url))  # a database no server has started on
    tool = sqlite_tool
    assert tool.json("keys", "list") == []
    first = tool("keys", "rotate", "--alg", "ES256", "--publish-ahead", "0").stdout
    assert re.search(rf"signs from {UTC_TIME}", first)
    assert not re.search(r"\d{10}", first)
    second = tool.json("keys", "rotate", "--alg", "ES256", "--publish-ahead", "3600")
    keys = {k["kid"]: k for k in tool.json("keys", "list")}
    assert keys[second["kid"]]["state"] == "next"
    (old,) = [k for kid, k in keys.items() if kid != second["kid"]]
    assert old["state"] == "signing"  # it signs until the next key activates
    assert old["retired_at"] == second["activates_at"]
    lines = tool("keys", "list").stdout.splitlines()
    assert lines[0].split()[:3] == ["KID", "ALG", "STATE"]
    assert re.search(rf"^{old['kid']} +ES256 +signing +{UTC_TIME}", lines[1] + lines[2], re.M)
    assert any(re.match(rf"{second['kid']} +ES256 +next ", line) for line in lines)
    assert "active" not in "\n".join(lines)
    assert "retired " not in "\n".join(lines)


def test_help_is_not_cut_at_80_columns(sqlite_tool: Tool) -> None:
    sqlite_tool.env["COLUMNS"] = "80"
    text = sqlite_tool("clients", "update", "--help").stdout
    for option in ("--remove-post-logout-redirect-uri", "--refresh-absolute-ttl", "--first-party"):
        assert option in text
    assert "…" not in text
    create = sqlite_tool("users", "create", "--help").stdout
    assert "--password-stdin" in create
    assert "shell history" in create


def test_no_command_summary_is_cut() -> None:
    """The one-line summaries of ``--help`` listings are whole sentences (click cuts a longer
    first sentence with "...")."""
    import typer.main

    from tokensmith.cli import app

    def walk(group: Any, path: str) -> list[tuple[str, str]]:
        # click's own limit for a listing 80 columns wide (formatter width 78)
        limit = 78 - 6 - max(len(name) for name in group.commands)
        found = []
        for name, sub in group.commands.items():
            found.append((f"{path} {name}", sub.get_short_help_str(limit=limit)))
            if hasattr(sub, "commands"):
                found += walk(sub, f"{path} {name}")
        return found

    summaries = walk(typer.main.get_command(app), "tokensmith")
    assert len(summaries) > 30
    assert [(p, h) for p, h in summaries if h.endswith("...")] == []


# -- the admin API's client, and sessions (the CLI side of the admin API's operations) ----------


def test_admin_bootstrap_prints_the_secret_once_and_registers_the_api(tool: Tool) -> None:
    tool("db", "upgrade")
    created = tool.json("admin", "bootstrap", "--name", "deploy")
    assert created["audience"] == "https://as.test/admin/v1"
    assert created["scopes"] == list(ADMIN_SCOPES)
    assert created["client_secret"].startswith("ts_cs_")
    (api,) = tool.json("apis", "list")
    assert api["identifier"] == "https://as.test/admin/v1"
    assert set(api["scopes"]) == set(ADMIN_SCOPES)
    shown = tool.json("clients", "show", created["client_id"])
    assert shown["grant_types"] == ["client_credentials"]
    assert "client_secret" not in shown
    reader = tool.json("admin", "bootstrap", "--scope", "admin:users:read")
    assert reader["scopes"] == ["admin:users:read"]
    text = tool("admin", "bootstrap").stdout
    assert "client_secret: ts_cs_" in text
    assert "shown once" in text
    tool.refused("admin", "bootstrap", "--scope", "docs:read", match="not admin scope.*docs:read")


def test_users_end_sessions(tool: Tool) -> None:
    tool("db", "upgrade")
    tool("users", "create", "--username", "alice", "--password-stdin", input=PASSWORD + "\n")
    assert "ended 0 session(s)" in tool("users", "end-sessions", "alice").stdout
    tool.refused("users", "end-sessions", "alice", "--session", "nope", match="no session nope")
    tool.refused("users", "end-sessions", "nobody", match="no user nobody")
