"""The ``tokensmith`` CLI (issue 2): every command works, settings come from ``TOKENSMITH_*``
variables, and bad arguments give a one-line error and a non-zero exit, never a traceback.

Most cases run in-process through Typer's ``CliRunner`` (fast); a few run the installed console
script in a subprocess, which is what scripts and the interop tests use.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.harness import ServerEnv
from tests.support.cli import Cli, cli_env
from tests.support.database import forget_keys

PASSWORD = "correct horse battery"


# -- every command -----------------------------------------------------------------------------


def test_db_upgrade(cli: Cli) -> None:
    assert "up to date" in cli("db", "upgrade").stdout
    assert "up to date" in cli("db", "upgrade").stdout  # idempotent


def test_db_upgrade_creates_a_fresh_sqlite_file(tmp_path: Path) -> None:
    cli = Cli(f"sqlite+aiosqlite:///{tmp_path / 'sub' / 'fresh.db'}")
    cli("db", "upgrade")
    assert (tmp_path / "sub" / "fresh.db").exists()
    assert cli.json("apis", "list") == []


def test_apis_create_list_delete(cli: Cli) -> None:
    api = cli.json(
        "apis",
        "create",
        "--identifier",
        "https://api.cli.test",
        "--scope",
        "docs:read=Read your documents",
        "--scope",
        "docs:write",
        "--name",
        "CLI API",
    )
    assert api["identifier"] == "https://api.cli.test"
    assert api["scopes"] == ["docs:read", "docs:write"]
    assert api["descriptions"] == {"docs:read": "Read your documents"}
    assert [a["identifier"] for a in cli.json("apis", "list")] == ["https://api.cli.test"]
    assert "https://api.cli.test" in cli("apis", "list").stdout
    cli("apis", "delete", "https://api.cli.test")
    assert cli.json("apis", "list") == []
    cli.refused("apis", "delete", "https://api.cli.test", match="no API")


def test_apis_create_dynamic_clients_flag_is_stored_and_shown(cli: Cli) -> None:
    closed = cli.json("apis", "create", "--identifier", "https://closed.test", "--scope", "x")
    assert closed["dynamic_clients"] is False
    opened = cli.json(
        "apis",
        "create",
        "--identifier",
        "https://mcp.test/mcp",
        "--scope",
        "x",
        "--dynamic-clients",
    )
    assert opened["dynamic_clients"] is True
    listed = {a["identifier"]: a["dynamic_clients"] for a in cli.json("apis", "list")}
    assert listed == {"https://closed.test": False, "https://mcp.test/mcp": True}
    rows = [line.split() for line in cli("apis", "list").stdout.splitlines()]
    assert ["https://mcp.test/mcp", "https://mcp.test/mcp", "x", "yes"] in rows


def test_clients_create_list_show_rotate_delete(cli: Cli) -> None:
    cli("apis", "create", "--identifier", "https://api.cli.test", "--scope", "docs:read")
    created = cli.json(
        "clients",
        "create",
        "--name",
        "CLI web app",
        "--redirect-uri",
        "https://rp.test/cb",
        "--redirect-uri",
        "https://rp.test/cb2",
        "--grant",
        "authorization_code",
        "--scope",
        "docs:read",
        "--api",
        "https://api.cli.test",
        "--first-party",
    )
    client_id = created["client_id"]
    secret = created["client_secret"]
    assert client_id.startswith("ts_ci_")
    assert secret.startswith("ts_cs_")
    assert created["redirect_uris"] == ["https://rp.test/cb", "https://rp.test/cb2"]
    assert created["first_party"] is True
    assert created["type"] == "confidential"
    shown = cli.json("clients", "show", client_id)
    assert shown["client_id"] == client_id
    assert "client_secret" not in shown
    assert secret not in cli("clients", "show", client_id).stdout
    listed = cli.json("clients", "list")
    assert [c["client_id"] for c in listed] == [client_id]
    assert secret not in json.dumps(listed)
    rotated = cli.json("clients", "rotate-secret", client_id)
    assert rotated["client_id"] == client_id
    assert rotated["client_secret"].startswith("ts_cs_")
    assert rotated["client_secret"] != secret
    cli("clients", "delete", client_id)
    assert cli.json("clients", "list") == []
    cli.refused("clients", "show", client_id, match="no client")
    cli.refused("clients", "delete", client_id, match="no client")
    cli.refused("clients", "rotate-secret", client_id, match="no client")


def test_clients_create_api_is_repeatable_and_the_first_is_the_default(cli: Cli) -> None:
    for identifier, scope in (("urn:a", "docs:read"), ("urn:b", "mail:send"), ("urn:c", "x")):
        cli("apis", "create", "--identifier", identifier, "--scope", scope)
    created = cli.json(
        "clients",
        "create",
        "--name",
        "Worker",
        "--grant",
        "client_credentials",
        "--scope",
        "docs:read",
        "--scope",
        "mail:send",
        "--api",
        "urn:a",
        "--api",
        "urn:b",
    )
    assert (created["apis"], created["default_api"]) == (["urn:a", "urn:b"], "urn:a")
    client_id = created["client_id"]
    assert cli.json("clients", "show", client_id)["apis"] == ["urn:a", "urn:b"]
    assert re.search(r"^APIs: +urn:a urn:b$", cli("clients", "show", client_id).stdout, re.M)
    assert [c["apis"] for c in cli.json("clients", "list")] == [["urn:a", "urn:b"]]
    assert "urn:a urn:b" in cli("clients", "list").stdout
    # a scope must be defined by one of the client's APIs
    cli.refused(
        "clients", "create", "--name", "W", "--grant", "client_credentials", "--scope", "x",
        "--api", "urn:a", match="not defined by urn:a",
    )  # fmt: skip


def test_clients_create_text_output_shows_secret_once(sqlite_cli: Cli) -> None:
    out = sqlite_cli("clients", "create", "--name", "Text", "--redirect-uri", "https://rp.test/cb")
    assert re.search(r"client_id: ts_ci_\S+", out.stdout)
    assert re.search(r"client_secret: ts_cs_\S+", out.stdout)
    assert "shown once" in out.stdout


def test_public_native_client(sqlite_cli: Cli) -> None:
    created = sqlite_cli.json(
        "clients",
        "create",
        "--name",
        "Desktop",
        "--type",
        "public",
        "--native",
        "--redirect-uri",
        "http://127.0.0.1/cb",
        "--redirect-uri",
        "com.example.app:/cb",
    )
    assert created["client_secret"] is None
    assert created["native"] is True
    assert created["token_endpoint_auth_method"] == "none"
    sqlite_cli.refused(
        "clients", "rotate-secret", created["client_id"], match="does not authenticate"
    )


def test_users_create_list_disable_set_password(cli: Cli) -> None:
    user = cli.json(
        "users",
        "create",
        "--username",
        "Alice",
        "--password",
        PASSWORD,
        "--email",
        "Alice@Example.com",
        "--name",
        "Alice Liddell",
    )
    assert user["username"] == "alice"
    assert user["email"] == "alice@example.com"
    assert user["disabled"] is False
    assert "password" not in json.dumps(user).lower()
    listed = cli.json("users", "list")
    assert [u["username"] for u in listed] == ["alice"]
    assert "argon2" not in cli("users", "list", "--json").stdout
    cli("users", "disable", "alice@example.com")
    assert cli.json("users", "list")[0]["disabled"] is True
    cli("users", "set-password", "alice", "--password", "a brand new password")
    cli("users", "set-password", user["id"], "--password-stdin", input="another password\n")
    cli.refused("users", "create", "--username", "ALICE", "--password", PASSWORD, match="exists")
    cli.refused("users", "disable", "nobody", match="no user")
    cli.refused("users", "set-password", "nobody", "--password", PASSWORD, match="no user")
    cli.refused("users", "set-password", "alice", "--password", "short", match="at least 15")


def test_keys_list(sqlite_cli: Cli, sqlite_url: str) -> None:
    asyncio.run(forget_keys(sqlite_url))  # a database no server has started on
    assert sqlite_cli.json("keys", "list") == []
    assert "no keys" in sqlite_cli("keys", "list").stdout


async def test_keys_list_after_server_start_and_cli_client_works_over_http(
    server_env: ServerEnv,
) -> None:
    """The CLI and the server share the database (and its pepper): a client created by the CLI
    authenticates at the running server, and the server's key is listed."""
    env = server_env
    cli = Cli(env.settings.database_url)
    keys = await asyncio.to_thread(cli.json, "keys", "list")
    assert "ES256" in {k["alg"] for k in keys}
    jwks = (await env.browser().get("/jwks.json")).json()
    assert {k["kid"] for k in keys} == {k["kid"] for k in jwks["keys"]}
    await asyncio.to_thread(
        cli, "apis", "create", "--identifier", "https://api.cli.test", "--scope", "docs:read"
    )
    created = await asyncio.to_thread(
        cli.json,
        "clients",
        "create",
        "--name",
        "Machine",
        "--grant",
        "client_credentials",
        "--scope",
        "docs:read",
        "--api",
        "https://api.cli.test",
    )
    from tokensmith.core.registration import NewClient

    client = await env.admin.get_client(created["client_id"])
    assert client is not None
    response = await env.token(
        NewClient(client, created["client_secret"]), {"grant_type": "client_credentials"}
    )
    assert response.status_code == 200, response.text
    claims = await env.decode_access_token(
        response.json()["access_token"], audience="https://api.cli.test"
    )
    assert claims["client_id"] == created["client_id"]


# -- refusals: one line on stderr, exit 1 (or 2 for usage errors), no traceback ------------------


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--redirect-uri", "http://rp.test/cb"], "http redirect URIs"),
        (["--redirect-uri", "http://localhost.evil.example/cb"], "http redirect URIs"),
        (["--redirect-uri", "http://127.0.0.1.nip.io/cb"], "http redirect URIs"),
        (["--redirect-uri", "https://rp.test/cb#frag"], "fragment"),
        (["--redirect-uri", "https://rp.test/*"], "wildcard"),
        (["--redirect-uri", "/relative/cb"], "redirect URI"),
        (["--redirect-uri", "myapp:/cb"], "redirect URI"),
        (["--redirect-uri", "https://user@rp.test/cb"], "user information"),
        (["--redirect-uri", "https://rp.test/cb", "--grant", "password"], "password grant"),
        (["--redirect-uri", "https://rp.test/cb", "--grant", "implicit"], "implicit grant"),
        (["--redirect-uri", "https://rp.test/cb", "--grant", "bogus"], "unknown grant"),
        ([], "needs a redirect URI"),
        (["--redirect-uri", "https://rp.test/cb", "--type", "weird"], "--type"),
        (["--redirect-uri", "https://rp.test/cb", "--api", "https://nope.test"], "no API"),
        (["--redirect-uri", "https://rp.test/cb", "--native"], "native apps are public"),
        (["--type", "public", "--grant", "client_credentials"], "public clients"),
        (["--redirect-uri", "https://rp.test/cb", "--scope", "bad scope"], "scope"),
    ],
)
def test_clients_create_refusals(sqlite_cli: Cli, args: list[str], match: str) -> None:
    sqlite_cli.refused("clients", "create", "--name", "Refused", *args, match=match)
    assert sqlite_cli.json("clients", "list") == []


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--identifier", "not a uri", "--scope", "x"], "identifier"),
        (["--identifier", "https://a.test#f", "--scope", "x"], "identifier"),
        (["--identifier", "https://a.test", "--scope", "bad scope"], "scope"),
    ],
)
def test_apis_create_refusals(sqlite_cli: Cli, args: list[str], match: str) -> None:
    sqlite_cli.refused("apis", "create", *args, match=match)


def test_apis_create_duplicate_refused(sqlite_cli: Cli) -> None:
    sqlite_cli("apis", "create", "--identifier", "https://a.test", "--scope", "x")
    sqlite_cli.refused(
        "apis", "create", "--identifier", "https://a.test", "--scope", "x", match="exists"
    )


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--username", "bob", "--password", "short"], "at least 15"),
        (["--username", "bad name", "--password", PASSWORD], "spaces"),
        (["--username", "bob@example.com", "--password", PASSWORD], "@"),
        (["--username", "bob", "--password", PASSWORD, "--email", "nomail"], "e-mail address"),
        (["--username", "bo\u200bb", "--password", PASSWORD], "invisible"),
        # NIST SP 800-63B-4 through the admin service: the shipped blocklist, the own name
        (["--username", "bob", "--password", "1q2w3e4r5t6y7u8i9o0p"], "commonly used"),
        (["--username", "bobbybobbybobby", "--password", "BobbyBobbyBobby"], "username"),
    ],
)
def test_users_create_refusals(sqlite_cli: Cli, args: list[str], match: str) -> None:
    sqlite_cli.refused("users", "create", *args, match=match)
    assert sqlite_cli.json("users", "list") == []


@pytest.mark.parametrize(
    "args",
    [
        ["clients", "create"],  # missing --name
        ["apis", "create", "--identifier", "https://a.test"],  # missing --scope
        ["users", "create", "--password", PASSWORD],  # missing --username
        ["users", "create", "--username", "bob", "--password", "x", "--password-stdin"],
        ["serve", "--port", "70000"],
        ["serve", "--port", "http"],
        ["clients", "frobnicate"],
        ["--no-such-option"],
    ],
)
def test_usage_errors_exit_2_without_traceback(sqlite_cli: Cli, args: list[str]) -> None:
    result = sqlite_cli(*args, ok=False)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize(
    ("database_url", "match"),
    [
        ("foo://", "unsupported database .*use sqlite\\+aiosqlite:///"),
        ("not a url", "not a database URL.*postgresql\\+asyncpg://"),
        ("postgresql://nobody@127.0.0.1:1/x", r"postgresql\+asyncpg://nobody@127\.0\.0\.1:1/x"),
        ("postgresql+asyncpg://nobody@127.0.0.1:1/x", "cannot reach the database"),
        ("sqlite+aiosqlite:////proc/version/x.db", "database"),
    ],
)
def test_bad_database_url_one_line_error(database_url: str, match: str) -> None:
    Cli(database_url).refused("apis", "list", match=match)


def test_database_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not sqlite" * 100)
    Cli(f"sqlite+aiosqlite:///{path}").refused("apis", "list", match="not a database")


@pytest.mark.parametrize(
    ("variable", "value", "match"),
    [
        ("TOKENSMITH_ISSUER", "http://as.example", "issuer"),
        ("TOKENSMITH_ISSUER", "https://as.test/?x=1", "issuer"),
        ("TOKENSMITH_ACCESS_TOKEN_TTL", "forever", "access_token_ttl"),
        ("TOKENSMITH_KEY_ENCRYPTION_KEY", "short", "key-encryption key"),
    ],
)
def test_bad_settings_one_line_error(
    sqlite_url: str, variable: str, value: str, match: str
) -> None:
    Cli(sqlite_url, **{variable: value}).refused("keys", "list", match=match)


# -- the console script itself (what shell scripts run) ------------------------------------------


def run_script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("tokensmith")
    return subprocess.run(
        [str(script), *args],
        # this checkout's code, not whichever one the shared environment installed
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[2] / "src"), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_console_script_json_and_errors(sqlite_url: str) -> None:
    env = cli_env(sqlite_url)
    done = run_script(
        env,
        "clients",
        "create",
        "--name",
        "Script",
        "--redirect-uri",
        "https://rp.test/cb",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["client_secret"].startswith("ts_cs_")
    for args in (
        ("clients", "create", "--name", "Bad", "--redirect-uri", "http://rp.test/cb"),
        (
            "clients",
            "create",
            "--name",
            "Bad",
            "--redirect-uri",
            "https://rp.test/cb",
            "--grant",
            "password",
        ),
        ("clients", "show", "nope"),
    ):
        done = run_script(env, *args)
        assert done.returncode == 1, done
        assert "Traceback" not in done.stderr
        assert done.stderr.startswith("error: ")
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    done = run_script(cli_env("foo://"), "apis", "list")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    done = run_script(env, "clients", "create")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
