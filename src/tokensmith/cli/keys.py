"""``tokensmith keys``: signing keys."""

from __future__ import annotations

from typing import Annotated

import typer

from tokensmith.admin.views import key_json
from tokensmith.cli.app import JsonOpt, emit, group, table, when, with_admin

app = group("Signing keys.")


@app.command("list")
def keys_list(as_json: JsonOpt = False) -> None:
    """List the signing keys. What each does now: next (published, not yet signing), signing,
    retiring (no longer signing, still published so its tokens verify) or retired (no longer
    published; keys prune removes it). Times are UTC."""
    keys = with_admin(lambda a: a.key_states())
    text = table(
        ("kid", "alg", "state", "published", "signs from", "stops signing", "unpublished"),
        [
            (
                k.key.kid,
                k.key.alg,
                k.state,
                when(k.key.created_at),
                when(k.key.activates_at),
                when(k.key.retired_at),
                when(k.key.expires_at),
            )
            for k in keys
        ],
        empty="no keys (they are created when the server starts)",
    )
    emit([key_json(k.key, k.state) for k in keys], as_json=as_json, text=text)


@app.command("rotate")
def keys_rotate(
    alg: Annotated[
        str | None, typer.Option(help="ES256, EdDSA or RS256 (default: signing_alg).")
    ] = None,
    publish_ahead: Annotated[
        int | None,
        typer.Option(help="Seconds before the new key signs (default: key_publish_ahead).", min=0),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a signing key. Published at once, signing after the publish-ahead delay; the key it
    replaces stops signing then and stays published until its tokens have expired."""
    key = with_admin(lambda a: a.rotate_key(alg, publish_ahead=publish_ahead))
    emit(
        key_json(key),
        as_json=as_json,
        text=f"new key {key.kid} ({key.alg}): published now, signs from {when(key.activates_at)}",
    )


@app.command("prune")
def keys_prune() -> None:
    """Remove retired keys whose tokens have all expired."""
    count = with_admin(lambda a: a.prune_keys())
    typer.echo(f"removed {count} expired key(s)")
