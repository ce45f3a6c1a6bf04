"""The OpenAPI 3.1 description of the authorization-server endpoints, written by hand.

The handlers read raw query strings and form bodies (``core.params``) instead of FastAPI
parameters, on purpose: a duplicated or malformed parameter is an OAuth ``invalid_request``, never
a 422. So FastAPI cannot describe them, and this module does: every parameter, the form bodies,
the client authentication (``client_secret_basic`` as the Basic scheme, or parameters in the body),
every status code an endpoint answers with and the RFC 6749 §5.2 error body.

:func:`install` replaces ``app.openapi``: a document in which each route that is
``include_in_schema`` gets its operation below, exactly. The description is what
``tests/server/test_fuzz.py`` checks the server against with schemathesis.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from tokensmith.settings import Settings

Operation = dict[str, Any]

#: RFC 6749 §5.2: ``error`` and ``error_description`` are limited to %x20-21 / %x23-5B / %x5D-7E.
ERROR_CHARS = r"^[\x20-\x21\x23-\x5B\x5D-\x7E]*$"
_ERROR_CODE = r"^[\x20-\x21\x23-\x5B\x5D-\x7E]+$"
_SCOPE = r"^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
HTML = "text/html"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


SCHEMAS: dict[str, Any] = {
    "OAuthError": {
        "type": "object",
        "description": "RFC 6749 §5.2 (and RFC 6750 §3.1, RFC 7009 §2.2.1) error response.",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "pattern": _ERROR_CODE},
            "error_description": {"type": "string", "pattern": ERROR_CHARS},
            "error_uri": {"type": "string"},
        },
        "additionalProperties": False,
    },
    "TokenResponse": {
        "type": "object",
        "description": "RFC 6749 §5.1; ``id_token`` with the openid scope (OpenID Connect Core "
        "§3.1.3.3); ``refresh_token`` when the client may refresh.",
        "required": ["access_token", "token_type", "expires_in", "scope"],
        "properties": {
            "access_token": {"type": "string", "minLength": 1},
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer", "minimum": 1},
            "scope": {"type": "string"},
            "refresh_token": {"type": "string", "minLength": 1},
            "id_token": {"type": "string", "minLength": 1},
        },
        "additionalProperties": False,
    },
    "Introspection": {
        "type": "object",
        "description": 'RFC 7662 §2.2: exactly ``{"active": false}`` for a token that is not '
        "active or not the caller's business.",
        "required": ["active"],
        "properties": {
            "active": {"type": "boolean"},
            "scope": {"type": "string"},
            "client_id": {"type": "string"},
            "sub": {"type": "string"},
            "exp": {"type": "integer"},
            "iat": {"type": "integer"},
            "iss": {"type": "string"},
            "aud": {"type": "string"},
            "token_type": {"enum": ["Bearer", "refresh_token"]},
            "jti": {"type": "string"},
        },
        "additionalProperties": False,
    },
    "UserInfo": {
        "type": "object",
        "description": "OpenID Connect Core §5.3.2: claims by scope.",
        "required": ["sub"],
        "properties": {
            "sub": {"type": "string"},
            "name": {"type": "string"},
            "preferred_username": {"type": "string"},
            "updated_at": {"type": "integer"},
            "email": {"type": "string"},
            "email_verified": {"type": "boolean"},
        },
        "additionalProperties": False,
    },
    "Metadata": {
        "type": "object",
        "description": "RFC 8414 §2 / OpenID Connect Discovery 1.0 §3.",
        "required": [
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "response_types_supported",
            "code_challenge_methods_supported",
        ],
        "properties": {
            "issuer": {"type": "string"},
            "authorization_endpoint": {"type": "string"},
            "token_endpoint": {"type": "string"},
            "jwks_uri": {"type": "string"},
            "userinfo_endpoint": {"type": "string"},
            "revocation_endpoint": {"type": "string"},
            "introspection_endpoint": {"type": "string"},
            "end_session_endpoint": {"type": "string"},
            "response_types_supported": {"type": "array", "items": {"type": "string"}},
            "code_challenge_methods_supported": {"const": ["S256"]},
            "grant_types_supported": {"type": "array", "items": {"type": "string"}},
        },
        "additionalProperties": True,
    },
    "JWKS": {
        "type": "object",
        "description": "RFC 7517 §5: the public signing keys (pending, active and retired).",
        "required": ["keys"],
        "properties": {
            "keys": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["kty", "kid", "alg", "use"],
                    "properties": {
                        "kty": {"enum": ["EC", "RSA", "OKP"]},
                        "kid": {"type": "string"},
                        "alg": {"enum": ["ES256", "RS256", "EdDSA"]},
                        "use": {"const": "sig"},
                    },
                    "not": {
                        "anyOf": [{"required": [name]} for name in ("d", "p", "q", "dp", "dq")]
                    },
                },
            }
        },
        "additionalProperties": False,
    },
    "ClientAuthentication": {
        "type": "object",
        "description": "RFC 6749 §2.3.1 ``client_secret_post``, RFC 7523 ``private_key_jwt``, or "
        "``client_id`` alone for public clients. One method per request; "
        "``client_secret_basic`` uses the Authorization header instead.",
        "properties": {
            "client_id": {"type": "string"},
            "client_secret": {"type": "string"},
            "client_assertion_type": {
                "const": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            },
            "client_assertion": {"type": "string"},
        },
    },
}

SECURITY_SCHEMES: dict[str, Any] = {
    "clientSecretBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "RFC 6749 §2.3.1: client id and secret, each form-urlencoded, joined by "
        "':' and Base64-encoded.",
    },
    "bearer": {"type": "http", "scheme": "bearer", "description": "RFC 6750 access token."},
}

# Authenticated by Basic, or by parameters in the body (no security requirement as far as
# OpenAPI can tell; the body schema lists them).
CLIENT_SECURITY: list[dict[str, list[str]]] = [{"clientSecretBasic": []}, {}]

_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": "The challenge (RFC 6749 §5.2 for Basic, RFC 6750 §3 for Bearer).",
        "schema": {"type": "string"},
    }
}
_BEARER_CHALLENGE = {
    "WWW-Authenticate": {
        "required": True,
        "description": "RFC 6750 §3.",
        "schema": {"type": "string", "pattern": '^Bearer realm="tokensmith"'},
    }
}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}}
_LOCATION = {"Location": {"required": True, "schema": {"type": "string", "minLength": 1}}}


def _json_error(description: str, *, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "content": {JSON: {"schema": _ref("OAuthError")}},
    }
    if headers:
        out["headers"] = headers
    return out


def _page(description: str) -> dict[str, Any]:
    return {"description": description, "content": {HTML: {"schema": {"type": "string"}}}}


def _redirect(description: str) -> dict[str, Any]:
    return {"description": description, "headers": _LOCATION}


API_ERRORS: dict[str, Any] = {
    "400": _json_error("invalid_request and the other RFC 6749 §5.2 errors."),
    "401": _json_error("invalid_client: client authentication failed.", headers=_WWW_AUTHENTICATE),
    "413": _json_error("invalid_request: the body is larger than max_form_bytes."),
    "429": _json_error(
        "slow_down: too many requests for this client, or too many failed client "
        "authentications from this address.",
        headers=_RETRY_AFTER,
    ),
    "503": _json_error("temporarily_unavailable: a store is down.", headers=_RETRY_AFTER),
}

PAGE_ERRORS: dict[str, Any] = {
    "400": _page("An error page: the client or redirect URI cannot be trusted."),
    "401": _page("An error page: the client cannot use this endpoint."),
    "403": _page("An error page: the request was refused."),
    "413": _page("An error page: the body is larger than max_form_bytes."),
    "503": _page("An error page: a store is down."),
}

AUTHORIZE_PARAMS: dict[str, Any] = {
    "response_type": _string("RFC 6749 §4.1.1", enum=["code"]),
    "client_id": _string("The registered client."),
    "redirect_uri": _string(
        "Exactly one of the client's registered redirect URIs (any port for a native app's "
        "loopback IP redirect). Optional when the client registered only one."
    ),
    "scope": _string("Space-delimited scopes (RFC 6749 §3.3).", pattern=_SCOPE),
    "state": _string("Opaque value echoed to the client.", maxLength=2048),
    "code_challenge": _string("RFC 7636 §4.2, S256.", pattern="^[A-Za-z0-9_-]{43}$"),
    "code_challenge_method": _string("RFC 7636 §4.3; only S256.", enum=["S256"]),
    "resource": _string("RFC 8707: the API the token is for."),
    "nonce": _string("OpenID Connect Core §3.1.2.1."),
    "prompt": _string(
        "OpenID Connect Core §3.1.2.1.", pattern="^(none|login|consent|select_account)( \\S+)*$"
    ),
    "max_age": _string("Seconds since the last login.", pattern="^[0-9]{1,10}$"),
    "login_hint": _string("OpenID Connect Core §3.1.2.1."),
    "id_token_hint": _string("An ID token this server issued."),
    "response_mode": _string("Only query.", enum=["query"]),
}
AUTHORIZE_REQUIRED = ("response_type", "client_id", "code_challenge", "code_challenge_method")


def _query(properties: dict[str, Any], required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "required": name in required, "schema": schema}
        for name, schema in properties.items()
    ]


def _form(
    properties: dict[str, Any], required: tuple[str, ...] = (), *, client_auth: bool = False
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if client_auth:
        schema = {"allOf": [schema, _ref("ClientAuthentication")]}
    return {"required": True, "content": {FORM: {"schema": schema}}}


def _authorize_get() -> Operation:
    return {
        "operationId": "authorize",
        "summary": "Authorization endpoint (RFC 6749 §4.1.1)",
        "tags": ["oauth"],
        "parameters": _query(AUTHORIZE_PARAMS, AUTHORIZE_REQUIRED),
        "responses": {
            "302": _redirect(
                "To the client's redirect URI (a code, or an error with state and iss), or to "
                "the login or consent page."
            ),
            **{k: v for k, v in PAGE_ERRORS.items() if k != "413"},
        },
    }


def _authorize_post() -> Operation:
    return {
        "operationId": "authorize_post",
        "summary": "Authorization endpoint, form post (OpenID Connect Core §3.1.2.1)",
        "tags": ["oauth"],
        "requestBody": _form(AUTHORIZE_PARAMS, AUTHORIZE_REQUIRED),
        "responses": {
            "303": _redirect("As for GET, with 303."),
            **PAGE_ERRORS,
        },
    }


def _token() -> Operation:
    properties = {
        "grant_type": _string(
            "RFC 6749 §4.1.3, §4.4.2, §6.",
            enum=["authorization_code", "refresh_token", "client_credentials"],
        ),
        "code": _string("The authorization code."),
        "redirect_uri": _string("Required when the authorization request carried one."),
        "code_verifier": _string("RFC 7636 §4.5.", pattern="^[A-Za-z0-9._~-]{43,128}$"),
        "refresh_token": _string("RFC 6749 §6."),
        "scope": _string("A subset of the granted scopes.", pattern=_SCOPE),
        "resource": _string("RFC 8707."),
    }
    return {
        "operationId": "token",
        "summary": "Token endpoint (RFC 6749 §3.2)",
        "tags": ["oauth"],
        "security": CLIENT_SECURITY,
        "requestBody": _form(properties, ("grant_type",), client_auth=True),
        "responses": {
            "200": {
                "description": "Tokens (RFC 6749 §5.1), Cache-Control: no-store.",
                "content": {JSON: {"schema": _ref("TokenResponse")}},
            },
            **API_ERRORS,
        },
    }


def _token_get() -> Operation:
    return {
        "operationId": "token_get",
        "summary": "Refused: codes and credentials never travel in a URL",
        "tags": ["oauth"],
        "responses": {
            "405": _json_error("invalid_request", headers={"Allow": {"schema": {"const": "POST"}}}),
        },
    }


_TOKEN_PARAM = _string("The token.", maxLength=16384)


def _revoke() -> Operation:
    return {
        "operationId": "revoke",
        "summary": "Token revocation (RFC 7009)",
        "tags": ["oauth"],
        "security": CLIENT_SECURITY,
        "requestBody": _form(
            {
                "token": _TOKEN_PARAM,
                "token_type_hint": _string("RFC 7009 §2.1", enum=["access_token", "refresh_token"]),
            },
            ("token",),
            client_auth=True,
        ),
        "responses": {
            "200": {"description": "Revoked, or unknown (RFC 7009 §2.2): an empty body."},
            **API_ERRORS,
        },
    }


def _introspect() -> Operation:
    return {
        "operationId": "introspect",
        "summary": "Token introspection (RFC 7662), for confidential clients",
        "tags": ["oauth"],
        "security": CLIENT_SECURITY,
        "requestBody": _form(
            {
                "token": _TOKEN_PARAM,
                "token_type_hint": _string("RFC 7662 §2.1: a hint, ignored."),
            },
            ("token",),
            client_auth=True,
        ),
        "responses": {
            "200": {
                "description": "RFC 7662 §2.2.",
                "content": {JSON: {"schema": _ref("Introspection")}},
            },
            **API_ERRORS,
        },
    }


def _userinfo(method: str) -> Operation:
    operation: Operation = {
        "operationId": f"userinfo_{method}",
        "summary": "UserInfo (OpenID Connect Core §5.3), RFC 6750 bearer token",
        "tags": ["openid"],
        "security": [{"bearer": []}] if method == "get" else [{"bearer": []}, {}],
        "responses": {
            "200": {
                "description": "The user's claims.",
                "content": {JSON: {"schema": _ref("UserInfo")}},
            },
            "400": _json_error("invalid_request", headers=_BEARER_CHALLENGE),
            "401": {
                "description": "invalid_token; or, when the request carried no token at all, "
                'a bare challenge (`WWW-Authenticate: Bearer realm="tokensmith"`) with no body '
                "(RFC 6750 §3.1).",
                "headers": _BEARER_CHALLENGE,
                "content": {JSON: {"schema": _ref("OAuthError")}},
            },
            "403": _json_error("insufficient_scope: no openid scope.", headers=_BEARER_CHALLENGE),
            "413": _json_error(
                "the body is larger than max_form_bytes.", headers=_BEARER_CHALLENGE
            ),
            "503": _json_error("temporarily_unavailable: a store is down.", headers=_RETRY_AFTER),
        },
    }
    if method == "post":
        operation["requestBody"] = {
            "required": False,
            "content": {
                FORM: {
                    "schema": {
                        "type": "object",
                        "properties": {"access_token": _string("RFC 6750 §2.2")},
                    }
                }
            },
        }
    return operation


def _metadata(operation_id: str, summary: str) -> Operation:
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["discovery"],
        "responses": {
            "200": {"description": "The metadata.", "content": {JSON: {"schema": _ref("Metadata")}}}
        },
    }


def _jwks() -> Operation:
    return {
        "operationId": "jwks",
        "summary": "The JSON Web Key Set (RFC 7517)",
        "tags": ["discovery"],
        "responses": {
            "200": {"description": "Public keys only.", "content": {JSON: {"schema": _ref("JWKS")}}}
        },
    }


_LOGOUT_PARAMS: dict[str, Any] = {
    "id_token_hint": _string("An ID token this server issued (expired or not)."),
    "client_id": _string("The client, when there is no id_token_hint."),
    "post_logout_redirect_uri": _string("One the client registered, exactly."),
    "state": _string("Echoed to post_logout_redirect_uri."),
}


def _logout_get() -> Operation:
    return {
        "operationId": "logout",
        "summary": "RP-Initiated Logout 1.0 (end_session_endpoint)",
        "tags": ["openid"],
        "parameters": _query(_LOGOUT_PARAMS),
        "responses": {
            "200": _page("Signed out, or a confirmation page (no id_token_hint)."),
            "302": _redirect("To the post_logout_redirect_uri."),
            **{k: v for k, v in PAGE_ERRORS.items() if k != "413"},
        },
    }


def _logout_post() -> Operation:
    properties = {k: v for k, v in _LOGOUT_PARAMS.items() if k != "id_token_hint"}
    properties["csrf_token"] = _string("From the confirmation page.")
    return {
        "operationId": "logout_confirm",
        "summary": "Confirm logout (the form of the confirmation page)",
        "tags": ["openid"],
        "requestBody": _form(properties, ("csrf_token",)),
        "responses": {
            "200": _page("Signed out."),
            "303": _redirect("To the post_logout_redirect_uri."),
            **PAGE_ERRORS,
        },
    }


def operations(settings: Settings) -> dict[str, dict[str, Operation]]:
    """Path -> method -> operation, for the paths configured in ``settings``."""
    s = settings
    return {
        s.authorize_path: {"get": _authorize_get(), "post": _authorize_post()},
        s.token_path: {"post": _token(), "get": _token_get()},
        s.revoke_path: {"post": _revoke()},
        s.introspect_path: {"post": _introspect()},
        s.userinfo_path: {"get": _userinfo("get"), "post": _userinfo("post")},
        "/.well-known/oauth-authorization-server": {
            "get": _metadata("oauth_metadata", "Authorization server metadata (RFC 8414)")
        },
        "/.well-known/openid-configuration": {
            "get": _metadata("openid_configuration", "OpenID Provider metadata (Discovery 1.0)")
        },
        s.jwks_path: {"get": _jwks()},
        s.logout_path: {"get": _logout_get(), "post": _logout_post()},
    }


def install(app: FastAPI, settings: Settings) -> None:
    """Make ``app.openapi()`` describe the routes that are ``include_in_schema`` with the
    operations of this module (FastAPI's generator cannot: the handlers take the raw request,
    and a route serving two methods would get one operation id twice)."""
    described = operations(settings)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        paths: dict[str, dict[str, Operation]] = {}
        for route in app.routes:
            if not isinstance(route, APIRoute) or not route.include_in_schema:
                continue
            for method in sorted(route.methods or ()):
                operation = described.get(route.path, {}).get(method.lower())
                if operation is None:
                    raise LookupError(f"{method} {route.path} is in the schema but not described")
                paths.setdefault(route.path, {})[method.lower()] = operation
        app.openapi_schema = {
            "openapi": "3.1.0",
            "info": {
                "title": app.title,
                "version": app.version,
                "description": "The OAuth 2.1 / OpenID Connect endpoints of a tokensmith "
                "server. Parameters are form-urlencoded or in the query; a parameter sent twice "
                "is invalid_request; error bodies follow RFC 6749 §5.2.",
            },
            "servers": [{"url": settings.issuer}],
            "paths": paths,
            "components": {"schemas": SCHEMAS, "securitySchemes": SECURITY_SCHEMES},
        }
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
