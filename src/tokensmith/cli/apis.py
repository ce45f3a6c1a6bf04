"""``tokensmith apis``: APIs (resource servers) and their scopes."""

from __future__ import annotations

from typing import Annotated

import typer

from tokensmith.admin.views import api_json
from tokensmith.cli.app import JsonOpt, emit, group, table, with_admin

app = group("APIs (resource servers) and their scopes.")


@app.command("create")
def apis_create(
    identifier: Annotated[str, typer.Option(help="The API's identifier URI (the token aud).")],
    scope: Annotated[
        list[str], typer.Option(help="A scope the API defines; NAME or NAME=description.")
    ],
    name: Annotated[str | None, typer.Option(help="A display name.")] = None,
    dynamic_clients: Annotated[
        bool,
        typer.Option(
            "--dynamic-clients",
            help="Open the API to dynamic clients: those registered at run time (RFC 7591) "
            "or known by a Client ID Metadata Document (MCP clients).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Register an API (resource server) and its scopes."""
    names = [s.split("=", 1)[0] for s in scope]
    descriptions = {s.split("=", 1)[0]: s.split("=", 1)[1] for s in scope if "=" in s}
    api = with_admin(
        lambda a: a.create_api(
            identifier=identifier,
            scopes=names,
            name=name,
            descriptions=descriptions,
            dynamic_clients=dynamic_clients,
        )
    )
    emit(api_json(api), as_json=as_json, text=f"created API {api.identifier}")


@app.command("list")
def apis_list(as_json: JsonOpt = False) -> None:
    """List the registered APIs."""
    apis = with_admin(lambda a: a.list_apis())
    text = table(
        ("identifier", "name", "scopes", "dynamic clients"),
        [
            (a.identifier, a.name, " ".join(a.scopes), "yes" if a.dynamic_clients else "no")
            for a in apis
        ],
        empty="no APIs",
    )
    emit([api_json(a) for a in apis], as_json=as_json, text=text)


@app.command("delete")
def apis_delete(
    identifier: str,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also remove the API (and the scopes only it defined) from the clients that use "
            "it; without it, an API in use is not deleted.",
        ),
    ] = False,
) -> None:
    """Remove an API. Refused while clients use it (they are listed) unless --force."""
    changed = with_admin(lambda a: a.delete_api(identifier, force=force))
    typer.echo(f"deleted API {identifier}")
    if changed:
        typer.echo(f"removed it from client(s): {', '.join(changed)}")
