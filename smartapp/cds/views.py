"""CDS Hooks endpoints: `GET /cds-services`, `POST /cds-services/<id>`, `POST /cds-services/<id>/feedback`. Every
call is authenticated by the EHR's JWT before any view runs (a bare 401 otherwise); errors are OperationOutcomes.
Called server-to-server (and by browser-based CDS clients: CORS with bearer tokens, no cookies)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from launch.errors import StoreUnavailable, TandemError
from smartapp.cds.client_auth import CdsCaller, CdsClientVerifier
from smartapp.cds.service import CdsService
from smartapp.errors import CdsBadRequest, CdsDataUnavailable, CdsUnauthorized, CdsUnknownCard
from smartapp.request_context import public_base, services

log = logging.getLogger(__name__)
bp = Blueprint("cds", __name__, url_prefix="/cds-services")


def cds_service() -> CdsService:
    if "tandem_cds" not in current_app.extensions:
        current_app.extensions["tandem_cds"] = CdsService(services())
    service: CdsService = current_app.extensions["tandem_cds"]
    return service


def public_url() -> str:
    """The exact URL called, as the EHR knows it: the configured public base URL behind a proxy."""
    return public_base() + request.path


@bp.before_request
def authenticate() -> Response | None:
    if request.method == "OPTIONS":
        return Response(status=204)  # CORS preflight: no credentials are sent with it
    svc = services()
    verifier = CdsClientVerifier(svc.registrations, svc.discovery, svc.store)
    g.cds_caller = verifier.verify(request.headers.get("Authorization"), public_url())
    return None


@bp.after_request
def cors(response: Response) -> Response:
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Cache-Control"] = "no-store"
    return response


def _outcome(status: int, code: str, message: str) -> tuple[Response, int]:
    body = {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": message}]}  # fmt: skip
    return jsonify(body), status


@bp.errorhandler(CdsUnauthorized)
def unauthorized(error: CdsUnauthorized) -> Response:
    return Response(status=401)  # bare: the reason is in Tandem's log, never in the answer


@bp.errorhandler(CdsBadRequest)
def bad_request(error: CdsBadRequest) -> tuple[Response, int]:
    return _outcome(400, "invalid", error.message)


@bp.errorhandler(CdsUnknownCard)
def unknown_card(error: CdsUnknownCard) -> tuple[Response, int]:
    # CDS Hooks 2.0.1 names no status for feedback about an unknown card and allows any 4xx: 404, the card is
    # not a resource of this service (for this EHR).
    return _outcome(404, "not-found", error.message)


@bp.errorhandler(CdsDataUnavailable)
def data_unavailable(error: CdsDataUnavailable) -> tuple[Response, int]:
    log.info("patient-view answered 412: %s", error.message)
    return _outcome(412, "incomplete", error.message)


@bp.errorhandler(StoreUnavailable)
def store_unavailable(error: StoreUnavailable) -> tuple[Response, int]:
    return _outcome(503, "transient", "Tandem's session store is unavailable; no cards now")


@bp.errorhandler(TandemError)
def other_error(error: TandemError) -> tuple[Response, int]:
    log.warning("CDS call failed: %s", type(error).__name__)
    return _outcome(500, "exception", "Tandem could not answer now")


def _caller() -> CdsCaller:
    caller: CdsCaller = g.cds_caller
    return caller


def _known(service_id: str) -> None:
    if service_id != cds_service().definition.id:
        raise CdsBadRequest(f"no CDS service {service_id!r} here")


@bp.get("")
def discovery() -> Response:
    return jsonify(cds_service().discovery())


@bp.post("/<service_id>")
def call(service_id: str) -> Any:
    _known(service_id)
    body = request.get_json(silent=True)
    return jsonify(cds_service().patient_view(_caller(), body, public_base()))


@bp.post("/<service_id>/feedback")
def feedback(service_id: str) -> Any:
    _known(service_id)
    cds_service().record_feedback(_caller(), request.get_json(silent=True))
    return Response(status=200)
