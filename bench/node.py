"""node-oidc-provider (npm ``oidc-provider``) for the comparison, installed by the bench itself
into ``bench/node/node_modules`` (git-ignored, never committed)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from bench.common import BENCH, Server, free_port
from bench.seed import basic

NODE_DIR = BENCH / "node"
PACKAGE = "oidc-provider@9"
CLIENT_ID = "bench-cc"
CLIENT_SECRET = "bench-cc-secret-0123456789abcdef"
AUTH = basic(CLIENT_ID, CLIENT_SECRET)
RESOURCES = {
    "JWT ES256": "https%3A%2F%2Fapi.bench%2Fes256",
    "JWT EdDSA": "https%3A%2F%2Fapi.bench%2Feddsa",
    "opaque": "https%3A%2F%2Fapi.bench%2Fopaque",
}


def install() -> Path | None:
    """``npm install`` oidc-provider once; None (with a message) when node or npm is missing."""
    if not shutil.which("node") or not shutil.which("npm"):
        print("node and npm are needed for node-oidc-provider: those scenarios are skipped")
        return None
    if not (NODE_DIR / "node_modules" / "oidc-provider").exists():
        print(f"installing {PACKAGE} with npm into {NODE_DIR}/node_modules ...", flush=True)
        options = ["--no-package-lock", "--no-save", "--no-audit", "--no-fund"]
        command = ["npm", "install", *options, "--prefix", str(NODE_DIR), PACKAGE]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return NODE_DIR


def server(node_dir: Path) -> Server:
    port = free_port()
    return Server(
        "node",
        port,
        ["node", "server.mjs", str(port), CLIENT_ID, CLIENT_SECRET],
        env={"NODE_ENV": "production"},
        cwd=str(node_dir),
        health="/.well-known/openid-configuration",
    )


def version() -> str | None:
    path = NODE_DIR / "node_modules" / "oidc-provider" / "package.json"
    if not path.exists():
        return None
    data: dict[str, str] = json.loads(path.read_text())
    return data["version"]


def node_version() -> str | None:
    if not shutil.which("node"):
        return None
    out = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or None
