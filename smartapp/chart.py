"""The patient's chart view inside the EHR (first page: proves the launch context)."""

from __future__ import annotations

import logging
from datetime import date

from flask import Blueprint, Response, redirect, render_template, url_for

from fhir_mappings.patient import (
    administrative_gender,
    age_in_years,
    birth_date_text,
    display_name,
    identifier_value,
)
from launch import errors

from .web import check_csrf, csrf_token, current_launch, services

log = logging.getLogger(__name__)
bp = Blueprint("chart", __name__, url_prefix="/app/<launch_id>")


@bp.get("/")
def home(launch_id: str) -> str:
    session = current_launch(launch_id)
    svc = services()
    ehr = svc.ehr_client(session)
    context = session.context
    patient = ehr.read("Patient", context.patient) if context.patient else None
    user_name = None
    if context.fhir_user:
        try:
            user_name = display_name(ehr.read_reference(context.fhir_user))
        except (errors.FHIRForbidden, errors.FHIRNotFound, errors.UnsafeURL, errors.FHIRBadRequest):
            user_name = (
                None  # the user's own resource is not always readable; the reference still identifies them
            )
    reg = svc.registrations.get(session.iss)
    return render_template(
        "chart.html",
        launch=session,
        ehr_name=reg.label if reg else session.iss,
        patient=patient,
        patient_name=display_name(patient),
        birth_date=birth_date_text(patient),
        age=age_in_years(patient, date.today()),
        gender=administrative_gender(patient),
        mrn=identifier_value(patient),
        show_banner=context.need_patient_banner,
        user_reference=context.fhir_user,
        user_name=user_name,
        csrf_token=csrf_token(session),
    )


@bp.post("/end")
def end(launch_id: str) -> Response:
    session = current_launch(launch_id)
    check_csrf(session)
    services().sessions.end(session.id)
    return redirect(url_for("site.ended"), code=303)  # type: ignore[return-value]
