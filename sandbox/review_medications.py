"""The demo's psychotropic medications (issue 28): a few active orders and patient-reported medications for the
patients with a PHQ-9 history, so the psychiatric case review shows its "current psychotropic medications" from
the EHR; one non-psychotropic order shows that only psychotropics are listed. Synthetic, deterministic."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from .data import Cohort

#: (medication text, dosage, days since ordered, status) by the patient's place in the cohort; cycled.
ORDERS = (
    (("sertraline 50 mg tablet", "1 tablet by mouth daily", 120, "active"),),
    (("sertraline 50 mg tablet", "1 tablet by mouth daily", 90, "active"),
     ("lisinopril 10 mg tablet", "1 tablet by mouth daily", 400, "active")),
    (("sertraline 50 mg tablet", "1 tablet by mouth daily", 150, "active"),
     ("bupropion XL 150 mg tablet", "1 tablet by mouth every morning", 60, "active"),
     ("escitalopram 10 mg tablet", "1 tablet by mouth daily", 300, "stopped")),
    (),
    (("sertraline 50 mg tablet", "1 tablet by mouth daily", 200, "active"),
     ("hydroxyzine 25 mg tablet", "1 tablet by mouth as needed for anxiety", 40, "active")),
)  # fmt: skip
#: Reported by the patient (MedicationStatement), every third patient with orders.
REPORTED = ("trazodone 50 mg tablet", "1 tablet at bedtime as needed for sleep")


def add_psychotropics(cohort: Cohort, today: date) -> None:
    """Orders and statements for the cohort's patients with a PHQ-9 history (the demo's caseload)."""
    with_phq = sorted({o["subject"]["reference"].split("/")[-1] for o in cohort.of_type("Observation")
                       if "-phq9-" in str(o.get("id", ""))})  # fmt: skip
    for n, pid in enumerate(with_phq):
        ref = {"reference": f"Patient/{pid}"}
        for m, (text, dosage, days, status) in enumerate(ORDERS[n % len(ORDERS)]):
            cohort.add(_order(f"{pid}-psy-{m}", ref, text, dosage, today - timedelta(days=days), status))
        if n % 3 == 1:
            cohort.add({
                "resourceType": "MedicationStatement", "id": f"{pid}-psy-reported", "status": "active",
                "medicationCodeableConcept": {"text": REPORTED[0]}, "subject": ref,
                "effectiveDateTime": (today - timedelta(days=30)).isoformat(),
                "dosage": [{"text": REPORTED[1]}],
            })  # fmt: skip


def _order(
    rid: str, ref: dict[str, str], text: str, dosage: str, authored: date, status: str
) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
        "medicationCodeableConcept": {"text": text}, "subject": ref, "authoredOn": authored.isoformat(),
        "dosageInstruction": [{"text": dosage}],
    }  # fmt: skip
