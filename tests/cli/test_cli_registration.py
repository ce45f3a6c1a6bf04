"""``tokensmith registration token create|list|revoke``: initial access tokens for dynamic client
registration, shown once, stored as a digest, listed and revoked by id."""

from __future__ import annotations

from tests.support.cli import Cli


def test_registration_tokens_create_list_revoke(cli: Cli) -> None:
    made = cli.json("registration", "token", "create", "--expires", "12h", "--uses", "3")
    assert made["token"].startswith("ts_iat_")
    assert made["uses_left"] == 3
    plain = cli("registration", "token", "create", "--note", "ci").stdout.strip()
    assert plain.startswith("ts_iat_")
    listed = cli.json("registration", "token", "list")
    assert [t["uses_left"] for t in listed] == [3, None]
    assert listed[0]["expires_at"] - listed[0]["created_at"] == 12 * 3600
    text = cli("registration", "token", "list").stdout
    assert made["id"] in text
    assert "ci" in text
    assert made["token"] not in text
    cli.refused("registration", "token", "revoke", "short", match="at least 8")
    cli.refused("registration", "token", "revoke", "ffffffffffff0000", match="no initial")
    cli("registration", "token", "revoke", made["id"])
    assert [t["note"] for t in cli.json("registration", "token", "list")] == ["ci"]
    bad = cli("registration", "token", "create", "--expires", "soon", ok=False)
    assert bad.exit_code == 2
    cli.refused("registration", "token", "create", "--expires", "10", match="60 seconds")
