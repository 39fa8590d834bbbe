"""The quality staff's page: each measure's populations and rate, by stratum, with the patient list behind every
number (CSV), from the last `tandem measures run` for this EHR; and the program outcomes, computed from the registry
as the page loads."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, render_template, request

from fhir_mappings.common.export import csv_text
from fhir_mappings.measures.outcomes import program_outcomes, smi_figures
from fhir_mappings.measures.report import MEASURES
from fhir_mappings.registry.programs import program_or_default
from fhir_mappings.registry.worklist import build_rows
from smartapp import clock
from smartapp.measures.service import kept
from smartapp.request_context import (
    caseload_data,
    current_access,
    current_ehr,
    current_launch,
    header_context,
    launch_required,
    services,
)
from smartapp.smi.page import medical_inputs

bp = Blueprint("measures", __name__, url_prefix="/app/<launch_id>", template_folder="templates")
POPULATIONS = {"initial-population": "Initial population", "denominator": "Denominator",
               "denominator-exclusion": "Exclusions", "denominator-exception": "Exceptions",
               "numerator": "Numerator", "gap": "Care gaps (in the denominator, not in the numerator)"}  # fmt: skip


def _year() -> int:
    try:
        year = int(request.args.get("year") or clock.today().year)
    except ValueError:
        abort(400)
    if not 2000 <= year <= 2100:
        abort(400)
    return year


@bp.get("/measures")
@launch_required
def page(launch_id: str) -> str:
    session = current_launch()
    access = current_access()
    access.check_caseload()
    year = _year()
    result = kept(services(), session.iss, year)
    data = caseload_data(session.iss)
    names = {e.patient_id: e.patient_name for e in data.enrolments}
    outcomes = program_outcomes(data.enrolments, data.scores, clock.today(), year=year)
    smi = [e for e in data.enrolments if e.active and program_or_default(e.program).whole_person is not None]
    figures = smi_figures(build_rows(smi, data.contacts, data.tasks, data.scores, clock.today(),
                                     medical=medical_inputs(services().ehr_medical, session.iss) if smi else {},
                                     social=data.social)) if smi else []  # fmt: skip
    # Lead with the rates: each measure the run computed, in the catalogue's order, and those whose value sets are
    # not complete in this deployment (a rate on a partial value set is not one to report).
    shown = [(key, m) for key, m in MEASURES.items() if result and key in result["measures"]]
    not_ready = [key for key, _ in shown if result and result["measures"][key].get("incomplete")]
    # Measures the run refused: a value set they read was missing or empty (never a rate from a partial list).
    refused = [(key, m, result["refused"][key]) for key, m in MEASURES.items()
               if result and key in result.get("refused", {})]  # fmt: skip
    return render_template("measures.html", **header_context(session, current_ehr()), patient=None,
                           show_banner=False, year=year, result=result, measures=MEASURES, populations=POPULATIONS,
                           shown=shown, not_ready=not_ready, refused=refused,
                           outcomes=outcomes, names=names, smi_figures=figures, smi_count=len(smi))  # fmt: skip


@bp.get("/measures/<key>.csv")
@launch_required
def patients_csv(launch_id: str, key: str) -> Response:
    """The patients of one population of one measure (by default the care gaps), as a spreadsheet."""
    session = current_launch()
    current_access().check_caseload()
    year = _year()
    population = request.args.get("population") or "gap"
    result = kept(services(), session.iss, year)
    found: Any = (result or {}).get("measures", {}).get(key)
    if key not in MEASURES or population not in POPULATIONS or found is None:
        abort(404)
    data = caseload_data(session.iss)
    # The EHR's name and MRN from the extraction; an enrolled patient's from the registry where the EHR gave none.
    people: dict[str, tuple[str, str]] = {pid: (who[0] or "", who[1] or "")
                                          for pid, who in (result or {}).get("people", {}).items()}  # fmt: skip
    names = {e.patient_id: (e.patient_name or "", e.mrn or "") for e in data.enrolments}  # this EHR's only
    rows = []
    # A person works this list by name and MRN: the EHR's internal patient ids stay out of it (issue 28).
    for pid in found["subjects"].get(population, []):
        name, mrn = people.get(pid, ("", ""))
        if not name:
            name, mrn = names.get(pid, ("", mrn))
        rows.append([name or "Name not recorded", mrn])
    return Response(csv_text(("Name", "MRN"), rows),
                    mimetype="text/csv", headers={"Content-Disposition":
                                                  f"attachment; filename={key}-{year}-{population}.csv"})  # fmt: skip
