"""Flask glue shared by the blueprints: services, the launch cookies, CSRF, the current launch."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from flask import Flask, Request, Response, current_app, g, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from markupsafe import Markup

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.common.patient import display_name
from fhir_mappings.registry.resources import Member
from launch import errors
from launch.fhir import FHIRClient
from launch.sessions import LaunchSession
from smartapp import errors as app_errors
from smartapp.access import Access, PortalAccess, access_for, check_family_link, portal_access_for
from smartapp.caseload.snapshot import CaseloadData
from smartapp.form_once import FIELD as FORM_ONCE_FIELD
from smartapp.screening.service import ScreeningRecord
from smartapp.services import Services

#: Per launch, scoped to the launch's path /app/<id>/.
SESSION_COOKIE = "tandem_session"
#: Per pending authorization, scoped to /callback and named after the state.
AUTH_COOKIE_PREFIX = "tandem_auth_"


def services() -> Services:
    return cast(Services, current_app.extensions["tandem"])


def auth_cookie_name(state: str) -> str:
    return AUTH_COOKIE_PREFIX + hashlib.sha256(state.encode()).hexdigest()[:16]


def set_secret_cookie(response: Response, name: str, value: str, *, path: str, max_age: int) -> None:
    """EHRs embed Tandem in iframes with third-party cookies blocked: partitioned, SameSite=None, Secure."""
    response.set_cookie(
        name, value, max_age=max_age, path=path, secure=True, httponly=True, samesite="None", partitioned=True
    )


def session_path(launch_id: str) -> str:
    return f"/app/{launch_id}/"


_LAUNCH_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_LAUNCH_PATH = re.compile(r"^/app/([A-Za-z0-9_-]{16,64})/")
#: Flask's session cookie: per launch, scoped like SESSION_COOKIE; it holds only Flask-WTF's CSRF secret.
FORM_COOKIE = "tandem_form"


def launch_id_in_path(path: str) -> str | None:
    match = _LAUNCH_PATH.match(path)
    return match.group(1) if match else None


class LaunchFormSession(SecureCookieSessionInterface):
    """Flask's signed-cookie session, one per launch: scoped to `/app/<launch id>/` like the launch cookie, so
    side-by-side launches in one browser each keep their own CSRF secret and a form from one launch is refused
    by another. Outside a launch there are no forms and no session (Flask's null session)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if launch_id_in_path(request.path) is None:
            return None
        return super().open_session(app, request)

    def get_cookie_name(self, app: Flask) -> str:
        return FORM_COOKIE

    def get_cookie_path(self, app: Flask) -> str:
        launch_id = launch_id_in_path(request.path)
        return session_path(launch_id) if launch_id else "/"


#: The patient's own pages (portal launches): the portal's access, never the care team's.
PORTAL_BLUEPRINTS = ("selfreport", "parking_portal")

#: FHIR ids (and Tandem's record ids) in addresses and forms: checked before any request is sent.
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def check_id(value: str | None, what: str = "id") -> str:
    if value is None or not FHIR_ID.match(value):
        raise app_errors.BadAddress(f"the {what} in the address or form is not a valid id")
    return value


def load_launch() -> Response | None:
    """before_request of every `/app/<launch_id>/…` blueprint: the launch (only for the browser that started it),
    the user's access (refused for anyone but the care team) and the ids in the address — all checked once,
    before any view runs or any request is sent. Flask-WTF's CSRFProtect then checks every POST's token."""
    args = request.view_args or {}
    launch_id = args.get("launch_id")
    if launch_id is None:
        return None
    if not _LAUNCH_ID.match(str(launch_id)):
        raise errors.SessionExpired("no launch session for this request")
    for name, value in args.items():
        if name.endswith("_id") and name != "launch_id":
            check_id(str(value), name.replace("_", " "))
    try:
        session = services().sessions.get(str(launch_id), request.cookies.get(SESSION_COOKIE))
    except errors.SessionExpired:
        # A form posted after its launch ended: kept (parked) when it carries a valid binding, else today's page.
        from smartapp.parking.views import park_ended_post

        parked = park_ended_post(str(launch_id))
        if parked is not None:
            return parked
        raise
    g.launch = session
    if request.blueprint in PORTAL_BLUEPRINTS:
        g.portal = portal_access_for(session)  # the patient's own pages: never the care team's access
        confirm_family_link(session, g.portal)
    else:
        g.access = access_for(session)
    return None


#: How long a confirmed family link holds for one launch before the EHR's RelatedPerson is read again.
FAMILY_LINK_SECONDS = 10 * 60


def confirm_family_link(session: LaunchSession, portal: PortalAccess) -> None:
    """For a family member's portal launch: read their RelatedPerson from the EHR and check it is linked to the
    launch's patient before anything is shown (smartapp.access.check_family_link). Confirmed once per launch
    for a few minutes, so the one-question-per-screen steps do not read the EHR on every screen."""
    if not portal.proxy:
        return
    store = services().store
    cache_key = f"portal:family-link:{session.id}"
    confirmed = f"{portal.answerer}|{portal.patient}"
    if store.get(cache_key) == confirmed:
        return
    try:
        related_person: dict[str, Any] | None = current_ehr().read(
            "RelatedPerson", portal.answerer.split("/")[1]
        )
    except (errors.StoreUnavailable, errors.FHIRUnauthorized):
        raise  # Tandem's store down, or the EHR ended the session: their own pages
    except errors.TandemError:
        related_person = None  # unreadable (not found, not permitted, the EHR down): nothing is confirmed
    check_family_link(portal, related_person)
    store.set(cache_key, confirmed, FAMILY_LINK_SECONDS)


def register_launch_loader(app: Flask) -> None:
    app.before_request(load_launch)


def launch_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """A view that needs the launch `load_launch` loaded for this request (flaskr's `login_required`)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("launch") is None:
            raise errors.SessionExpired("no launch session for this request")
        return view(*args, **kwargs)

    wrapped.launch_required = True  # type: ignore[attr-defined]
    return wrapped


def public_base() -> str:
    """Tandem's address as browsers and EHRs know it: TANDEM_BASE_URL behind a proxy, else the request's host."""
    return (services().settings.base_url or request.host_url).rstrip("/")


def current_ehr() -> FHIRClient:
    """The EHR's FHIR client with this launch's token, made once per request."""
    if "ehr" not in g:
        g.ehr = services().ehr_client(current_launch())
    return cast(FHIRClient, g.ehr)


def current_launch() -> LaunchSession:
    """The launch session loaded for this request by `load_launch` (for the launch id in the address)."""
    session = cast(LaunchSession | None, g.get("launch"))
    if session is None:
        raise errors.SessionExpired("no launch session for this request")
    return session


def caseload_data(iss: str) -> CaseloadData:
    """The registry data this launch may see, loaded once per request (the header, the page and its flags share
    it): the EHR's whole caseload for a user-level launch, or just the patient's for a chart launch (three patient
    searches, whatever the caseload's size)."""
    cache: dict[str, CaseloadData] = g.setdefault("caseload_data", {})
    if iss not in cache:
        access = g.get("access")
        key = access.patient_key if access is not None and not access.caseload else None
        svc = services()
        if key is not None and key.iss == iss:
            cache[iss] = patient_caseload(key).with_ehr_scores({key: svc.ehr_scores.for_patient(key)})
        else:
            cache[iss] = svc.caseload.load().for_issuer(iss).with_ehr_scores(svc.ehr_scores.for_issuer(iss))
    return cache[iss]


def patient_caseload(key: PatientKey) -> CaseloadData:
    """One patient's registry data (registry scores only) by patient searches, once per request: the chart's
    enrolments and Tandem scores, and a chart launch's `caseload_data`."""
    cache: dict[PatientKey, CaseloadData] = g.setdefault("patient_caseload", {})
    if key not in cache:
        cache[key] = services().caseload.load_patient(key)
    return cache[key]


def pending_records() -> list[ScreeningRecord]:
    """Screenings with unfinished write-backs, read once per request."""
    if "pending_records" not in g:
        g.pending_records = services().screenings.pending()
    return cast(list[ScreeningRecord], g.pending_records)


def current_portal() -> PortalAccess:
    portal = cast(PortalAccess | None, g.get("portal"))
    if portal is None:
        raise errors.SessionExpired("no launch session for this request")
    return portal


def current_access() -> Access:
    access = cast(Access | None, g.get("access"))
    if access is None:
        raise errors.SessionExpired("no launch session for this request")
    return access


# --- ids that forms carry -------------------------------------------------------------------------------


def form_fields() -> Markup:
    """The hidden fields every form of a launch page carries (templates call `{{ form_fields() }}`): Flask-WTF's
    CSRF token and a fresh single-use form id. One place, so what every form must carry is added once."""
    from flask_wtf.csrf import generate_csrf

    fields = Markup('<input type="hidden" name="csrf_token" value="{}">').format(generate_csrf())
    # --- single-use form id (smartapp/form_once.py): a replayed form gets its first result, never a second record
    from smartapp.form_once import once_field

    fields += once_field()
    # --- end single-use form id
    # --- the launch binding (a form posted after its launch ended is parked, never lost) ---
    binding = mint_form_binding()
    if binding:
        fields += Markup('<input type="hidden" name="{}" value="{}">').format(FORM_BINDING_FIELD, binding)
    # --- end of the launch binding ---
    return fields


def mint_form_id(kind: str, *binding: str) -> tuple[str, str]:
    """A fresh id for a form (a submission, an enrolment, a contact) and its signature, bound to what the form is
    about (launch, issuer, patient or enrolment): a form cannot name another record's id."""
    value = secrets.token_hex(16)
    return value, sign_form_id(kind, value, *binding)


def sign_form_id(kind: str, value: str, *binding: str) -> str:
    message = "\x1f".join(("form-id", kind, value, *binding)).encode()
    return hmac.new(services().secret_key.encode(), message, hashlib.sha256).hexdigest()[:32]


def form_id_valid(kind: str, value: str, signature: str, *binding: str) -> bool:
    if not re.fullmatch(r"[0-9a-f]{32}", value or ""):
        return False
    return hmac.compare_digest(sign_form_id(kind, value, *binding), signature or "")


def current_user(session: LaunchSession, ehr: FHIRClient) -> Member | None:
    """The signed-in user from `fhirUser` (a relative reference), with a name when the EHR lets us read it."""
    reference = session.context.fhir_user
    if not reference or not session.context.fhir_user_type:
        return None
    relative = f"{session.context.fhir_user_type}/{reference.rstrip('/').split('/')[-1]}"
    try:
        name = display_name(ehr.read_reference(reference))
    except (errors.FHIRForbidden, errors.FHIRNotFound, errors.UnsafeURL, errors.FHIRBadRequest):
        name = None  # the user's own resource is not always readable; the reference still identifies them
    return Member(relative, name)


def header_context(session: LaunchSession, ehr: FHIRClient) -> dict[str, Any]:
    """What every page of a launch shows in its header: the user, the EHR, whether the worklist is open to this
    launch, and the count of open safety follow-ups (each part fails on its own). Forms take their CSRF token
    from Flask-WTF's `csrf_token()`."""
    from smartapp.safety.views import open_safety_count, overdue_safety_count

    reg = services().registrations.get(session.iss)
    try:
        user = current_user(session, ehr)
    except errors.TandemError:
        user = Member(session.context.fhir_user or "", None) if session.context.fhir_user else None
    access = current_access()
    return {
        "launch": session,
        "access": access,
        "ehr_name": reg.label if reg else session.iss,
        "user": user,
        "user_reference": session.context.fhir_user,
        "user_name": user.display if user else None,
        "safety_count": open_safety_count(access),
        "safety_overdue": overdue_safety_count(access),
    }


def ehr_profile(session: LaunchSession) -> tuple[str, dict[str, Any]]:
    """The launch's EHR vendor and its CapabilityStatement ({} when it cannot be read: write-back plans then
    choose nothing), for deciding what may be written back."""
    svc = services()
    reg = svc.registrations.get(session.iss)
    try:
        capability = svc.discovery.capability_statement(session.iss)
    except errors.TandemError:
        capability = {}
    return (reg.vendor.value if reg else "generic"), capability


# --- the launch binding every form carries -----------------------------------------------------------------
# The CSRF token of an ended launch can no longer be checked (its secret lived in the launch's cookie): this
# server-signed binding is what lets such a post be kept (parked) instead of lost. It is bound to the issuer, the
# patient (when the launch has one), the user (fhirUser), the launch and when the page was made; it is an HMAC
# with the app secret, lives TANDEM_FORM_BINDING_HOURS, and only ever lets what the poster typed be parked.

#: The hidden field `form_fields()` adds to every launch form.
FORM_BINDING_FIELD = "form_binding"
#: Every hidden field `form_fields()` adds (CSRF token, single-use id, launch binding): never part of what a
#: person entered. One list, so a field added to every form is never read as an answer.
HIDDEN_FORM_FIELDS = frozenset({"csrf_token", FORM_ONCE_FIELD, FORM_BINDING_FIELD})


def entered_fields(*also: str) -> dict[str, str]:
    """What the person entered in the posted form: every field but the hidden ones every form carries and
    `also` (the form's own controls and signed ids)."""
    return {k: v for k, v in request.form.items() if k not in HIDDEN_FORM_FIELDS and k not in also}


@dataclass(frozen=True)
class FormBinding:
    iss: str
    patient: str | None
    user: str | None
    launch_id: str
    issued_at: int
    #: The page's address (endpoint) the form was served on: parked items say where they were typed.
    page: str | None = None


def _binding_mac(payload: str) -> str:
    key = hashlib.sha256(("form-binding\x1f" + services().secret_key).encode()).digest()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def mint_form_binding() -> str | None:
    """The binding of the launch this page belongs to ('' outside a launch or for a launch with no user and no
    patient: nothing to bind a parked form to)."""
    session = cast(LaunchSession | None, g.get("launch"))
    if session is None or not (session.context.patient or session.context.fhir_user):
        return None
    user = None
    if session.context.fhir_user and session.context.fhir_user_type:
        user = f"{session.context.fhir_user_type}/{session.context.fhir_user.rstrip('/').split('/')[-1]}"
    # A patient's own portal launch may name no patient in context: the patient is then the user (as
    # portal_access_for reads it), so a questionnaire kept after the visit ended is still bound to them.
    patient = session.context.patient or (
        user.split("/", 1)[1] if user and user.startswith("Patient/") else None
    )
    data = {"v": 1, "iss": session.iss, "pat": patient, "usr": user, "lid": session.id,
            "iat": int(time.time()), "page": request.endpoint}  # fmt: skip
    payload = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{payload}.{_binding_mac(payload)}"


def read_form_binding(value: str | None, launch_id: str, *, max_age_seconds: int,
                      now: float | None = None) -> FormBinding | None:  # fmt: skip
    """The binding a form carried, when it is Tandem's (HMAC), for this launch, and not older than allowed;
    None for anything forged, expired, malformed or another launch's."""
    if not value or len(value) > 4096 or value.count(".") != 1:
        return None
    payload, mac = value.split(".")
    if not hmac.compare_digest(_binding_mac(payload), mac):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        binding = FormBinding(str(data["iss"]), data.get("pat"), data.get("usr"), str(data["lid"]),
                              int(data["iat"]), data.get("page"))  # fmt: skip
    except (ValueError, KeyError, TypeError):
        return None
    moment = time.time() if now is None else now
    if binding.launch_id != launch_id or not 0 <= moment - binding.issued_at <= max_age_seconds:
        return None
    return binding
