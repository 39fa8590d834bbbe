"""The sandbox EHR's Flask app: launcher, SMART authorization server, EHR-like FHIR endpoint."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import requests
from authlib.oauth2 import OAuth2Error
from flask import Flask, Response, abort, jsonify, redirect, render_template, request
from joserfc.jwk import RSAKey

from fhir_mappings.common.patient import birth_date_text, display_name
from launch.scopes import allows

from .cds_client import SandboxCdsClient
from .oauth import BackendClient, LaunchContext, SandboxClient, SandboxStore, build_authorization_server
from .rules import (
    MODES,
    VENDOR_NAMES,
    Refusal,
    belongs_to,
    scope_refusal,
    vendor_capability,
    vendor_refusal,
)

log = logging.getLogger(__name__)

DEFAULT_LIFETIMES = {"generic": 3600, "epic": 3240, "oracle": 570}
_FORWARDED_HEADERS = ("Content-Type", "If-Match", "If-None-Exist", "If-None-Match", "Prefer")


@dataclass
class SandboxConfig:
    public_url: str  # where browsers and Tandem reach the sandbox, e.g. http://127.0.0.1:9000
    fhir_url: str  # the local FHIR server holding the EHR's data
    tandem_url: str  # Tandem's base URL: launch URL and redirect URI
    client_id: str = "tandem-sandbox"
    lifetimes: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LIFETIMES))
    #: Fault injection for writes through the EHR endpoint (fault tests): None, "500" (refused), or "lost"
    #: (stored, then the answer is held back past the client's timeout).
    write_fault: str | None = None
    lost_answer_seconds: float = 3.0
    #: Resource types whose reads and searches fail with a 500 (fault tests: the case review's medication read).
    read_fault: set[str] = field(default_factory=set)
    #: Scenario labels of seeded patients (patient id → what the worklist shows for them), for the launcher.
    labels: dict[str, str] = field(default_factory=dict)
    #: Tandem's public keys: with them each EHR registers a backend services client `tandem-backend-<mode>`.
    backend_jwks: dict[str, Any] | None = None
    #: Modes whose EHR publishes only the legacy discovery (the CapabilityStatement's oauth-uris), no
    #: `.well-known/smart-configuration`: no `issuer` is named, and id_tokens carry the FHIR base URL.
    legacy_discovery: set[str] = field(default_factory=set)

    def iss(self, mode: str) -> str:
        return f"{self.public_url.rstrip('/')}/{mode}/fhir"


def backend_client_id(mode: str) -> str:
    return f"tandem-backend-{mode}"


def _outcome(status: int, code: str, message: str, challenge: str | None = None) -> Response:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": message}],
    }
    response = Response(json.dumps(body), status=status, content_type="application/fhir+json")
    if challenge:
        response.headers["WWW-Authenticate"] = challenge
    return response


def create_sandbox_app(config: SandboxConfig) -> Flask:
    app = Flask(__name__)
    store = SandboxStore()
    store.clients[config.client_id] = SandboxClient(
        client_id=config.client_id, redirect_uris=[f"{config.tandem_url.rstrip('/')}/callback"]
    )
    if config.backend_jwks:
        for mode in MODES:
            store.clients[backend_client_id(mode)] = BackendClient(
                client_id=backend_client_id(mode), redirect_uris=[], mode=mode, jwks=config.backend_jwks
            )
    signing_key = RSAKey.generate_key(2048, parameters={"kid": "sandbox-1", "alg": "RS256", "use": "sig"})
    server = build_authorization_server(store, signing_key, config.iss, config.lifetimes,
                                        f"{config.public_url.rstrip('/')}/auth/token")  # fmt: skip
    app.config["OAUTH2_REFRESH_TOKEN_GENERATOR"] = True
    server.init_app(app)
    upstream = requests.Session()

    def upstream_query(mode: str, query: str) -> tuple[int, Any]:
        """A relative FHIR query on the EHR's data, answered as the EHR's own endpoint would (its base URLs)."""
        base = config.fhir_url.rstrip("/")
        response = upstream.get(f"{base}/{query}", timeout=15, headers={"Accept": "application/fhir+json"})
        if not response.ok:
            return response.status_code, None
        return response.status_code, json.loads(response.text.replace(base, config.iss(mode)))

    def cds_token(mode: str, user: str, patient: str) -> str:
        return store.mint("tandem-cds", "user/Patient.rs user/Observation.rs user/Condition.rs",
                          LaunchContext(mode=mode, practitioner=user, patient=patient))  # fmt: skip

    cds = SandboxCdsClient(config.public_url, config.tandem_url, config.iss,
                           upstream_query, cds_token)  # fmt: skip
    app.extensions["sandbox"] = {"store": store, "config": config, "server": server, "cds": cds}

    def fhir_get(path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        response = upstream.get(f"{config.fhir_url.rstrip('/')}/{path}", params=params, timeout=15,
                                headers={"Accept": "application/fhir+json"})  # fmt: skip
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def all_patients() -> list[dict[str, Any]]:
        """Every patient, page by page (a launcher for 5,000 patients lists 5,000, sorted by family name)."""
        found: list[dict[str, Any]] = []
        bundle: dict[str, Any] | None = fhir_get("Patient", {"_count": "500", "_sort": "family"})
        while bundle:
            found += [e["resource"] for e in bundle.get("entry", [])]
            link = next((x["url"] for x in bundle.get("link", []) if x.get("relation") == "next"), None)
            if not link:
                break
            response = upstream.get(link, timeout=15, headers={"Accept": "application/fhir+json"})
            response.raise_for_status()
            bundle = response.json()
        return found

    def patient_choices(patients: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
        return [(p["id"], display_name(p) or p["id"], birth_date_text(p) or "", config.labels.get(p["id"], ""))
                for p in patients]  # fmt: skip

    # --- launcher ----------------------------------------------------------------------------------

    @app.get("/")
    def launcher() -> str:
        patients = all_patients()
        practitioners = [e["resource"] for e in fhir_get("Practitioner", {"_count": "50"}).get("entry", [])]
        labelled = [c for c in patient_choices(patients) if c[3]]
        return render_template(
            "launcher.html",
            patients=patient_choices(patients),
            scenarios=sorted(labelled, key=lambda c: c[3]),
            practitioners=[(p["id"], display_name(p) or p["id"], _role(p)) for p in practitioners],
            modes=[(mode, VENDOR_NAMES[mode]) for mode in MODES],
        )

    @app.get("/launch-app")
    def launch_app() -> Response | str:
        mode = request.args.get("mode", "generic")
        if mode not in MODES:
            abort(400, "unknown mode")
        target = request.args.get("target", "chart")
        if target in ("portal", "portal-proxy"):
            return portal_launch(mode, target, request.args.get("patient") or abort(400, "choose a patient"))
        practitioner = request.args.get("practitioner") or abort(400, "choose a practitioner")
        patient = request.args.get("patient") if target == "chart" else None
        if target == "chart" and not patient:
            abort(400, "choose a patient")
        params = {"iss": config.iss(mode)}
        if target != "standalone":
            params["launch"] = store.new_launch(
                LaunchContext(
                    mode=mode,
                    practitioner=practitioner,
                    patient=patient,
                    encounter=f"{patient}-enc" if patient else None,  # today's visit (sandbox/data.py)
                    need_patient_banner=request.args.get("banner", "1") == "1",
                    intent={"worklist": "worklist", "healthysteps": "healthysteps-worklist"}.get(target),
                )
            )
        app_url = f"{config.tandem_url.rstrip('/')}/launch?{urlencode(params)}"
        if target == "chart" and patient and request.args.get("cds") == "1":
            # The EHR's chart: Tandem beside the cards its CDS service gave when the chart opened.
            call = cds.patient_view(mode, practitioner, patient, encounter=f"{patient}-enc")
            return render_template("ehr_frame.html", app_url=app_url, mode_name=VENDOR_NAMES[mode], cds=call,
                                   mode=mode, practitioner=practitioner, patient=patient)  # fmt: skip
        if request.args.get("embed") == "1":
            return render_template("ehr_frame.html", app_url=app_url, mode_name=VENDOR_NAMES[mode], cds=None)
        return redirect(app_url, code=302)  # type: ignore[return-value]

    def portal_launch(mode: str, target: str, patient: str) -> Response:
        """The patient portal's SMART launch (`launch/patient`): the patient themself, or a parent whose proxy
        access the EHR records as a RelatedPerson of the child (fhirUser = RelatedPerson)."""
        user, user_type = patient, "Patient"
        if target == "portal-proxy":
            found = fhir_get("RelatedPerson", {"patient": patient, "_count": "5"}).get("entry") or []
            if not found:
                abort(400, "this patient has no related person with proxy access in the sandbox")
            user, user_type = found[0]["resource"]["id"], "RelatedPerson"
        launch = store.new_launch(
            LaunchContext(mode=mode, practitioner=user, patient=patient, user_type=user_type)
        )
        app_url = (
            f"{config.tandem_url.rstrip('/')}/launch?{urlencode({'iss': config.iss(mode), 'launch': launch})}"
        )
        return redirect(app_url, code=302)  # type: ignore[return-value]

    @app.get("/cds/jwks.json")
    def cds_jwks() -> Response:
        return jsonify(cds.jwks())

    @app.get("/cds-launch")
    def cds_launch() -> Response:
        """A card's SMART link: a new EHR launch for the same user and patient, with the card's appContext
        (dropped by the Oracle-like mode, as Oracle Health does); only links to Tandem are followed."""
        mode = request.args.get("mode", "generic")
        url = request.args.get("url", "")
        practitioner, patient = request.args.get("practitioner", ""), request.args.get("patient", "")
        if mode not in MODES or not url.startswith(f"{config.tandem_url.rstrip('/')}/launch"):
            abort(400, "only links to Tandem's launch URL are allowed")
        launch = store.new_launch(LaunchContext(
            mode=mode, practitioner=practitioner, patient=patient, encounter=f"{patient}-enc",
            app_context=None if mode == "oracle" else request.args.get("appContext") or None))  # fmt: skip
        joiner = "&" if "?" in url else "?"
        return redirect(f"{url}{joiner}{urlencode({'iss': config.iss(mode), 'launch': launch})}", code=302)  # type: ignore[return-value]

    @app.post("/cds-feedback")
    def cds_feedback() -> str:
        mode = request.form.get("mode", "generic")
        reason = request.form.get("reason", "")
        if not reason:  # a dismissal names its reason: none is ever chosen for the user
            return render_template("cds_feedback.html", status=None)
        coding = {"system": request.form.get("system", ""), "code": reason}
        status = cds.feedback(mode, request.form.get("service", ""), request.form.get("card", ""),
                              request.form.get("outcome", "overridden"), coding)  # fmt: skip
        return render_template("cds_feedback.html", status=status)

    @app.get("/side-by-side")
    def side_by_side() -> str:
        """Two EHR launches in one page (two patients in two iframes), as Epic Hyperspace can do."""
        mode = request.args.get("mode", "generic")
        if mode not in MODES:
            abort(400, "unknown mode")
        practitioner = request.args.get("practitioner", "pr-pcp-1")
        urls = []
        for patient in (request.args.get("a", "pt-0001"), request.args.get("b", "pt-0002")):
            launch = store.new_launch(
                LaunchContext(
                    mode=mode, practitioner=practitioner, patient=patient, encounter=f"{patient}-enc"
                )
            )
            urls.append(
                f"{config.tandem_url.rstrip('/')}/launch?{urlencode({'iss': config.iss(mode), 'launch': launch})}"
            )
        return render_template(
            "side_by_side.html", url_a=urls[0], url_b=urls[1], mode_name=VENDOR_NAMES[mode]
        )

    # --- SMART authorization server ---------------------------------------------------------------

    @app.get("/<mode>/fhir/.well-known/smart-configuration")
    def smart_configuration(mode: str) -> Response:
        if mode not in MODES or mode in config.legacy_discovery:
            abort(404)
        root = config.public_url.rstrip("/")
        return jsonify(
            issuer=config.iss(mode),
            jwks_uri=f"{root}/auth/jwks",
            authorization_endpoint=f"{root}/auth/authorize",
            token_endpoint=f"{root}/auth/token",
            token_endpoint_auth_methods_supported=["none", "client_secret_basic", "private_key_jwt"],
            token_endpoint_auth_signing_alg_values_supported=["RS384", "ES384"],
            grant_types_supported=["authorization_code", "refresh_token", "client_credentials"],
            scopes_supported=["openid", "fhirUser", "launch", "launch/patient", "online_access", "offline_access"],
            response_types_supported=["code"],
            code_challenge_methods_supported=["S256"],
            capabilities=[
                "launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric",
                "client-confidential-asymmetric",
                "context-ehr-patient", "context-ehr-encounter", "context-standalone-patient", "context-banner",
                "context-style", "permission-patient", "permission-user", "permission-v1", "permission-v2",
                "permission-online", "sso-openid-connect", "authorize-post",
            ],
        )  # fmt: skip

    @app.get("/<mode>/fhir/.well-known/openid-configuration")
    def openid_configuration(mode: str) -> Response:
        """The OpenID Provider's configuration: the sandbox's id_tokens are issued by each FHIR base URL."""
        if mode not in MODES:
            abort(404)
        return jsonify(issuer=config.iss(mode), jwks_uri=f"{config.public_url.rstrip('/')}/auth/jwks",
                       id_token_signing_alg_values_supported=["RS256"])  # fmt: skip

    @app.get("/<mode>/fhir/smart-style.json")
    def smart_style(mode: str) -> Response:
        return jsonify(
            color_background="#edeae3", color_highlight="#69b5ce", font_family_base="Arial, sans-serif"
        )

    @app.get("/auth/jwks")
    def jwks() -> Response:
        return jsonify(keys=[signing_key.as_dict(private=False)])

    @app.route("/auth/authorize", methods=["GET", "POST"])
    def authorize() -> Any:
        values = request.values
        launch_id = values.get("launch")
        aud = values.get("aud", "")
        mode = next((m for m in MODES if config.iss(m) == aud.rstrip("/")), None)
        if mode is None:
            return render_template(
                "sandbox_error.html", message="aud must be one of the sandbox's FHIR base URLs"
            ), 400
        if launch_id:
            context = store.launches.get(launch_id)
            if context is None or context.mode != mode:
                return render_template(
                    "sandbox_error.html", message="unknown launch, or aud of another EHR"
                ), 400
        else:
            patient, practitioner = values.get("sandbox_patient"), values.get("sandbox_practitioner")
            if not (patient and practitioner):
                return _standalone_picker(mode)
            if values.get("sandbox_user_type") == "Patient":  # the patient signs in themself
                context = LaunchContext(mode=mode, practitioner=patient, patient=patient, user_type="Patient")
            else:
                context = LaunchContext(mode=mode, practitioner=practitioner, patient=patient)
        try:
            grant = server.get_consent_grant(end_user=context.practitioner)
        except OAuth2Error as error:
            return render_template("sandbox_error.html", message=f"{error.error}: {error.description}"), 400
        grant.request.sandbox_context = context
        return server.create_authorization_response(
            request=grant.request, grant_user=context.practitioner, grant=grant
        )

    def _standalone_picker(mode: str) -> str:
        patients = all_patients()
        practitioners = [e["resource"] for e in fhir_get("Practitioner", {"_count": "50"}).get("entry", [])]
        hidden = {k: v for k, v in request.values.items() if not k.startswith("sandbox_")}
        return render_template(
            "standalone.html",
            hidden=hidden,
            mode_name=VENDOR_NAMES[mode],
            patients=patient_choices(patients),
            practitioners=[(p["id"], display_name(p) or p["id"], _role(p)) for p in practitioners],
        )

    @app.post("/auth/token")
    def token() -> Any:
        return server.create_token_response()

    # --- EHR-like FHIR endpoint -------------------------------------------------------------------

    @app.get("/<mode>/fhir/metadata")
    def metadata(mode: str) -> Response:
        if mode not in MODES:
            abort(404)
        capability = vendor_capability(fhir_get("metadata"), mode, config.iss(mode))
        root = config.public_url.rstrip("/")
        oauth_uris = {"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris", "extension": [
            {"url": "authorize", "valueUri": f"{root}/auth/authorize"},
            {"url": "token", "valueUri": f"{root}/auth/token"}]}  # fmt: skip
        # The legacy discovery, published by every mode (as Oracle does).
        for rest in capability.get("rest") or []:
            rest.setdefault("security", {})["extension"] = [oauth_uris]
        return Response(json.dumps(capability), content_type="application/fhir+json")

    @app.route("/<mode>/fhir/", methods=["POST"], defaults={"path": ""})
    @app.route("/<mode>/fhir/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def fhir(mode: str, path: str) -> Response:
        if mode not in MODES:
            abort(404)
        challenge = 'Bearer realm="sandbox", error="invalid_token"'
        header = request.headers.get("Authorization", "")
        issued = store.token(header[7:]) if header.startswith("Bearer ") else None
        if issued is None or issued.is_revoked():
            return _outcome(401, "login", "A valid access token is required", challenge)
        if issued.is_expired():
            return _outcome(401, "expired", "The access token has expired", challenge)
        if issued.context.mode != mode:
            return _outcome(401, "login", "The access token was issued for another EHR", challenge)
        parts = [p for p in path.split("/") if p]
        query = parse_qs(request.query_string.decode(), keep_blank_values=True)
        body = request.get_json(silent=True, force=True) if request.data else None
        scopes = set(issued.scope.split())
        patient = issued.context.patient
        only_patient = not any(s.startswith("user/") for s in scopes)
        writes: list[Any] = []
        own_user = request.method == "GET" and parts == [
            issued.context.user_type,
            issued.context.practitioner,
        ]
        if own_user and "fhirUser" in scopes:
            refusal = None  # `openid fhirUser` lets the user read their own resource
        elif parts and parts[0] in ("bulk-status", "bulk-files"):
            # A Bulk Data export's status and files: for the backend client that may export (system scopes).
            refusal = None if issued.context.system and allows(scopes, "system", "Group", "r") else Refusal(
                403, "forbidden", "Bulk Data exports are for backend services clients")  # fmt: skip
        elif parts:
            refusal = vendor_refusal(mode, request.method, parts, body, query) or scope_refusal(
                scopes, patient, request.method, parts, query
            )
            if request.method in ("POST", "PUT"):
                writes.append(body)
        else:  # a batch or transaction Bundle: checked entry by entry
            refusal = vendor_refusal(mode, request.method, parts, body)
            for entry in (body or {}).get("entry") or [] if isinstance(body, dict) else []:
                entry_request = entry.get("request") or {}
                method = str(entry_request.get("method", "POST"))
                entry_parts = [p for p in str(entry_request.get("url", "")).split("?")[0].split("/") if p]
                refusal = refusal or scope_refusal(scopes, patient, method, entry_parts, {})
                if method in ("POST", "PUT"):
                    writes.append(entry.get("resource"))
        if refusal:
            return _outcome(refusal.status, refusal.code, refusal.message, refusal.challenge)
        if (
            patient
            and only_patient
            and any(not (isinstance(w, dict) and belongs_to(w, patient)) for w in writes)
        ):
            return _outcome(403, "forbidden", "A patient-scoped token may only write this patient's data")
        if request.method in ("POST", "PUT") and config.write_fault == "500":
            return _outcome(500, "exception", "Injected fault: the EHR failed")
        if request.method == "GET" and parts and parts[0] in config.read_fault:
            return _outcome(500, "exception", "Injected fault: the EHR failed")
        headers = {k: request.headers[k] for k in _FORWARDED_HEADERS if k in request.headers}
        headers["Accept"] = "application/fhir+json"
        upstream_base = config.fhir_url.rstrip("/")
        url = f"{upstream_base}/{path}" + (
            f"?{request.query_string.decode()}" if request.query_string else ""
        )
        answer = upstream.request(request.method, url, data=request.get_data(), headers=headers, timeout=30)
        if request.method in ("POST", "PUT") and config.write_fault == "lost":
            time.sleep(config.lost_answer_seconds)  # stored, but the client has given up waiting
        text = answer.text.replace(upstream_base, config.iss(mode))
        if (
            answer.ok
            and request.method == "GET"
            and len(parts) >= 2
            and patient
            and only_patient
            and not own_user
        ):
            if not belongs_to(json.loads(text), patient):
                return _outcome(403, "forbidden", "This resource is outside the patient in context")
        response = Response(text, status=answer.status_code, content_type=answer.headers.get("Content-Type"))
        for name in ("ETag", "Location", "Content-Location", "Last-Modified"):
            if name in answer.headers:
                response.headers[name] = answer.headers[name].replace(upstream_base, config.iss(mode))
        return response

    return app


def _role(practitioner: dict[str, Any]) -> str:
    for qualification in practitioner.get("qualification") or []:
        text = (qualification.get("code") or {}).get("text")
        if text:
            return str(text)
    return ""
