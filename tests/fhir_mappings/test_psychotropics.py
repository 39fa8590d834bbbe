"""Current psychotropic medications for the case review (issue 28), from the EHR's active MedicationRequests and
MedicationStatements; which count is data (fhir_mappings/data/review/psychotropics.json, WHO ATC N05/N06 classes
and mood stabilisers, matched by ingredient name)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fhir_mappings.registry.psychotropics import (
    PSYCHOTROPICS,
    Psychotropics,
    current_psychotropics,
    load_psychotropics,
)


def _request(text: str, status: str = "active", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "status": status, "intent": "order",
            "medicationCodeableConcept": {"text": text}, "subject": {"reference": "Patient/p1"},
            "authoredOn": "2026-09-01", **extra}  # fmt: skip


@pytest.mark.parametrize(
    ("resource", "group"),
    [
        # ATC N06A antidepressants; N05A antipsychotics; N05B anxiolytics; N05C hypnotics; N06B stimulants.
        (_request("sertraline 50 mg tablet"), "Antidepressant"),
        (_request("Bupropion XL 150 MG Extended Release Oral Tablet"), "Antidepressant"),
        (_request("quetiapine fumarate 200 MG Oral Tablet"), "Antipsychotic"),
        (_request("hydroxyzine 25 mg tablet"), "Anxiolytic"),
        (_request("zolpidem 5 mg tablet"), "Hypnotic or sedative"),
        (_request("methylphenidate ER 18 mg"), "Stimulant or ADHD medication"),
        # Lithium (N05AN) and the antiepileptics used as mood stabilisers (N03A).
        (_request("lithium carbonate 300 mg capsule"), "Mood stabiliser"),
        # Matched on a coding's display when the text is missing.
        (
            {
                **_request(""),
                "medicationCodeableConcept": {"coding": [{"display": "Escitalopram 10 MG Oral Tablet"}]},
            },
            "Antidepressant",
        ),
        # A MedicationStatement (the patient says they take it).
        (
            {
                "resourceType": "MedicationStatement",
                "status": "active",
                "medicationCodeableConcept": {"text": "trazodone 50 mg"},
                "subject": {"reference": "Patient/p1"},
            },
            "Antidepressant",
        ),
        # Not psychotropic, or not current: left out.
        (_request("lisinopril 10 mg tablet"), None),
        (_request("sertraline 50 mg tablet", status="stopped"), None),
        (_request("sertraline 50 mg tablet", status="entered-in-error"), None),
        (
            {
                "resourceType": "MedicationStatement",
                "status": "completed",
                "medicationCodeableConcept": {"text": "fluoxetine"},
            },
            None,
        ),
        # A word that only contains an ingredient's name is not it.
        (_request("prolithiumx cream"), None),
        # Total: nonsense is skipped, never an exception.
        ({"resourceType": "MedicationRequest", "status": "active", "medicationCodeableConcept": 7}, None),
        ("not a resource", None),
    ],
)
def test_which_medications_count_as_psychotropic(resource: Any, group: str | None) -> None:
    found = current_psychotropics([resource])
    assert [m.group for m in found] == ([group] if group else [])


def test_dosage_start_and_source_are_kept_and_an_order_wins_over_a_statement() -> None:
    statement = {"resourceType": "MedicationStatement", "status": "active",
                 "medicationCodeableConcept": {"text": "sertraline 50 mg tablet"}, "dosage": [{"text": "daily"}]}  # fmt: skip
    order = _request("sertraline 50 mg tablet", dosageInstruction=[{"text": "1 tablet by mouth daily"}])
    [medication] = current_psychotropics([statement, order])
    assert (medication.dosage, medication.since, medication.source) == (
        "1 tablet by mouth daily",
        date(2026, 9, 1),
        "ordered",
    )


def test_site_confirmed_rxnorm_codes_count_and_none_are_shipped() -> None:
    # psychotropics.json: no RxNorm code is confirmed in Tandem's references, so none is shipped.
    assert PSYCHOTROPICS.rxnorm == ()
    site = Psychotropics(PSYCHOTROPICS.classes, ("1234567",))
    coded = _request("", medicationCodeableConcept={
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1234567"}], "text": "Brandname"})  # fmt: skip
    assert [m.group for m in current_psychotropics([coded], site)] == ["Psychotropic"]


def test_the_data_file_loads() -> None:
    assert load_psychotropics() == PSYCHOTROPICS
    assert {c.key for c in PSYCHOTROPICS.classes} >= {"antidepressant", "antipsychotic", "mood-stabiliser"}
