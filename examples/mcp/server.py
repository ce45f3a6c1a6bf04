"""An MCP server protected by tokensmith (docs/mcp.md).

    python examples/mcp/server.py --issuer http://127.0.0.1:9000 --port 9004

serves the MCP endpoint at http://127.0.0.1:9004/mcp (Streamable HTTP, the official Python MCP
SDK) with one tool, ``whoami``. Every request needs an access token from ``--issuer`` whose
audience is the endpoint's URL (register an API with that identifier and the scope ``mcp:tools``)
and whose scopes include ``mcp:tools``. Clients find out how to get one from the RFC 9728
metadata at /.well-known/oauth-protected-resource/mcp.

The code lives in the package (``tokensmith.demo.mcp_server``) so that ``tokensmith demo`` can
start it from an installed wheel; it needs ``pip install 'tokensmith[mcp]'``.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from tokensmith.demo.mcp_server import (
    MCP_INSTALL_HINT,
    McpServerConfig,
    create_mcp_server,
    mcp_available,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="An MCP server protected by tokensmith.")
    parser.add_argument("--issuer", required=True, help="the tokensmith authorization server")
    parser.add_argument("--port", type=int, default=9004)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--url",
        help="the MCP endpoint's public URL, the tokens' audience (default: http://HOST:PORT/mcp)",
    )
    args = parser.parse_args(argv)
    if not mcp_available():
        print(f"The MCP server needs the MCP SDK: {MCP_INSTALL_HINT}", file=sys.stderr)
        return 1
    url = args.url or f"http://{args.host}:{args.port}/mcp"
    try:
        app = create_mcp_server(McpServerConfig(issuer=args.issuer, url=url, host=args.host))
    except ValueError as exc:  # e.g. an http URL off loopback: give --url https://...
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"MCP server: {url} (metadata, a page for people: http://{args.host}:{args.port}/)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
