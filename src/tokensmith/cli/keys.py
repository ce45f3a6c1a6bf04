"""``tokensmith keys``: signing keys."""

from __future__ import annotations

from typing import Annotated

import typer

from tokensmith.admin.views import key_json
from tokensmith.cli.app import JsonOpt, emit, with_admin

app = typer.Typer(help="Signing keys.", no_args_is_help=True)


@app.command("list")
def keys_list(as_json: JsonOpt = False) -> None:
    """List the signing keys."""
    keys = with_admin(lambda a: a.list_keys())
    data = [key_json(k) for k in keys]
    text = "\n".join(f"{k.kid}  {k.alg:6}  {'retired' if k.retired_at else 'active'}" for k in keys)
    emit(data, as_json=as_json, text=text or "no keys (they are created when the server starts)")


@app.command("rotate")
def keys_rotate(
    alg: Annotated[
        str | None, typer.Option(help="ES256, EdDSA or RS256 (default: signing_alg).")
    ] = None,
    publish_ahead: Annotated[
        int | None,
        typer.Option(help="Seconds before the new key signs (default: key_publish_ahead).", min=0),
    ] = None,
) -> None:
    """Add a signing key: published at once, signing after the publish-ahead delay."""
    key = with_admin(lambda a: a.rotate_key(alg, publish_ahead=publish_ahead))
    typer.echo(f"new key {key.kid} ({key.alg}) signs from {key.activates_at} (unix time)")


@app.command("prune")
def keys_prune() -> None:
    """Remove retired keys whose tokens have all expired."""
    count = with_admin(lambda a: a.prune_keys())
    typer.echo(f"removed {count} expired key(s)")
