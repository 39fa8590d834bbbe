"""Tandem's own signing keys (private_key_jwt, backend services) and the public JWKS it publishes."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, RSAKey

from .errors import ConfigurationError

SUPPORTED_ALGORITHMS = ("RS384", "ES384")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    key: RSAKey | ECKey


def generate_key_set() -> dict[str, Any]:
    """A private JWKS with one RS384 (RSA 3072) and one ES384 (P-384) key, kids dated for rotation."""
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    rsa = RSAKey.generate_key(
        3072, parameters={"kid": f"tandem-rs384-{stamp}-{secrets.token_hex(3)}", "alg": "RS384", "use": "sig"}
    )
    ec = ECKey.generate_key(
        "P-384",
        parameters={"kid": f"tandem-es384-{stamp}-{secrets.token_hex(3)}", "alg": "ES384", "use": "sig"},
    )
    return {"keys": [rsa.as_dict(private=True), ec.as_dict(private=True)]}


def write_key_set(path: Path, key_set: dict[str, Any]) -> None:
    """Write a private JWKS readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(key_set, handle, indent=2)


class KeyRing:
    """The app's private keys by kid."""

    def __init__(self, keys: list[SigningKey]) -> None:
        self._keys = {key.kid: key for key in keys}

    @classmethod
    def from_jwks(cls, data: dict[str, Any], *, source: str = "key file") -> KeyRing:
        entries = data.get("keys")
        if not isinstance(entries, list) or not entries:
            raise ConfigurationError(f"{source}: expected a JWKS object with a non-empty 'keys' list")
        keys = []
        for index, entry in enumerate(entries):
            kid, alg = entry.get("kid"), entry.get("alg")
            if not kid:
                raise ConfigurationError(f"{source}: keys[{index}].kid is missing")
            if alg not in SUPPORTED_ALGORITHMS:
                raise ConfigurationError(
                    f"{source}: keys[{index}].alg must be one of {', '.join(SUPPORTED_ALGORITHMS)}"
                )
            if "d" not in entry:
                raise ConfigurationError(f"{source}: keys[{index}] ({kid}) has no private part")
            try:
                key = RSAKey.import_key(entry) if alg == "RS384" else ECKey.import_key(entry)
            except Exception as error:  # joserfc raises several types for bad key material
                raise ConfigurationError(
                    f"{source}: keys[{index}] ({kid}) is not a valid key: {error}"
                ) from None
            if alg == "ES384" and getattr(key, "curve_name", "P-384") != "P-384":
                raise ConfigurationError(f"{source}: keys[{index}] ({kid}) must be on curve P-384 for ES384")
            keys.append(SigningKey(kid=kid, alg=alg, key=key))
        return cls(keys)

    @classmethod
    def load(cls, path: str | Path) -> KeyRing:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(
                f"{path}: key file not found (create one with `tandem keys generate`)"
            ) from None
        except json.JSONDecodeError as error:
            raise ConfigurationError(f"{path}: not valid JSON: {error}") from None
        return cls.from_jwks(data, source=str(path))

    @classmethod
    def ephemeral(cls) -> KeyRing:
        return cls.from_jwks(generate_key_set(), source="generated keys")

    @property
    def kids(self) -> set[str]:
        return set(self._keys)

    def get(self, kid: str) -> SigningKey:
        try:
            return self._keys[kid]
        except KeyError:
            raise ConfigurationError(f"no signing key with kid {kid!r}") from None

    def public_jwks(self) -> dict[str, Any]:
        public = []
        for signing in self._keys.values():
            entry = signing.key.as_dict(private=False)
            entry.update({"kid": signing.kid, "alg": signing.alg, "use": "sig"})
            public.append(entry)
        return {"keys": public}
