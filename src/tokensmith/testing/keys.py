"""Signing keys for the local test issuer."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm, RSAPSSAlgorithm

__all__ = ["PrivateKey", "SigningKey"]

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key, its ``kid`` and the one algorithm it signs with."""

    kid: str
    alg: str
    private_key: PrivateKey = field(repr=False)

    @classmethod
    def generate(cls, alg: str = "ES256", *, kid: str | None = None) -> SigningKey:
        """A fresh key for ``alg``: ES256, ES384, EdDSA, RS256 or PS256 (RSA 2048)."""
        private_key: PrivateKey
        if alg == "ES256":
            private_key = ec.generate_private_key(ec.SECP256R1())
        elif alg == "ES384":
            private_key = ec.generate_private_key(ec.SECP384R1())
        elif alg == "EdDSA":
            private_key = ed25519.Ed25519PrivateKey.generate()
        elif alg in ("RS256", "PS256"):
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            raise ValueError(f"unsupported algorithm {alg!r}")
        return cls(
            kid=kid or f"{alg.lower()}-{secrets.token_hex(6)}", alg=alg, private_key=private_key
        )

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK with ``kid``, ``alg`` and ``use: sig``."""
        public = self.private_key.public_key()
        jwk: dict[str, Any]
        if isinstance(public, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        elif isinstance(public, rsa.RSAPublicKey):
            if self.alg.startswith("PS"):
                jwk = RSAPSSAlgorithm.to_jwk(public, as_dict=True)
            else:
                jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
        jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return jwk
