"""``server.http``'s response helpers give exactly the responses Starlette's general path gives."""

from __future__ import annotations

import pytest
from starlette.responses import Response

from tokensmith.server.http import NO_STORE, json_response


@pytest.mark.parametrize("status", [200, 400, 401, 404, 429, 503])
def test_json_response_headers_equal_starlettes(status: int) -> None:
    body = {"access_token": "x", "token_type": "Bearer", "ñ": "é"}
    fast = json_response(body, status=status)
    general = Response(
        fast.body, status_code=status, media_type="application/json", headers=NO_STORE
    )
    assert fast.raw_headers == general.raw_headers
    assert (fast.status_code, fast.body, fast.media_type) == (
        status,
        general.body,
        "application/json",
    )
    assert fast.headers["content-length"] == str(len(fast.body))


def test_json_response_with_headers_or_without_a_body_takes_the_general_path() -> None:
    extra = json_response({"error": "slow_down"}, status=429, headers={"Retry-After": "3"})
    assert extra.headers["retry-after"] == "3"
    assert extra.headers["cache-control"] == "no-store"
    empty = json_response({}, status=204)
    assert "content-length" not in empty.headers  # as Starlette: none on a 204
