"""What a clinician reads when the EHR refuses a write-back or has not answered yet: words, never HTTP status
codes or FHIR resource type names. The server's own words go to `technical_detail`, shown only under
"Details for IT"."""

from __future__ import annotations

from collections.abc import Sequence

from launch import errors

#: What Tandem was writing, in words (by the plan's resource types).
_WHAT = {
    ("DocumentReference",): ("this note", "notes"),
    ("QuestionnaireResponse", "Observation"): ("these results", "questionnaire results"),
}
_KEPT = "The result is saved in Tandem's registry"

#: Refusal kind → (why the EHR refused, in words; what to ask IT). `{things}` is "notes" or "questionnaire
#: results". Kinds: 403 with `insufficient_scope` (SMART App Launch: the token lacks the scope), 403 otherwise (the
#: user's own rights, or an API not attached to the client: ehr-integration.md §4), 405 and 400 (the server does not
#: offer this write), 422 (the content was refused), 404/409 and the rest.
REFUSALS: dict[str, tuple[str, str]] = {
    "insufficient-scope": (
        "it does not allow Tandem to add {things} in this kind of launch",
        "ask IT to allow Tandem to add {things} in its registration at the EHR, then press Retry now",
    ),
    "forbidden": (
        "Tandem or this user is not allowed to add {things} there",
        "ask IT to check the user's rights and Tandem's registration at the EHR",
    ),
    "not-supported": (
        "this EHR does not take {things} from Tandem",
        "ask IT whether the EHR can accept them, or record it in the chart yourself",
    ),
    "unprocessable": (
        "it found something in it that it could not accept",
        "ask IT to look at the details below",
    ),
    "other": (
        "it answered with an error Tandem could not recover from",
        "ask IT to look at the details below, then press Retry now",
    ),
}


def refusal_kind(error: errors.TandemError) -> str:
    """Which row of REFUSALS an error is."""
    issues = " ".join(getattr(error, "issues", []) or [])
    if isinstance(error, errors.FHIRForbidden):
        return "insufficient-scope" if "insufficient_scope" in issues else "forbidden"
    if isinstance(error, errors.FHIRBadRequest):  # 400, and 405 (the transport maps both here)
        return "not-supported"
    if isinstance(error, errors.FHIRUnprocessable):
        return "unprocessable"
    return "other"


def _what(plan_types: Sequence[str]) -> tuple[str, str]:
    return _WHAT.get(tuple(plan_types), ("this result", "results"))


def refusal_words(error: errors.TandemError, plan_types: Sequence[str]) -> str:
    """'The EHR did not accept this note from Tandem (it does not allow Tandem to add notes in this kind of
    launch). The result is saved in Tandem's registry; ask IT to …'"""
    this, things = _what(plan_types)
    why, ask = REFUSALS[refusal_kind(error)]
    return (
        f"The EHR did not accept {this} from Tandem ({why.format(things=things)}). "
        f"{_KEPT}; {ask.format(things=things)}."
    )


def waiting_words(error: errors.TandemError, is_ehr: bool = True) -> str:
    """A transient failure, in words: Tandem will try again by itself."""
    where = "The EHR" if is_ehr else "The registry"
    if isinstance(error, errors.FHIRTimeout):
        return f"{where} did not answer in time."
    if isinstance(error, errors.FHIRRateLimited):
        return f"{where} asked Tandem to slow down."
    if isinstance(error, (errors.FHIRUnauthorized, errors.SessionExpired, errors.TokenError)):
        return "The EHR sign-in of this launch has ended; the write waits for the next launch."
    if isinstance(error, errors.FHIRServerError):
        return f"{where} had a problem of its own."
    return f"{where} could not be reached."


def technical_detail(error: errors.TandemError) -> str:
    """The server's words and status, for IT (never a token: the transport's messages carry none)."""
    return error.message + "".join(f" ({issue})" for issue in getattr(error, "issues", []) or [])
