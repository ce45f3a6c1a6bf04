"""Regressions for vulnerabilities found in peers (security checklist §4, V-01..V-62).

Each test targets tokensmith (authorization server, resource toolkit) with the vector of the
peer's bug; items already proved elsewhere are pointed at from ``docs/security.md``.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import tomllib
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.resource.forge import b64url, encode_json, forge
from tests.server.harness import (
    API,
    ServerEnv,
    assert_oauth_error,
    assert_page,
    hidden_fields,
    query_of,
)
from tests.support.private_key_jwt import KeyPair, pkjwt_client, post
from tokensmith.admin import AdminError
from tokensmith.core.clock import FakeClock
from tokensmith.resource import InvalidTokenError
from tokensmith.settings import Settings
from tokensmith.testing import LocalIssuer

from .helpers import assert_no_redirect_to

ROOT = Path(__file__).resolve().parents[2]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def oidc_client(env: ServerEnv, **kwargs: Any) -> Any:
    kwargs.setdefault("scopes", ["openid", "profile", "docs:read"])
    kwargs.setdefault("post_logout_redirect_uris", ["https://rp.test/bye"])
    return await env.client(**kwargs)


async def id_token_of(env: ServerEnv, client: Any, ua: httpx.AsyncClient) -> str:
    if not await env.admin.find_user("alice"):
        await env.user()
    flow = await env.authorize(ua, client, scope="openid", nonce="n-1")
    body = (await env.redeem(client, flow.code, flow.verifier)).json()
    token: str = body["id_token"]
    return token


def public_key_encodings(public: Any) -> dict[str, bytes]:
    """Every encoding of a public key that a confused verifier could use as an HMAC secret."""
    pem = serialization.PublicFormat.SubjectPublicKeyInfo
    out = {
        "pem": public.public_bytes(serialization.Encoding.PEM, pem),
        "der": public.public_bytes(serialization.Encoding.DER, pem),
        "openssh": public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ),
    }
    if isinstance(public, rsa.RSAPublicKey):
        out["pkcs1"] = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
        )
    if isinstance(public, ec.EllipticCurvePublicKey):
        out["x962"] = public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    return out


# -- V-01 / V-05 / V-14 / V-15: HMAC keyed with our public keys -----------------------------------


async def test_v_01_hmac_with_public_key_refused_everywhere(
    env: ServerEnv, rs: httpx.AsyncClient
) -> None:
    client = await oidc_client(env)
    real = await id_token_of(env, client, env.browser())
    claims_id = jwt.decode(real, options={"verify_signature": False})
    web = await env.client(name="Web")
    flow = await env.authorize(env.browser(), web)
    access = (await env.redeem(web, flow.code, flow.verifier)).json()["access_token"]
    claims_at = jwt.decode(access, options={"verify_signature": False}, audience=None)
    jwks = (await env.browser().get("/jwks.json")).json()
    tried = 0
    for jwk in jwks["keys"]:
        public = jwt.PyJWK(jwk).key
        secrets = public_key_encodings(public)
        secrets["jwk"] = json.dumps(jwk).encode()
        for name, secret in secrets.items():
            for alg in ("HS256", "HS384", "HS512"):
                head_at = {"alg": alg, "typ": "at+jwt", "kid": jwk["kid"]}
                at = forge(head_at, claims_at, secret)
                response = await rs.get("/api/read", headers=bearer(at))
                assert response.status_code == 401, (name, alg)
                hint = forge({"alg": alg, "kid": jwk["kid"]}, claims_id, secret)
                start = await env.start_authorize(
                    env.browser(), client, scope="openid", id_token_hint=hint
                )
                assert start.result.get("error") == "invalid_request", (name, alg)
                tried += 1
    assert tried >= 20


# -- V-02 / V-08 / V-61: JWE (zip, PBES2) is never accepted ----------------------------------------


def assert_hint_refused(response: httpx.Response) -> None:
    """An ``id_token_hint`` that is not one of our ID tokens: ``invalid_request`` to the client,
    or (for an oversized one) an error page; never a code, never a 500."""
    if response.status_code == 302:
        assert query_of(response.headers["location"]).get("error") == "invalid_request"
    else:
        assert response.status_code in (400, 413, 414), response.status_code
        assert "location" not in response.headers


def fake_jwe(header: dict[str, Any]) -> str:
    return ".".join([encode_json(header), b64url(b"k" * 32), b64url(b"i" * 12), "A" * 500, "t"])


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "RSA-OAEP", "enc": "A256GCM", "zip": "DEF"},
        {"alg": "PBES2-HS256+A128KW", "enc": "A128GCM", "p2c": 1_000_000_000, "p2s": "c2FsdA"},
        {"alg": "RSA1_5", "enc": "A128CBC-HS256"},
    ],
)
async def test_v_02_jwe_refused_without_decrypting(
    env: ServerEnv, rs: httpx.AsyncClient, header: dict[str, Any]
) -> None:
    token = fake_jwe(header)
    assert (await rs.get("/api/read", headers=bearer(token))).status_code == 401
    client = await oidc_client(env)
    start = await env.start_authorize(env.browser(), client, scope="openid", id_token_hint=token)
    assert_hint_refused(start.response)
    keys = KeyPair()
    await pkjwt_client(env, keys)
    assert_oauth_error(await post(env, token), "invalid_client", status=401)


# -- V-03: constant-time comparisons --------------------------------------------------------------

SECRET_WORDS = ("secret", "digest", "csrf", "verifier", "challenge", "signature", "mac", "state")


def _names(node: ast.AST) -> list[str]:
    found = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.append(sub.id)
        elif isinstance(sub, ast.Attribute):
            found.append(sub.attr)
    return found


def test_v_03_secrets_compared_in_constant_time() -> None:
    """No ``==``/``!=`` between values named like secrets anywhere in ``src/tokensmith``; they
    go through ``hmac.compare_digest`` (``tokensmith.core.secrets.equals``). Database lookups by
    digest are fine: the digest is an HMAC under the pepper, so its timing reveals nothing."""
    offenders = []
    for path in (ROOT / "src" / "tokensmith").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            if not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                continue
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) for o in operands):
                continue  # comparing with a literal (an algorithm name, None, ...) is no secret
            names = [n.lower() for o in operands for n in _names(o)]
            if "c" in names:
                continue  # an SQL lookup by HMAC digest (``table.c.digest == ...``) leaks nothing
            if all(any(word in n for word in SECRET_WORDS) for n in names[:1]) and any(
                any(word in n for word in SECRET_WORDS) for n in names[1:]
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_v_04_python_jose_is_not_a_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = " ".join(project["dependencies"]).lower()
    assert "python-jose" not in declared
    assert "jose" not in declared.replace("joserfc", "")
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("python-jose")


# -- V-06 / V-17 / V-07 / V-09: JOSE headers on client assertions and id_token_hint ---------------


async def test_v_06_unknown_crit_refused_in_client_assertion(env: ServerEnv) -> None:
    keys = KeyPair()
    client = await pkjwt_client(env, keys)
    cid = client.client.client_id
    claims = {"iss": cid, "sub": cid, "aud": env.settings.issuer, "exp": int(env.clock()) + 60}
    for crit in (["exp_ext"], ["kid"], ["absent"], []):
        header = {"alg": "ES256", "kid": "client-key-1", "crit": crit, "exp_ext": 1}
        assertion = forge(header, {**claims, "jti": str(uuid.uuid4())}, keys.private)
        assert_oauth_error(await post(env, assertion), "invalid_client", status=401)
    good = forge({"alg": "ES256", "kid": "client-key-1"}, {**claims, "jti": "j"}, keys.private)
    assert (await post(env, good)).status_code == 200


async def test_v_07_oversized_jws_segments_refused_cleanly(
    env: ServerEnv, rs: httpx.AsyncClient
) -> None:
    huge = encode_json({"alg": "ES256", "pad": "x" * 1_000_000}) + ".e30.sig"
    assert (await rs.get("/api/read", headers=bearer(huge))).status_code in (401, 431)
    client = await oidc_client(env)
    params, _ = env.authorize_params(client, scope="openid", id_token_hint=huge)
    assert_hint_refused(await env.browser().post("/authorize", data=params))
    await pkjwt_client(env, KeyPair())
    response = await post(env, huge)
    assert response.status_code in (400, 401, 413)


async def test_v_09_embedded_keys_never_trusted(env: ServerEnv, rs: httpx.AsyncClient) -> None:
    attacker = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(attacker.public_key()))
    client = await oidc_client(env)
    claims_id = jwt.decode(
        await id_token_of(env, client, env.browser()), options={"verify_signature": False}
    )
    keys = KeyPair()
    pk = await pkjwt_client(env, keys)
    cid = pk.client.client_id
    assertion_claims = {"iss": cid, "sub": cid, "aud": env.settings.issuer, "exp": 0}
    for extra in (
        {"jwk": jwk},
        {"jku": "https://evil.example/jwks"},
        {"x5u": "https://evil.example/cert"},
    ):
        header = {"alg": "ES256", **extra}
        at = forge({**header, "typ": "at+jwt"}, {"iss": env.settings.issuer, "sub": "x"}, attacker)
        assert (await rs.get("/api/read", headers=bearer(at))).status_code == 401
        hint = forge(header, claims_id, attacker)
        start = await env.start_authorize(env.browser(), client, scope="openid", id_token_hint=hint)
        assert start.result.get("error") == "invalid_request"
        assertion_claims.update(exp=int(env.clock()) + 60, jti=str(uuid.uuid4()))
        assertion = forge({**header, "kid": "client-key-1"}, assertion_claims, attacker)
        assert_oauth_error(await post(env, assertion), "invalid_client", status=401)


# -- V-13 / V-16: iss and sub compared as exact strings at the resource server -------------------


@pytest.fixture
async def local_rs(
    tokensmith_issuer: LocalIssuer, clock: FakeClock
) -> Any:  # (validator, issuer, header, claims)
    tokensmith_issuer.clock = clock
    async with httpx.AsyncClient() as http:
        validator = tokensmith_issuer.validator(http, clock=clock)
        key = tokensmith_issuer.current_key
        header = {"alg": key.alg, "typ": "at+jwt", "kid": key.kid}
        yield validator, tokensmith_issuer, header


async def test_v_13_list_valued_iss_or_sub_refused(local_rs: Any) -> None:
    validator, issuer, header = local_rs
    key = issuer.current_key.private_key
    good = issuer.claims(sub="alice", scopes=["docs:read"])
    await validator.validate(forge(header, good, key))
    for bad in (
        {"iss": ["https://evil.example", good["iss"]]},
        {"iss": [good["iss"]]},
        {"sub": ["alice"]},
        {"client_id": [good["client_id"]]},
    ):
        with pytest.raises(InvalidTokenError):
            await validator.validate(forge(header, {**good, **bad}, key))


async def test_v_16_iss_prefix_superstring_slash_case_refused(local_rs: Any) -> None:
    validator, issuer, header = local_rs
    key = issuer.current_key.private_key
    good = issuer.claims(sub="alice", scopes=["docs:read"])
    iss: str = good["iss"]
    for bad in (iss[:-3], iss + ".evil", iss + "/", iss.upper(), " " + iss, iss + "\x00"):
        with pytest.raises(InvalidTokenError):
            await validator.validate(forge(header, {**good, "iss": bad}, key))


# -- redirect URI vectors (V-18, V-23, V-25..V-27, V-44, V-45, V-58, V-59) ------------------------


async def refused_everywhere(env: ServerEnv, client: Any, uris: list[str]) -> None:
    for uri in uris:
        flow = await env.start_authorize(env.browser(), client, redirect_uri=uri)
        assert_page(flow.response)
        assert_no_redirect_to(flow.response, uri)
    control = await env.start_authorize(env.browser(), client)
    assert control.response.status_code == 302


async def test_v_18_redos_redirect_uri_refused(env: ServerEnv) -> None:
    client = await env.client()
    uris = [
        "http://[" + ":" * 5000 + "]/p",
        "https://" + "a" * 10_000 + ".example/cb",
        "https://rp.test/" + "%" * 5000,
    ]
    for uri in uris:
        flow = await env.start_authorize(env.browser(), client, redirect_uri=uri)
        assert flow.response.status_code in (400, 414)
        assert "location" not in flow.response.headers
    for uri in uris:
        with pytest.raises(AdminError):
            await env.client(redirect_uris=[uri])


async def test_v_23_loose_host_comparison_refused(env: ServerEnv) -> None:
    client = await env.client()
    await refused_everywhere(
        env,
        client,
        [
            "https://rp.test.evil.example/cb",
            "https://rp.test@evil.example/cb",
            "https://evil.example/https://rp.test/cb",
            "https://evil.example/cb?https://rp.test/cb",
        ],
    )


async def test_v_25_path_traversal_refused(env: ServerEnv) -> None:
    client = await env.client()
    await refused_everywhere(
        env,
        client,
        [
            "https://rp.test/cb/../evil",
            "https://rp.test/cb/..%2Fevil",
            "https://rp.test/cb%252F..%252Fevil",
            "https://rp.test/cb/..;/evil",
            "https://rp.test/cb/.%2e/evil",
            "https://rp.test/cb/./",
        ],
    )


async def test_v_26_loopback_userinfo_tricks_refused(env: ServerEnv) -> None:
    native = await env.client(
        client_type="public", native=True, redirect_uris=["http://127.0.0.1/cb"]
    )
    await refused_everywhere(
        env,
        native,
        [
            "http://127.0.0.1:80@evil.example/cb",
            "http://127.0.0.1%40evil.example/cb",
            "http://127.0.0.1:8080\\@evil.example/cb",
            "http://localhost:80@evil.example/cb",
        ],
    )


async def test_v_27_multiple_at_signs_refused(env: ServerEnv) -> None:
    client = await env.client()
    vectors = [
        "https://rp.test@@evil.example/cb",
        "https://a@b@evil.example/cb",
        "https://rp.test%2540evil.example/cb",
    ]
    await refused_everywhere(env, client, vectors)
    for uri in vectors:
        with pytest.raises(AdminError):
            await env.client(redirect_uris=[uri])


@pytest.mark.parametrize(
    "uri",
    [
        "JavaScript:alert(1)//",
        "JAVASCRIPT:alert(1)",
        "javascript:alert(1)",
        "java%0ascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
    ],
)
async def test_v_29_script_uris_refused_at_registration(env: ServerEnv, uri: str) -> None:
    await env.api()
    with pytest.raises(AdminError):
        await env.client(redirect_uris=[uri])
    with pytest.raises(AdminError):
        await env.client(redirect_uris=[uri], client_type="public", native=True)
    with pytest.raises(AdminError):
        await env.client(post_logout_redirect_uris=[uri])


async def test_v_44_case_variants_refused(env: ServerEnv) -> None:
    client = await env.client(redirect_uris=["https://rp.test/cb/path%2Fx"])
    await refused_everywhere(
        env,
        client,
        [
            "https://rp.test/CB/path%2Fx",
            "https://RP.test/cb/path%2Fx",
            "HTTPS://rp.test/cb/path%2Fx",
            "https://rp.test/cb/path%2fx",
            "https://rp.test/cb/path/x",
        ],
    )


async def test_v_58_no_pattern_matching(env: ServerEnv) -> None:
    client = await env.client()
    await refused_everywhere(env, client, ["https://rpatest/cb", "https://rp-test/cb"])


async def test_v_59_another_clients_redirect_uri_refused(env: ServerEnv) -> None:
    pub = await env.client(client_type="public")
    conf = await env.client(redirect_uris=["https://conf.test/cb"])
    await refused_everywhere(env, pub, [conf.client.redirect_uris[0]])


async def test_v_21_prompt_none_never_redirects_to_an_unchecked_uri(env: ServerEnv) -> None:
    client = await env.client(client_type="public")
    flow = await env.start_authorize(
        env.browser(), client, prompt="none", redirect_uri="https://attacker.example/cb"
    )
    assert_page(flow.response)
    flow = await env.start_authorize(env.browser(), client, prompt="none")
    assert flow.result["error"] == "login_required"


# -- V-31: single-use artefacts are not interchangeable -------------------------------------------


async def test_v_31_other_artefacts_are_not_codes(env: ServerEnv) -> None:
    client = await env.client(grant_types=["authorization_code", "refresh_token"])
    await env.user()
    ua = env.browser()
    flow = await env.authorize(ua, client)
    body = (await env.redeem(client, flow.code, flow.verifier)).json()
    other = await env.start_authorize(ua, client, prompt="login")
    page = await ua.get(other.location)
    fields = hidden_fields(page.text)
    artefacts = [
        body["refresh_token"],
        body["access_token"],
        fields["txn"],
        fields["csrf_token"],
        *(c.value or "" for c in ua.cookies.jar),
        other.location,
    ]
    for value in artefacts:
        response = await env.redeem(client, value, flow.verifier)
        assert_oauth_error(response, "invalid_grant")
    second = await env.authorize(env.browser(), client)
    response = await env.token(
        client, {"grant_type": "refresh_token", "refresh_token": second.code}
    )
    assert_oauth_error(response, "invalid_grant")
    # the code was not consumed by that attempt either way: the pair stays distinct
    assert (await env.redeem(client, second.code, second.verifier)).status_code == 200


# -- V-33: revoked refresh tokens stay revoked across a restart -----------------------------------


async def test_v_33_revoked_refresh_token_stays_revoked_after_restart(
    sec_settings: Settings, clock: FakeClock
) -> None:
    async with ServerEnv.start(sec_settings, clock) as env:
        client = await env.client(grant_types=["authorization_code", "refresh_token"])
        await env.user()
        flow = await env.authorize(env.browser(), client)
        rt = (await env.redeem(client, flow.code, flow.verifier)).json()["refresh_token"]
        assert (await env.revoke(client, rt)).status_code == 200
    async with ServerEnv.start(sec_settings, clock) as env:
        response = await env.token(client, {"grant_type": "refresh_token", "refresh_token": rt})
        assert_oauth_error(response, "invalid_grant")


# -- V-36: an abandoned prompt=login leaves the session as it was ----------------------------------


async def test_v_36_abandoned_reauthentication_keeps_the_session(env: ServerEnv) -> None:
    client = await env.client(first_party=True)
    await env.user()
    await env.user("mallory")
    ua = env.browser()
    first = await env.authorize(ua, client)
    assert "code" in first.result
    again = await env.start_authorize(ua, client, prompt="login")
    assert again.response.status_code == 302
    assert "code" not in again.result
    page = await ua.get(again.location)
    fields = hidden_fields(page.text)
    wrong = await ua.post("/login", data={**fields, "username": "mallory", "password": "nope"})
    assert wrong.status_code in (200, 401, 429)
    assert "location" not in wrong.headers
    silent = await env.start_authorize(ua, client, prompt="none")
    code = silent.result["code"]
    token = (await env.redeem(client, code, silent.verifier)).json()["access_token"]
    alice = await env.admin.find_user("alice")
    assert (await env.decode_access_token(token))["sub"] == alice.id


# -- V-40: disabling a user makes all their tokens inactive ---------------------------------------


async def test_v_40_disabled_user_tokens_inactive(env: ServerEnv) -> None:
    client = await env.client(grant_types=["authorization_code", "refresh_token"])
    rs = await env.client(name="RS", can_introspect=True, grant_types=["client_credentials"])
    await env.user()
    flow = await env.authorize(env.browser(), client)
    body = (await env.redeem(client, flow.code, flow.verifier)).json()
    await env.admin.set_disabled("alice", True)
    assert await env.introspect(rs, body["access_token"]) == {"active": False}
    assert await env.introspect(rs, body["refresh_token"]) == {"active": False}
    refresh = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    assert_oauth_error(await env.token(client, refresh), "invalid_grant")


# -- V-51: a cached introspection answer never stands in for a scope decision --------------------


async def test_v_51_introspection_cache_does_not_skip_scope_checks(env: ServerEnv) -> None:
    from fastapi import FastAPI

    from tokensmith.resource import IntrospectionValidator, Principal, ResourceServer

    client = await env.client(access_token_format="opaque")
    rs_client = await env.client(
        name="API", can_introspect=True, grant_types=["client_credentials"], redirect_uris=[]
    )
    await env.user()
    flow = await env.authorize(env.browser(), client, scope="docs:read")
    token = (await env.redeem(client, flow.code, flow.verifier)).json()["access_token"]
    async with httpx.AsyncClient(transport=env.transport, base_url=env.settings.issuer) as http:
        validator = IntrospectionValidator(
            http=http,
            client_id=rs_client.client.client_id,
            client_secret=rs_client.client_secret or "",
            issuer=env.settings.issuer,
            audience=API,
            clock=env.clock,
        )
        server = ResourceServer(validator)
        reader = server.require_scopes("docs:read")
        writer = server.require_scopes("docs:write")
        app = FastAPI()

        async def read(principal: Principal = reader) -> dict[str, str]:
            return {"sub": principal.subject}

        async def write(principal: Principal = writer) -> dict[str, str]:
            return {"sub": principal.subject}

        app.add_api_route("/read", read)
        app.add_api_route("/write", write, methods=["POST"])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as api:
            for _ in range(3):
                assert (await api.get("/read", headers=bearer(token))).status_code == 200
            response = await api.post("/write", headers=bearer(token))
            assert response.status_code == 403
            assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
