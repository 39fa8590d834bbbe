"""A CDS Hooks client for the tests: ES384 and RS384 keys, a JWK Set served on 127.0.0.1, JWTs signed with
joserfc, and spec-shaped `patient-view` bodies (../shared/reference/cds_hooks.md §9.3)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

ALL_ALGS = ["ES384", "RS384", "RS256", "ES256", "HS256", "none"]


@dataclass
class CdsTestClient:
    iss: str
    jwks_url: str
    other_jwks_url: str
    es384: ECKey = field(default_factory=lambda: ECKey.generate_key("P-384", parameters={"kid": "es-1"}))
    rs384: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "rs-1"}))
    #: A key the EHR never published (its kid is not in the JWK Set).
    stranger: ECKey = field(default_factory=lambda: ECKey.generate_key("P-384", parameters={"kid": "es-x"}))

    def published(self) -> dict[str, Any]:
        return {"keys": [self.es384.as_dict(private=False), self.rs384.as_dict(private=False)]}

    def sign(self, aud: str, *, alg: str = "ES384", header: dict[str, Any] | None = None,
             claims: dict[str, Any] | None = None, key: Any = None) -> str:  # fmt: skip
        now = int(time.time())
        signing_key = key or (self.rs384 if alg.startswith("RS") else self.es384)
        head = {"alg": alg, "typ": "JWT", "kid": signing_key.kid, "jku": self.jwks_url, **(header or {})}
        body = {"iss": self.iss, "aud": aud, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4()),
                **(claims or {})}  # fmt: skip
        head = {k: v for k, v in head.items() if v is not None}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(head, body, signing_key, algorithms=ALL_ALGS)


def unsigned(aud: str, iss: str) -> str:
    """An `alg: none` JWT (joserfc refuses to make one, as it should)."""
    import base64

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': 'es-1'})}." + part(
        {"iss": iss, "aud": aud, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}) + "."  # fmt: skip


@contextmanager
def serve_jwks(client_for: Any) -> Iterator[str]:
    """A JWK Set server on 127.0.0.1: /jwks (the EHR's), /other (an attacker's). Yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            client: CdsTestClient = client_for()
            if self.path == "/jwks":
                body = client.published()
            elif self.path == "/other":
                body = {"keys": [client.stranger.as_dict(private=False)]}
            else:
                self.send_response(404)
                self.end_headers()
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def patient_view_body(patient: str = "pt-1", *, prefetch: dict[str, Any] | None = None, user: str = "Practitioner/pr-1",
                      fhir_server: str | None = None, token: str | None = None) -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
                            "context": {"userId": user, "patientId": patient}}  # fmt: skip
    if fhir_server:
        body["fhirServer"] = fhir_server
    if token:
        body["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer", "expires_in": 300,
                                     "scope": "user/Patient.rs user/Observation.rs", "subject": "tandem-cds"}  # fmt: skip
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def searchset(*resources: dict[str, Any], next_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                              "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources]}  # fmt: skip
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle
