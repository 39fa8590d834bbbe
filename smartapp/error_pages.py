"""What a clinician reads when something goes wrong: a title, advice that fits the cause, and the page's status.

Each error class may set any of the three; the rest come from its nearest ancestor in the table, so a new error
class gets sensible copy before anyone writes its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from launch import errors
from smartapp import errors as app_errors

TRY_AGAIN_LATER = "Try again in a minute. If it keeps happening, contact your IT help desk."
RELAUNCH = "Launch Tandem again from the EHR."


@dataclass(frozen=True)
class Copy:
    status: int | None = None
    title: str | None = None
    advice: str | None = None


@dataclass(frozen=True)
class ErrorPage:
    status: int
    title: str
    advice: str
    #: The EHR's own words (an authorization error's error_description), shown as the EHR's, escaped.
    ehr_said: str | None = None


COPY: dict[type[errors.TandemError], Copy] = {
    errors.TandemError: Copy(
        500, "Something went wrong", "Try again. If it keeps happening, contact your IT help desk."
    ),
    errors.ConfigurationError: Copy(
        title="Tandem is not configured correctly",
        advice="Contact your IT help desk: the Tandem configuration needs attention.",
    ),
    errors.StoreUnavailable: Copy(
        503,
        "Tandem is temporarily unavailable",
        "Tandem's session store is not answering, so Tandem cannot check who you are right now. Nothing you "
        "already saved is lost. Try again in a minute; the EHR itself is not affected.",
    ),
    # --- the launch
    errors.LaunchError: Copy(
        400,
        "The launch could not be completed",
        "Close this window and launch Tandem again from the patient's chart.",
    ),
    errors.UnknownIssuer: Copy(
        title="This EHR is not registered with Tandem",
        advice="Ask your IT help desk to register this EHR with Tandem before launching it.",
    ),
    errors.InvalidLaunchRequest: Copy(title="The launch request was incomplete"),
    errors.StateMismatch: Copy(title="This sign-in link has expired or was already used"),
    errors.AuthorizationDenied: Copy(403, "The EHR did not authorize Tandem"),
    errors.DiscoveryError: Copy(502, "The EHR's sign-in service could not be found", TRY_AGAIN_LATER),
    errors.TokenError: Copy(502, "The EHR refused to sign Tandem in"),
    errors.IdTokenInvalid: Copy(
        502,
        "The EHR's identity token could not be verified",
        "Launch Tandem again. If it keeps happening, contact your IT help desk.",
    ),
    errors.SessionExpired: Copy(401, "Your Tandem session has ended", RELAUNCH),
    errors.RegistrationProblem: Copy(
        502,
        "Tandem's registration at this EHR needs attention",
        "Relaunching will not help. Ask your IT help desk to check Tandem's registration at this EHR "
        "(client id, secret or keys, redirect URI, allowed scopes); the details below are for them.",
    ),
    # --- FHIR servers
    errors.FHIRError: Copy(502, "The FHIR server reported an error"),
    errors.FHIRTransportError: Copy(503, "The FHIR server could not be reached", TRY_AGAIN_LATER),
    errors.FHIRTimeout: Copy(504, "The FHIR server took too long to answer"),
    errors.FHIRBadRequest: Copy(title="The FHIR server refused the request"),
    errors.FHIRUnauthorized: Copy(401, "The EHR no longer accepts this session", RELAUNCH),
    errors.FHIRForbidden: Copy(
        403,
        "You do not have permission for this in the EHR",
        "Ask your IT help desk whether Tandem has been granted this access.",
    ),
    errors.FHIRNotFound: Copy(404, "The record was not found"),
    errors.FHIRConflict: Copy(
        409,
        "Someone else changed this record",
        "Reload the page to see the latest version, then make your change again.",
    ),
    errors.FHIRUnprocessable: Copy(422, "The FHIR server rejected the data"),
    errors.FHIRRateLimited: Copy(503, "The FHIR server is busy", "Try again in a minute."),
    errors.FHIRServerError: Copy(502, "The FHIR server had an internal error", TRY_AGAIN_LATER),
    errors.UnsafeURL: Copy(502, "The FHIR server returned a link Tandem will not follow"),
    errors.MalformedResource: Copy(title="The FHIR server returned data Tandem could not read"),
    # --- the application
    app_errors.NotCareTeam: Copy(
        403,
        "Tandem is for the care team",
        "Tandem is used by your care team inside the clinic's record system. Your care team can tell you "
        "about your results and your care plan. Questionnaires your care team asks you to answer open from the "
        "patient portal.",
    ),
    app_errors.NotPermitted: Copy(
        403,
        "This launch does not give access to that",
        "You opened Tandem from one patient's chart, so it shows that patient only. Open the worklist from the "
        "EHR's Tandem worklist activity to see the caseload.",
    ),
    app_errors.NotRecommendationMarker: Copy(
        403,
        "Only the care manager and the PCP mark recommendations",
        "What became of a psychiatric consultant's recommendation is marked by the patient's care manager or "
        "PCP, as the care team lists them in the registry. Nothing was changed.",
    ),
    app_errors.UnknownPatient: Copy(
        409,
        "The EHR sent a patient that its FHIR server does not know",
        "Tandem stopped here so that nothing is recorded under a patient nobody can find. Close this window and "
        "open Tandem again from the patient's chart. If it happens again, contact your IT help desk: Tandem's "
        "registration at this EHR may point to the wrong FHIR server (FHIR base URL), or the patient's record "
        "may have been merged or moved.",
    ),
    app_errors.BadAddress: Copy(
        400, "This address is not right", "Check the address, or go back and follow a link in Tandem."
    ),
    app_errors.FormExpired: Copy(
        403,
        "This form has expired",
        "Go back, reload the page, and submit the form again. Nothing was saved from this attempt.",
    ),
    app_errors.NotLinkedToPatient: Copy(
        403,
        "You are not linked to this patient in the clinic's records",
        "The clinic's record system does not list you as a family member or carer of this patient, so Tandem "
        "shows nothing about them. If you care for this patient, ask the clinic to update their records, then "
        "open the questionnaires from the patient portal again.",
    ),
    app_errors.LinkNotConfirmed: Copy(
        403,
        "Tandem could not confirm that you care for this patient",
        "The clinic's record system did not let Tandem check that you are linked to this patient, so Tandem "
        "shows nothing about them. Try again later from the patient portal. If it keeps happening, contact the "
        "clinic.",
    ),
    app_errors.FormInProgress: Copy(
        409,
        "This form is still being saved",
        "The same form was sent twice; the first is still being saved, and it is saved only once. Wait a "
        "moment, then open the page again to see the result.",
    ),
}


REGISTRATION_TITLE = "Tandem's registration at this EHR needs attention"

#: The EHR's answer to the authorization request, by its `error` code (RFC 6749 §4.1.2.1; OpenID Connect Core
#: §3.1.2.6 for the sign-in ones): the advice that fits, whether or not the answer came back with `state`.
OAUTH_ERROR_COPY: dict[str, Copy] = {
    "access_denied": Copy(
        403,
        "The EHR did not authorize Tandem",
        "Access to Tandem was declined, by you or by a rule in the EHR. If that was not intended, launch Tandem "
        "again and allow access; if it keeps happening, ask your IT help desk whether your account may use Tandem.",
    ),
    "invalid_request": Copy(
        400,
        "The EHR refused Tandem's sign-in request",
        "Launch Tandem again from the EHR. If it keeps happening, contact your IT help desk; the details below "
        "are for them.",
    ),
    "unauthorized_client": Copy(
        502,
        REGISTRATION_TITLE,
        "Relaunching will not help. Ask your IT help desk to check that this EHR allows Tandem to sign in (its "
        "client id and sign-in method); the details below are for them.",
    ),
    "unsupported_response_type": Copy(
        502,
        REGISTRATION_TITLE,
        "Relaunching will not help. The EHR does not offer Tandem the sign-in method SMART apps use; ask your IT "
        "help desk to check Tandem's registration at this EHR. The details below are for them.",
    ),
    "invalid_scope": Copy(
        502,
        REGISTRATION_TITLE,
        "Relaunching will not help. The EHR does not allow the access Tandem asks for; ask your IT help desk to "
        "check which access Tandem's registration at this EHR allows. The details below are for them.",
    ),
    "server_error": Copy(
        502,
        "The EHR's sign-in service had an error",
        "Launch Tandem again in a minute. If it keeps happening, contact your IT help desk.",
    ),
    "temporarily_unavailable": Copy(
        503,
        "The EHR's sign-in service is busy",
        "Launch Tandem again in a few minutes. If it keeps happening, contact your IT help desk.",
    ),
    "login_required": Copy(
        401,
        "Sign in to the EHR first",
        "Sign in to the EHR, then launch Tandem again from the patient's chart.",
    ),
    "interaction_required": Copy(
        401,
        "Sign in to the EHR first",
        "Sign in to the EHR, then launch Tandem again from the patient's chart.",
    ),
    "consent_required": Copy(
        403,
        "The EHR needs your consent for Tandem",
        "Launch Tandem again and allow access when the EHR asks.",
    ),
}


def _nearest(error: errors.TandemError, part: str) -> object:
    for cls in type(error).__mro__:
        copy = COPY.get(cls) if issubclass(cls, errors.TandemError) else None
        value = getattr(copy, part) if copy is not None else None
        if value is not None:
            return value
    return getattr(COPY[errors.TandemError], part)


def page_for(error: errors.TandemError) -> ErrorPage:
    """The copy for `error`: each part from the nearest class in its ancestry that sets it; for the EHR's answer
    to the authorization request, the copy of its error code first, and the EHR's own description."""
    copy = Copy()
    said = None
    if (
        isinstance(error, errors.AuthorizationDenied | errors.RegistrationProblem)
        and "ehr_description" in error.detail
    ):
        copy = OAUTH_ERROR_COPY.get(str(error.detail.get("oauth_error")), copy)
        description = error.detail.get("ehr_description")
        said = description if isinstance(description, str) and description.strip() else None
    return ErrorPage(
        status=int(str(copy.status or _nearest(error, "status"))),
        title=str(copy.title or _nearest(error, "title")),
        advice=str(copy.advice or _nearest(error, "advice")),
        ehr_said=said,
    )
