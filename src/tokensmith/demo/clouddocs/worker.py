"""CloudDocs worker: a machine client (client credentials grant, RFC 6749 §4.4).

It gets an access token for the ``docs:admin`` scope with its own credentials - no user involved -
and prints the admin listing of every user's documents.

Run it against ``tokensmith demo`` (which prints this command)::

    python -m tokensmith.demo.clouddocs.worker tokensmith-demo/demo.json

or give ``CLOUDDOCS_ISSUER``, ``CLOUDDOCS_API_URL``, ``CLOUDDOCS_WORKER_ID`` and
``CLOUDDOCS_WORKER_SECRET`` in the environment and no argument.
"""

import asyncio
import json
import os
import sys
from typing import Any

import httpx

__all__ = ["fetch_all_documents", "worker_token"]


async def worker_token(
    http: httpx.AsyncClient, *, issuer: str, client_id: str, client_secret: str
) -> str:
    """A ``docs:admin`` access token for the worker (endpoint from the server's metadata)."""
    metadata = (await http.get(f"{issuer}/.well-known/oauth-authorization-server")).json()
    if metadata.get("issuer") != issuer:
        raise RuntimeError(f"{issuer} does not describe itself as {issuer}")
    response = await http.post(
        metadata["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": "docs:admin"},
        auth=(client_id, client_secret),
    )
    if response.status_code != 200:
        raise RuntimeError(f"token request refused: {response.status_code} {response.text}")
    return str(response.json()["access_token"])


async def fetch_all_documents(
    *, issuer: str, api_url: str, client_id: str, client_secret: str
) -> list[dict[str, Any]]:
    """Every user's documents, from the API's admin listing."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as http:
        token = await worker_token(
            http, issuer=issuer, client_id=client_id, client_secret=client_secret
        )
        response = await http.get(
            f"{api_url}/admin/documents", headers={"Authorization": f"Bearer {token}"}
        )
        response.raise_for_status()
        documents: list[dict[str, Any]] = response.json()
        return documents


def main(argv: list[str]) -> int:
    if argv:
        with open(argv[0], encoding="utf-8") as fh:
            demo = json.load(fh)
        settings = {
            "issuer": demo["issuer"],
            "api_url": demo["api"],
            "client_id": demo["worker_client_id"],
            "client_secret": demo["worker_client_secret"],
        }
    else:
        settings = {
            "issuer": os.environ["CLOUDDOCS_ISSUER"],
            "api_url": os.environ["CLOUDDOCS_API_URL"],
            "client_id": os.environ["CLOUDDOCS_WORKER_ID"],
            "client_secret": os.environ["CLOUDDOCS_WORKER_SECRET"],
        }
    try:
        documents = asyncio.run(fetch_all_documents(**settings))
    except (httpx.HTTPError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(documents)} document(s) in CloudDocs:")
    for doc in documents:
        print(f"  {doc['updated_at'][:19]}  owner {doc['owner'][:12]:12}  {doc['title']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
