"""The sandbox EHR as a CDS Hooks client: when a chart opens it calls Tandem's `patient-view` service as an EHR
does (a JWT signed ES384 with a `jku` to its JWK Set, prefetch from its own FHIR data, a short-lived token for the
rest) and shows the cards beside the chart; links launch Tandem, and dismissals go back as feedback."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from joserfc import jwt
from joserfc.jwk import ECKey

from fhir_mappings.cds.prefetch import fill_template

log = logging.getLogger(__name__)

#: How the sandbox answers Tandem's prefetch templates, per EHR behaviour: the generic EHR fulfils all of them;
#: the Epic-like one too (whether Epic prefetches is unconfirmed); the Oracle-like one sends none (its beta
#: documentation does not mention prefetch), only a FHIR token.
PREFETCH_BY_MODE = {"generic": "all", "epic": "all", "oracle": "none"}


@dataclass
class CdsCall:
    """What a chart's `patient-view` call gave: the cards, or why there are none."""

    service_id: str | None = None
    cards: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None
    status: int | None = None
    elapsed_ms: float = 0.0


class SandboxCdsClient:
    def __init__(self, public_url: str, tandem_url: str, issuer_for: Callable[[str], str],
                 fhir_get: Callable[[str, str], tuple[int, Any]], mint_token: Callable[[str, str, str], str]) -> None:  # fmt: skip
        self.public_url = public_url.rstrip("/")
        self.tandem_url = tandem_url.rstrip("/")
        self.issuer_for = issuer_for
        self.fhir_get = fhir_get
        self.mint_token = mint_token
        self.key = ECKey.generate_key(
            "P-384", parameters={"kid": "sandbox-cds-1", "alg": "ES384", "use": "sig"}
        )
        self.http = requests.Session()

    @property
    def jwks_url(self) -> str:
        return f"{self.public_url}/cds/jwks.json"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def sign(self, mode: str, audience: str, *, lifetime: int = 300) -> str:
        now = int(time.time())
        header = {"alg": "ES384", "typ": "JWT", "kid": self.key.kid, "jku": self.jwks_url}
        claims = {"iss": self.issuer_for(mode), "aud": audience, "exp": now + lifetime, "iat": now,
                  "jti": str(uuid.uuid4())}  # fmt: skip
        return jwt.encode(header, claims, self.key, algorithms=["ES384"])

    def _headers(self, mode: str, url: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.sign(mode, url)}", "Accept": "application/json"}

    def services(self, mode: str) -> list[dict[str, Any]]:
        url = f"{self.tandem_url}/cds-services"
        response = self.http.get(url, headers=self._headers(mode, url), timeout=5)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json().get("services", [])
        return [s for s in found if s.get("hook") == "patient-view"]

    def prefetch(self, service: dict[str, Any], context: dict[str, str], mode: str) -> dict[str, Any]:
        """Tandem's templates filled from the EHR's own data: a read that finds nothing is null, a search an
        (empty) Bundle; a template the sandbox cannot fill is left out, as the specification says."""
        if PREFETCH_BY_MODE.get(mode) == "none":
            return {}
        out: dict[str, Any] = {}
        for key, template in (service.get("prefetch") or {}).items():
            query = fill_template(str(template), context)
            if query is None:
                continue
            status, found = self.fhir_get(mode, query)
            if status in (404, 410) and "?" not in query:
                out[key] = None
            elif found is not None:
                out[key] = found
        return out

    def patient_view(self, mode: str, practitioner: str, patient: str, *, user_type: str = "Practitioner",
                     encounter: str | None = None) -> CdsCall:  # fmt: skip
        started = time.perf_counter()
        call = CdsCall()
        try:
            services = self.services(mode)
            if not services:
                call.problem = "Tandem offers no patient-view service"
                return call
            service = services[0]
            call.service_id = str(service["id"])
            context = {"userId": f"{user_type}/{practitioner}", "patientId": patient}
            if encounter:
                context["encounterId"] = encounter
            url = f"{self.tandem_url}/cds-services/{service['id']}"
            body = {
                "hook": "patient-view",
                "hookInstance": str(uuid.uuid4()),
                "fhirServer": self.issuer_for(mode),
                "fhirAuthorization": {
                    "access_token": self.mint_token(mode, practitioner, patient), "token_type": "Bearer",
                    "expires_in": 300, "scope": "user/Patient.rs user/Observation.rs user/Condition.rs",
                    "subject": "tandem-cds", "patient": patient,
                },
                "context": context,
                "prefetch": self.prefetch(service, context, mode),
            }  # fmt: skip
            response = self.http.post(url, json=body, headers=self._headers(mode, url), timeout=5)
            call.status = response.status_code
            if response.ok:
                call.cards = list(response.json().get("cards", []))
            else:
                call.problem = f"Tandem's CDS service answered {response.status_code}"
        except (requests.RequestException, ValueError) as error:
            call.problem = f"Tandem's CDS service could not be reached ({type(error).__name__})"
        finally:
            call.elapsed_ms = (time.perf_counter() - started) * 1000
        return call

    def feedback(
        self, mode: str, service_id: str, card: str, outcome: str, reason: dict[str, str] | None
    ) -> int:
        url = f"{self.tandem_url}/cds-services/{service_id}/feedback"
        item: dict[str, Any] = {"card": card, "outcome": outcome,
                                "outcomeTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
        if outcome == "overridden" and reason:
            item["overrideReason"] = {"reason": reason}
        if outcome == "accepted":
            item["acceptedSuggestions"] = []
        # Signed for the feedback endpoint itself: aud = {service url}/feedback, as the CDS Hooks Sandbox does.
        response = self.http.post(url, json={"feedback": [item]}, headers=self._headers(mode, url), timeout=5)
        return response.status_code
