"""Request parameters: one value per name, UTF-8, bounded.

RFC 6749 §3.1 and §3.2: parameters must not be included more than once, and a parameter sent
without a value is treated as omitted. Bodies of the token, revocation and introspection endpoints
are ``application/x-www-form-urlencoded`` (RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1).
"""

from __future__ import annotations

from urllib.parse import unquote

from tokensmith.core.errors import InvalidRequest

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MAX_PARAMS = 64


def check_form_content_type(content_type: str | None) -> None:
    """Raise ``invalid_request`` unless the media type is ``application/x-www-form-urlencoded``."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != FORM_CONTENT_TYPE:
        raise InvalidRequest(f"the request body must be {FORM_CONTENT_TYPE}")


def parse_params(raw: bytes | str, *, max_value_length: int = 4096) -> dict[str, str]:
    """Parse a query string or form body into single-valued parameters.

    Raises ``invalid_request`` for a repeated name, bytes that are not UTF-8, a NUL or other
    control character, more than ``MAX_PARAMS`` fields, or a value longer than
    ``max_value_length``. Empty values are dropped (RFC 6749 §3.1).
    """
    params, duplicates = parse_query(raw, max_value_length=max_value_length)
    if duplicates:
        name = sorted(duplicates)[0]
        raise InvalidRequest(f"parameter '{printable(name)}' was sent more than once")
    return params


def parse_query(
    raw: bytes | str, *, max_value_length: int = 4096
) -> tuple[dict[str, str], frozenset[str]]:
    """Like ``parse_params`` but returns the repeated names instead of raising, so that the
    authorization endpoint can first decide whether the client's redirect URI is trustworthy."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidRequest("the parameters must be URL-encoded ASCII") from None
    else:
        text = raw
    if text.count("&") >= MAX_PARAMS:
        raise InvalidRequest(f"too many parameters (at most {MAX_PARAMS})")
    try:
        pairs = _pairs(text)
    except UnicodeDecodeError:
        raise InvalidRequest("the parameters must be UTF-8") from None
    params: dict[str, str] = {}
    seen: set[str] = set()
    duplicates: set[str] = set()
    for name, value in pairs:
        if name in seen:
            duplicates.add(name)
            continue
        seen.add(name)
        if len(value) > max_value_length or len(name) > 128:
            raise InvalidRequest(f"parameter '{printable(name)}' is too long")
        if not value.isprintable() or not name.isprintable():
            raise InvalidRequest(f"parameter '{printable(name)}' holds control characters")
        if value:
            params[name] = value
    return params, frozenset(duplicates)


def _pairs(text: str) -> list[tuple[str, str]]:
    """``parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")``: fields
    split on ``&``, empty ones skipped, a field without ``=`` is a name with an empty value,
    ``+`` is a space, percent-escapes are UTF-8 (``UnicodeDecodeError`` otherwise). A part with
    no ``+`` and no ``%`` is taken as it is, without the two calls per part ``parse_qsl``
    makes (the token endpoint parses a form on every request)."""
    pairs: list[tuple[str, str]] = []
    for field in text.split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        if "+" in name:
            name = name.replace("+", " ")
        if "%" in name:
            name = unquote(name, errors="strict")
        if "+" in value:
            value = value.replace("+", " ")
        if "%" in value:
            value = unquote(value, errors="strict")
        pairs.append((name, value))
    return pairs


def printable(name: str) -> str:
    """``name`` fit for an ``error_description``: RFC 6749 §5.2 allows only %x20-21 / %x23-5B /
    %x5D-7E, so anything else (non-ASCII, ``"``, ``\\``, controls) becomes ``?``."""
    return "".join(ch if " " <= ch <= "~" and ch not in '"\\' else "?" for ch in name[:40])
