"""The SMI parts of the patient page that write: the social-status questions, kept as registry Observations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, flash, redirect, request, url_for

from fhir_mappings.registry.programs import program_or_default
from fhir_mappings.smi.social import parse_form, social_observation
from launch import errors
from smartapp import clock
from smartapp.caseload.views import enrolment_page, registry_enrolment
from smartapp.outgoing import put_transaction
from smartapp.request_context import (
    current_ehr,
    current_launch,
    current_user,
    entered_fields,
    launch_required,
    services,
)

bp = Blueprint("smi", __name__, url_prefix="/app/<launch_id>", template_folder="templates")


@bp.post("/enrolments/<careplan_id>/social")
@launch_required
def record_social(launch_id: str, careplan_id: str) -> Any:
    """Record the social-status answers asked on one day (answering again that day corrects them)."""
    enrolment = registry_enrolment(careplan_id)
    if not program_or_default(enrolment.program).tracks_social:
        raise errors.InvalidLaunchRequest("this enrolment's program does not track social status")
    if not enrolment.active:
        raise errors.InvalidLaunchRequest(
            "this enrolment has ended: social status is recorded for active ones"
        )
    entry, problem = parse_form(request.form, clock.today(), enrolment.start)
    if entry is None:  # the form comes back with what was entered
        return enrolment_page(launch_id, careplan_id, social_problem=problem,
                              entered=entered_fields())  # fmt: skip
    svc = services()
    registry = svc.registry
    if registry is None:
        raise errors.ConfigurationError("no registry store is configured (TANDEM_REGISTRY_URL)")
    user = current_user(current_launch(), current_ehr())
    recorded = datetime.now(UTC).replace(microsecond=0)
    observations = [social_observation(enrolment.key, domain, answer, entry.day, recorded,
                                       user.reference if user else None) for domain, answer in entry.answers]  # fmt: skip
    try:
        registry.transaction(put_transaction(observations))  # the day's answers together, or none
    except (errors.LaunchError, errors.FHIRUnauthorized):
        raise
    except errors.TandemError as error:
        return enrolment_page(launch_id, careplan_id, social_problem=(
            f"The registry did not save the answers ({error.message}). Try again in a moment."),
            entered=entered_fields(), problem_status=503)  # fmt: skip
    svc.caseload.invalidate(enrolment.key)
    flash(f"Social status saved: {len(entry.answers)} answer{'s' if len(entry.answers) != 1 else ''} for "
          f"{entry.day.isoformat()}.")  # fmt: skip
    return redirect(url_for("caseload.enrolment_page", launch_id=launch_id, careplan_id=careplan_id) + "#life",
                    code=303)  # fmt: skip
