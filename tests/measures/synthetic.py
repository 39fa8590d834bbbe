"""A seeded synthetic population for the differential test against the official eCQM engine (issue 29).

Every patient is built for one *path* of CMS2 (v0.4.001) or CMS159 (v0.3.000): a population it should reach or
just miss — an age on its boundary, a day just inside or outside a window, a time near midnight whose UTC day is
another day, each exclusion and exception, SNOMED CT and ICD-10-CM diagnoses, PHQ-9 and PHQ-9M (teen), a screening
whose value is not coded, encounters coded in CPT, HCPCS and SNOMED CT. The paths say what the patient is *built*
for, never what the answer is: the answer is the official engine's (fqm-execution on the measure bundles), and
Tandem must give the same one. The path name is printed with any disagreement.

Codes come from the official value-set expansions in the measure bundles (`fqm.valueset_codes`), drawn at random
(seeded) so the population covers each set's code systems; the fixed codes are the ones the CQL declares itself.
Each resource carries its QI-Core 6 `meta.profile` (fqm-execution trusts meta.profile by default: a retrieve sees
only resources tagged with its profile) and PHQ-9 totals are `valueInteger` (the CQL casts the value to Integer).

Source of every rule below: the measures' CQL in ../shared/reference/ecqm/ (CMS2FHIRPCSDepressionScreenAndFollowUp
0.4.001, CMS159FHIRDepressionRemissionatTwelveMonths 0.3.000) and its README's notes on fqm-execution.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

QICORE = "http://hl7.org/fhir/us/qicore/StructureDefinition/"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
NOT_DONE = "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-notDoneReason"

#: The measurement period the population is built around (both measures run for 2026).
YEAR = 2026
PERIOD_START, PERIOD_END = date(YEAR, 1, 1), date(YEAR, 12, 31)
#: CMS159's Denominator Identification Period: [start of MP - 14 months, start of MP - 2 months).
DIP_START, DIP_LAST = date(YEAR - 2, 11, 1), date(YEAR - 1, 10, 31)

# The value sets by OID (the CQL's `valueset` declarations).
VS = {
    "cms2_encounter": "2.16.840.1.113883.3.600.1916",  # Encounter to Screen for Depression
    "pt_eval": "2.16.840.1.113883.3.526.3.1022",  # Physical Therapy Evaluation
    "telephone": "2.16.840.1.113883.3.464.1003.101.12.1080",  # Telephone Visits
    "bipolar": "2.16.840.1.113883.3.67.1.101.1.128",
    "adult_meds": "2.16.840.1.113883.3.526.3.1566",
    "teen_meds": "2.16.840.1.113883.3.526.3.1567",
    "adult_follow_up": "2.16.840.1.113883.3.526.3.1568",
    "teen_follow_up": "2.16.840.1.113883.3.526.3.1569",
    "adult_referral": "2.16.840.1.113883.3.526.3.1571",
    "teen_referral": "2.16.840.1.113883.3.526.3.1570",
    "medical_reason": "2.16.840.1.113883.3.526.3.1007",
    "office_visit": "2.16.840.1.113762.1.4.1080.5",  # Contact or Office Visit
    "major_depression": "2.16.840.113883.3.67.1.101.3.2444",
    "dysthymia": "2.16.840.1.113883.3.67.1.101.1.254",
    "phq9": "2.16.840.1.113883.3.67.1.101.1.263",  # PHQ 9 and PHQ 9M Tools
    "inpatient": "2.16.840.1.113883.3.666.5.307",
    "hospice_ambulatory": "2.16.840.1.113883.3.526.3.1584",
    "hospice_diagnosis": "2.16.840.1.113883.3.464.1003.1165",
    "hospice_encounter": "2.16.840.1.113883.3.464.1003.1003",
    "palliative_diagnosis": "2.16.840.1.113883.3.464.1003.1167",
    "palliative_encounter": "2.16.840.1.113883.3.464.1003.101.12.1090",
    "palliative_intervention": "2.16.840.1.113883.3.464.1003.198.12.1135",
    "personality": "2.16.840.1.113883.3.67.1.101.1.246",
    "pdd": "2.16.840.1.113883.3.464.1003.105.12.1152",
    "schizophrenia": "2.16.840.1.113883.3.464.1003.105.12.1104",
}
# The direct-reference codes the CQL declares.
ADULT_SCREEN, TEEN_SCREEN = "73832-8", "73831-0"
NEGATIVE, POSITIVE, DECLINED = "428171000124102", "428181000124104", "720834000"
HOSPICE_MDS, FACIT_PAL, YES = "45755-6", "71007-9", "373066001"
HOSPICE_HOME, HOSPICE_FACILITY = "428361000124107", "428371000124100"

#: A not-done reason the measure does not accept ("Procedure refused for religious reason", not in Medical Reason;
#: `population` checks that).
OTHER_REASON = "183945002"
#: A dose unit in UCUM (FHIRHelpers refuses a quantity whose unit is not UCUM).
TABLET = {"unit": "{tablet}", "system": "http://unitsofmeasure.org", "code": "{tablet}"}
#: Offsets whose 10:00–14:00 local times all fall on the same UTC day (ordinary times).
OFFSETS = ("-08:00", "-06:00", "-05:00", "Z", "+01:00", "+05:30", "+09:00")


def at(day: date, hour: int = 10, minute: int = 0, offset: str = "-05:00") -> str:
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}:00{offset if offset != 'Z' else 'Z'}"


def late_evening(day: date) -> str:
    """23:30 on `day` in New York winter time: already the next day in UTC."""
    return at(day, 23, 30, "-05:00")


def early_morning(day: date) -> str:
    """00:30 on `day` in Tokyo: still the day before in UTC."""
    return at(day, 0, 30, "+09:00")


@dataclass
class Patient:
    """One synthetic patient: the path it was built for and its resources."""

    pid: str
    measure: str
    path: str
    resources: list[dict[str, Any]] = field(default_factory=list)

    def bundle(self) -> dict[str, Any]:
        return {"resourceType": "Bundle", "id": f"bundle-{self.pid}", "type": "collection",
                "entry": [{"fullUrl": f"urn:uuid:{r['resourceType']}-{r['id']}", "resource": r}
                          for r in self.resources]}  # fmt: skip


class Builder:
    """Adds one patient's resources, each with its QI-Core profile, ids unique within the population."""

    def __init__(
        self, patient: Patient, rng: random.Random, codes: Mapping[str, list[tuple[str, str]]]
    ) -> None:
        self.p, self.rng, self.codes = patient, rng, codes
        self.n = 0

    # -- helpers --------------------------------------------------------------------------------------------
    def code(self, vs: str, system: str | None = None) -> tuple[str, str]:
        """A random code of the value set (of one code system when given)."""
        found = [c for c in self.codes[VS[vs]] if system is None or c[0] == system]
        if not found:
            raise ValueError(f"value set {vs} has no code in {system}")
        return self.rng.choice(found)

    def offset(self) -> str:
        return self.rng.choice(OFFSETS)

    def when(self, day: date) -> str:
        """An ordinary time on `day` (10:00–14:00 in a random zone: the same day in UTC)."""
        return at(day, self.rng.randint(10, 13), self.rng.choice((0, 15, 30, 45)), self.offset())

    def _add(self, resource_type: str, profile: str, body: dict[str, Any]) -> dict[str, Any]:
        self.n += 1
        resource = {"resourceType": resource_type, "id": f"{self.p.pid}-{self.n}",
                    "meta": {"profile": [QICORE + profile]}, **body}  # fmt: skip
        if resource_type != "Patient":
            resource["subject"] = {"reference": f"Patient/{self.p.pid}"}
        self.p.resources.append(resource)
        return resource

    # -- resources ------------------------------------------------------------------------------------------
    def patient(self, born: date, deceased: str | bool | None = None) -> dict[str, Any]:
        self.n += 1
        resource: dict[str, Any] = {"resourceType": "Patient", "id": self.p.pid,
                                    "meta": {"profile": [QICORE + "qicore-patient"]},
                                    "name": [{"family": "Synthetic", "given": [self.p.path]}],
                                    "gender": self.rng.choice(("female", "male")), "birthDate": born.isoformat()}  # fmt: skip
        if isinstance(deceased, bool):
            resource["deceasedBoolean"] = deceased
        elif deceased:
            resource["deceasedDateTime"] = deceased
        self.p.resources.insert(0, resource)
        return resource

    def encounter(self, code: tuple[str, str], start: str, end: str | None = None, status: str = "finished",
                  discharge: str | None = None) -> dict[str, Any]:  # fmt: skip
        body: dict[str, Any] = {"status": status,
                                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                          "code": "IMP" if discharge else "AMB"},
                                "type": [{"coding": [{"system": code[0], "code": code[1]}]}],
                                "period": {"start": start, "end": end or start}}  # fmt: skip
        if discharge:
            body["hospitalization"] = {
                "dischargeDisposition": {"coding": [{"system": SCT, "code": discharge}]}
            }
        return self._add("Encounter", "qicore-encounter", body)

    def condition(self, code: tuple[str, str], onset: str | None, *, category: str = "problem-list-item",
                  clinical: str = "active", verification: str = "confirmed", abatement: str | None = None,
                  recorded: str | None = None, onset_period: tuple[str, str | None] | None = None) -> dict[str, Any]:  # fmt: skip
        profile = ("qicore-condition-encounter-diagnosis" if category == "encounter-diagnosis"
                   else "qicore-condition-problems-health-concerns")  # fmt: skip
        body: dict[str, Any] = {
            "clinicalStatus": {"coding": [{"system": CLINICAL, "code": clinical}]},
            "verificationStatus": {"coding": [{"system": VERIFICATION, "code": verification}]},
            "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
            "code": {"coding": [{"system": code[0], "code": code[1]}]},
        }  # fmt: skip
        if onset:
            body["onsetDateTime"] = onset
        if onset_period:
            body["onsetPeriod"] = {
                "start": onset_period[0],
                **({"end": onset_period[1]} if onset_period[1] else {}),
            }
        if abatement:
            body["abatementDateTime"] = abatement
        if recorded:
            body["recordedDate"] = recorded
        return self._add("Condition", profile, body)

    def observation(self, code: tuple[str, str], effective: str | None, *, status: str = "final",
                    value: dict[str, Any] | None = None, issued: str | None = None,
                    extension: list[dict[str, Any]] | None = None, profile: str = "qicore-observation-screening-assessment"
                    ) -> dict[str, Any]:  # fmt: skip
        body: dict[str, Any] = {"status": status,
                                "category": [{"coding": [{"system": OBS_CATEGORY, "code": "survey"}]}],
                                "code": {"coding": [{"system": code[0], "code": code[1]}]}}  # fmt: skip
        if effective:
            body["effectiveDateTime"] = effective
        if issued:
            body["issued"] = issued if "T" in issued else issued + "T12:00:00Z"
        if value:
            body.update(value)
        if extension:
            body["extension"] = extension
        return self._add("Observation", profile, body)

    def screen(self, when: str, result: str | None, *, adult: bool = True, status: str = "final",
               uncoded: str | None = None) -> dict[str, Any]:  # fmt: skip
        """A CMS2 depression screening: positive/negative coded, or a value that is not coded (`uncoded`)."""
        value: dict[str, Any]
        if uncoded is not None:
            value = {"valueString": uncoded}
        else:
            value = {"valueCodeableConcept": {"coding": [{"system": SCT, "code": result}]}}
        return self.observation((LOINC, ADULT_SCREEN if adult else TEEN_SCREEN), when, status=status, value=value,
                                issued=when)  # fmt: skip

    def not_screened(self, issued: str, reason: tuple[str, str], *, adult: bool = True) -> dict[str, Any]:
        ext = [
            {"url": NOT_DONE, "valueCodeableConcept": {"coding": [{"system": reason[0], "code": reason[1]}]}}
        ]
        return self.observation((LOINC, ADULT_SCREEN if adult else TEEN_SCREEN), None, status="cancelled",
                                issued=issued, extension=ext, profile="qicore-observationcancelled")  # fmt: skip

    def phq9(self, when: str, score: int | None, *, status: str = "final", teen: bool = False,
             quantity: bool = False) -> dict[str, Any]:  # fmt: skip
        code = self.code("phq9")
        if teen:  # PHQ-9 modified for teens (PHQ-9M) is the set's other LOINC code
            code = next(c for c in self.codes[VS["phq9"]] if c[1] != "44261-6")
        elif len(self.codes[VS["phq9"]]) > 1:
            code = next(c for c in self.codes[VS["phq9"]] if c[1] == "44261-6")
        value = ({"valueQuantity": {"value": score, "unit": "{score}", "system": "http://unitsofmeasure.org",
                                    "code": "{score}"}} if quantity else {"valueInteger": score})  # fmt: skip
        return self.observation(code, when, status=status, value=value, issued=when)

    def service_request(self, code: tuple[str, str], authored: str, status: str = "active", intent: str = "order",
                        do_not_perform: bool | None = None) -> dict[str, Any]:  # fmt: skip
        body: dict[str, Any] = {"status": status, "intent": intent, "authoredOn": authored,
                                "code": {"coding": [{"system": code[0], "code": code[1]}]}}  # fmt: skip
        if do_not_perform is not None:
            body["doNotPerform"] = do_not_perform
        return self._add("ServiceRequest", "qicore-servicerequest", body)

    def procedure(self, code: tuple[str, str], performed: str | tuple[str, str], status: str = "completed"
                  ) -> dict[str, Any]:  # fmt: skip
        body: dict[str, Any] = {"status": status, "code": {"coding": [{"system": code[0], "code": code[1]}]}}
        if isinstance(performed, tuple):
            body["performedPeriod"] = {"start": performed[0], "end": performed[1]}
        else:
            body["performedDateTime"] = performed
        return self._add("Procedure", "qicore-procedure", body)

    def medication(self, code: tuple[str, str], authored: str, status: str = "active", intent: str = "order",
                   days: int = 30) -> dict[str, Any]:  # fmt: skip
        """An antidepressant order with a daily dose and a supply, so its medication period has an end."""
        body = {"status": status, "intent": intent, "authoredOn": authored,
                "medicationCodeableConcept": {"coding": [{"system": code[0], "code": code[1]}]},
                "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                                                             "boundsPeriod": {"start": authored}}},
                                       "doseAndRate": [{"doseQuantity": {"value": 1, **TABLET}}]}],
                "dispenseRequest": {"quantity": {"value": days, **TABLET},
                                    "expectedSupplyDuration": {"value": days, "unit": "d",
                                                               "system": "http://unitsofmeasure.org", "code": "d"}}}  # fmt: skip
        return self._add("MedicationRequest", "qicore-medicationrequest", body)


Path_ = Callable[[Builder], None]


def _adult_born(b: Builder) -> date:
    return date(b.rng.randint(1950, 1995), b.rng.randint(1, 12), b.rng.randint(1, 28))


def _visit_day(b: Builder) -> date:
    """An ordinary day of the measurement period, away from its ends."""
    return PERIOD_START + timedelta(days=b.rng.randint(20, 340))


# ---------------------------------------------------------------------------------------------------------------
# CMS2: Preventive Care and Screening: Screening for Depression and Follow-Up Plan (v0.4.001)
# ---------------------------------------------------------------------------------------------------------------


def _cms2(born: date | None = None, *, visit: date | None = None, visit_code: str | tuple[str, str] = "cms2_encounter",
          system: str | None = None, start: str | None = None, end: str | None = None, status: str = "finished",
          screen: str | None = NEGATIVE, adult_screen: bool | None = None, screen_offset_days: int = 0,
          screen_status: str = "final", screen_time: str | None = None, uncoded: str | None = None,
          extra: Callable[[Builder, date, bool], None] | None = None) -> Path_:  # fmt: skip
    """A CMS2 patient: one qualifying visit, one screening `screen_offset_days` before it (None: no screening),
    then whatever `extra` adds (given the visit day and whether the patient is an adult)."""

    def build(b: Builder) -> None:
        birth = born or _adult_born(b)
        b.patient(birth)
        day = visit or _visit_day(b)
        code = visit_code if isinstance(visit_code, tuple) else b.code(visit_code, system)
        b.encounter(code, start or b.when(day), end, status=status)
        age = YEAR - birth.year - (1 if (birth.month, birth.day) > (1, 1) else 0)
        adult = age >= 18 if adult_screen is None else adult_screen
        if screen is not None or uncoded is not None:
            when = screen_time or b.when(day - timedelta(days=screen_offset_days))
            b.screen(when, screen, adult=adult, status=screen_status, uncoded=uncoded)
        if extra:
            extra(b, day, adult)

    return build


def _positive_with(kind: str, *, days_after: int = 0, status: str | None = None, teen_sets: bool | None = None,
                   same_day_after_visit: bool = False) -> Callable[[Builder, date, bool], None]:  # fmt: skip
    """A follow-up to a positive screening: a referral, a follow-up procedure or an antidepressant order."""

    def extra(b: Builder, day: date, adult: bool) -> None:
        teen = (not adult) if teen_sets is None else teen_sets
        prefix = "teen" if teen else "adult"
        when = b.when(day + timedelta(days=days_after))
        if kind == "referral":
            b.service_request(b.code(f"{prefix}_referral"), when, status=status or "active")
        elif kind == "procedure":
            visit = b.p.resources[1]["period"]["start"]
            b.procedure(b.code(f"{prefix}_follow_up"), when if (days_after or same_day_after_visit) else visit,
                        status=status or "completed")  # fmt: skip
        else:
            b.medication(b.code(f"{prefix}_meds"), when, status=status or "active")

    return extra


def _then(*steps: Callable[[Builder, date, bool], None]) -> Callable[[Builder, date, bool], None]:
    def extra(b: Builder, day: date, adult: bool) -> None:
        for step in steps:
            step(b, day, adult)

    return extra


def _bipolar(onset_days_before: int | None, *, system: str | None = None, category: str = "problem-list-item",
             clinical: str = "active", recorded: bool = False, period: bool = False) -> Callable[[Builder, date, bool], None]:  # fmt: skip
    def extra(b: Builder, day: date, adult: bool) -> None:
        code = b.code("bipolar", system)
        onset = b.when(day - timedelta(days=onset_days_before)) if onset_days_before is not None else None
        if period and onset:
            b.condition(code, None, category=category, clinical=clinical, onset_period=(onset, None))
        else:
            b.condition(code, onset, category=category, clinical=clinical,
                        recorded=b.when(day - timedelta(days=30)) if recorded else None)  # fmt: skip

    return extra


def _declined(reason: str = "declined", *, days_after: int = 0, adult_code: bool | None = None,
              time: Callable[[date], str] | None = None) -> Callable[[Builder, date, bool], None]:  # fmt: skip
    def extra(b: Builder, day: date, adult: bool) -> None:
        code = (
            (SCT, DECLINED)
            if reason == "declined"
            else b.code("medical_reason")
            if reason == "medical"
            else (SCT, OTHER_REASON)
        )
        target = day + timedelta(days=days_after)
        b.not_screened(time(target) if time else b.when(target), code,
                       adult=adult if adult_code is None else adult_code)  # fmt: skip

    return extra


def _screen_also(result: str | None, days_before: int, *, uncoded: str | None = None, hour: int | None = None
                 ) -> Callable[[Builder, date, bool], None]:  # fmt: skip
    def extra(b: Builder, day: date, adult: bool) -> None:
        target = day - timedelta(days=days_before)
        when = at(target, hour, 0, "Z") if hour is not None else b.when(target)
        b.screen(when, result, adult=adult, uncoded=uncoded)

    return extra


def cms2_paths() -> dict[str, Path_]:
    age = {  # born on these days, the patient is this old on 1 January 2026 (CQL AgeInYearsAt)
        11: date(2014, 1, 2), 12: date(2014, 1, 1), 16: date(2009, 1, 2), 17: date(2009, 1, 1),
        "17b": date(2008, 1, 2), 18: date(2008, 1, 1), 65: date(1961, 1, 1),
    }  # fmt: skip
    return {
        "cms2.no-visit": lambda b: (b.patient(_adult_born(b)), None)[1],
        "cms2.visit-cpt-negative": _cms2(system=CPT),
        "cms2.visit-snomed-negative": _cms2(system=SCT),
        "cms2.visit-hcpcs-negative": _cms2(system=HCPCS),
        "cms2.visit-pt-evaluation": _cms2(visit_code="pt_eval"),
        "cms2.visit-telephone": _cms2(visit_code="telephone"),
        "cms2.visit-not-in-valueset": _cms2(visit_code=(CPT, "99281")),
        "cms2.visit-in-progress": _cms2(status="in-progress"),
        "cms2.visit-cancelled": _cms2(status="cancelled"),
        "cms2.visit-day-before-period": _cms2(visit=PERIOD_START - timedelta(days=1), screen_offset_days=0),
        "cms2.visit-first-day": _cms2(visit=PERIOD_START),
        "cms2.visit-last-day": _cms2(visit=PERIOD_END),
        "cms2.visit-day-after-period": _cms2(visit=PERIOD_END + timedelta(days=1)),
        "cms2.visit-spans-period-start": _cms2(
            visit=PERIOD_START, start=at(date(YEAR - 1, 12, 31), 22, 0, "Z"), end=at(PERIOD_START, 2, 0, "Z")
        ),  # fmt: skip
        "cms2.visit-late-evening-before-period": _cms2(
            visit=PERIOD_START, start=late_evening(date(YEAR - 1, 12, 31))
        ),
        "cms2.visit-early-morning-after-period": _cms2(
            visit=PERIOD_END, start=early_morning(date(YEAR + 1, 1, 1))
        ),
        "cms2.age-11": _cms2(age[11], adult_screen=False),
        "cms2.age-12": _cms2(age[12], adult_screen=False),
        "cms2.age-16-teen-screen": _cms2(age[16], adult_screen=False),
        "cms2.age-16-adult-screen": _cms2(age[16], adult_screen=True),
        "cms2.age-17-teen-screen": _cms2(age[17], adult_screen=False),
        "cms2.age-17-adult-screen": _cms2(age[17], adult_screen=True),
        "cms2.age-17-born-jan-2-2008-adult-screen": _cms2(age["17b"], adult_screen=True),
        "cms2.age-18-teen-screen": _cms2(age[18], adult_screen=False),
        "cms2.age-18-adult-screen": _cms2(age[18], adult_screen=True),
        "cms2.age-65": _cms2(age[65]),
        "cms2.no-screen": _cms2(screen=None),
        "cms2.screen-14-days-before": _cms2(screen_offset_days=14),
        "cms2.screen-15-days-before": _cms2(screen_offset_days=15),
        "cms2.screen-day-after-visit": _cms2(screen_offset_days=-1),
        "cms2.screen-14-days-before-late-evening": _cms2(
            visit=date(YEAR, 6, 15),
            start=at(date(YEAR, 6, 15), 10, 0, "Z"),
            screen_time=late_evening(date(YEAR, 5, 31)),
        ),  # fmt: skip
        "cms2.screen-15-days-before-late-evening": _cms2(
            visit=date(YEAR, 6, 15),
            start=at(date(YEAR, 6, 15), 10, 0, "Z"),
            screen_time=late_evening(date(YEAR, 5, 30)),
        ),  # fmt: skip
        "cms2.screen-visit-day-early-morning": _cms2(
            visit=date(YEAR, 6, 15),
            start=at(date(YEAR, 6, 15), 10, 0, "Z"),
            screen_time=early_morning(date(YEAR, 6, 16)),
        ),  # fmt: skip
        "cms2.screen-preliminary": _cms2(screen_status="preliminary"),
        "cms2.screen-amended": _cms2(screen_status="amended"),
        "cms2.screen-corrected": _cms2(screen_status="corrected"),
        "cms2.screen-uncoded": _cms2(screen=None, uncoded="patient refused to answer"),
        "cms2.screen-uncoded-after-negative": _cms2(
            screen_offset_days=3, extra=_screen_also(None, 0, uncoded="see note")
        ),
        "cms2.positive-no-follow-up": _cms2(screen=POSITIVE),
        "cms2.positive-then-negative": _cms2(
            screen=POSITIVE, screen_offset_days=5, extra=_screen_also(NEGATIVE, 0)
        ),
        "cms2.negative-then-positive": _cms2(
            screen=NEGATIVE, screen_offset_days=5, extra=_screen_also(POSITIVE, 0)
        ),
        "cms2.positive-referral-visit-day": _cms2(screen=POSITIVE, extra=_positive_with("referral")),
        "cms2.positive-referral-completed": _cms2(
            screen=POSITIVE, extra=_positive_with("referral", status="completed")
        ),
        "cms2.positive-referral-draft": _cms2(
            screen=POSITIVE, extra=_positive_with("referral", status="draft")
        ),
        "cms2.positive-referral-2-days-after": _cms2(
            screen=POSITIVE, extra=_positive_with("referral", days_after=2)
        ),
        "cms2.positive-referral-3-days-after": _cms2(
            screen=POSITIVE, extra=_positive_with("referral", days_after=3)
        ),
        "cms2.positive-referral-day-before": _cms2(
            screen=POSITIVE, extra=_positive_with("referral", days_after=-1)
        ),
        "cms2.positive-referral-next-year": _cms2(
            visit=PERIOD_END, screen=POSITIVE, extra=_positive_with("referral", days_after=1)
        ),  # fmt: skip
        "cms2.positive-referral-other-age-set": _cms2(
            screen=POSITIVE, extra=_positive_with("referral", teen_sets=True)
        ),
        "cms2.positive-procedure-at-visit": _cms2(screen=POSITIVE, extra=_positive_with("procedure")),
        "cms2.positive-procedure-not-done": _cms2(
            screen=POSITIVE, extra=_positive_with("procedure", status="not-done")
        ),
        "cms2.positive-procedure-next-day": _cms2(
            screen=POSITIVE, extra=_positive_with("procedure", days_after=1)
        ),
        "cms2.positive-medication": _cms2(screen=POSITIVE, extra=_positive_with("medication")),
        "cms2.positive-medication-draft": _cms2(
            screen=POSITIVE, extra=_positive_with("medication", status="draft")
        ),
        "cms2.teen-positive-referral": _cms2(age[16], screen=POSITIVE, extra=_positive_with("referral")),
        "cms2.teen-positive-procedure": _cms2(age[12], screen=POSITIVE, extra=_positive_with("procedure")),
        "cms2.teen-positive-medication": _cms2(age[16], screen=POSITIVE, extra=_positive_with("medication")),
        "cms2.bipolar-snomed-before-visit": _cms2(extra=_bipolar(30, system=SCT)),
        "cms2.bipolar-icd10-before-visit": _cms2(extra=_bipolar(30, system=ICD10)),
        "cms2.bipolar-day-before-visit": _cms2(extra=_bipolar(1)),
        "cms2.bipolar-on-visit-day": _cms2(extra=_bipolar(0)),
        "cms2.bipolar-after-visit": _cms2(extra=_bipolar(-10)),
        "cms2.bipolar-encounter-diagnosis": _cms2(extra=_bipolar(30, category="encounter-diagnosis")),
        "cms2.bipolar-resolved": _cms2(extra=_bipolar(30, clinical="resolved")),
        "cms2.bipolar-no-onset-recorded": _cms2(extra=_bipolar(None, recorded=True)),
        "cms2.bipolar-onset-period": _cms2(extra=_bipolar(30, period=True)),
        "cms2.bipolar-positive-no-follow-up": _cms2(screen=POSITIVE, extra=_bipolar(30)),
        "cms2.declined-visit-day": _cms2(screen=None, extra=_declined()),
        "cms2.declined-medical-reason": _cms2(screen=None, extra=_declined("medical")),
        "cms2.declined-other-reason": _cms2(screen=None, extra=_declined("other")),
        "cms2.declined-day-after": _cms2(screen=None, extra=_declined(days_after=1)),
        "cms2.declined-late-evening": _cms2(
            screen=None,
            visit=date(YEAR, 6, 15),
            start=at(date(YEAR, 6, 15), 10, 0, "Z"),
            extra=_declined(time=late_evening),
        ),  # fmt: skip
        "cms2.declined-other-age-code": _cms2(screen=None, extra=_declined(adult_code=False)),
        "cms2.declined-but-negative": _cms2(extra=_declined()),
        "cms2.declined-but-positive": _cms2(screen=POSITIVE, extra=_declined()),
        "cms2.declined-but-uncoded": _cms2(screen=None, uncoded="refused", extra=_declined()),
        "cms2.declined-teen": _cms2(age[16], screen=None, extra=_declined()),
        "cms2.declined-with-bipolar": _cms2(screen=None, extra=_then(_declined(), _bipolar(30))),
    }


# ---------------------------------------------------------------------------------------------------------------
# CMS159: Depression Remission at Twelve Months (v0.3.000)
# ---------------------------------------------------------------------------------------------------------------


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, [31, 29 if year % 4 == 0 else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
                                           31][month - 1]))  # fmt: skip


def _cms159(born: date | None = None, *, visit: date | None = None, visit_code: str | tuple[str, str] = "office_visit",
            visit_status: str = "finished", visit_time: str | None = None, dx: str = "major_depression",
            dx_system: str | None = None, category: str | None = None, clinical: str = "active",
            verification: str = "confirmed", onset_days_before: int | None = 60, abatement_days_before: int | None = None,
            onset_period: bool = False, index_days_before: int = 0, index_score: int = 15, index_time: str | None = None,
            index_status: str = "final", index_quantity: bool = False, teen: bool = False,
            later: Iterable[tuple[int, int]] = ((0, 3),), later_status: str = "final", deceased: Any = None,
            extra: Callable[[Builder, date, date], None] | None = None) -> Path_:  # fmt: skip
    """A CMS159 patient: a depression diagnosis, a visit in the identification period, an index PHQ-9
    `index_days_before` the visit, and `later` scores as (days from the anniversary, score). `extra` gets the
    visit day and the anniversary of the index."""

    def build(b: Builder) -> None:
        birth = born or _adult_born(b)
        day = visit or DIP_START + timedelta(days=b.rng.randint(10, 350))
        index_day = day - timedelta(days=index_days_before)
        anniversary = _add_months(index_day, 12)
        death = deceased(anniversary) if callable(deceased) else deceased
        b.patient(birth, death)
        code = b.code(dx, dx_system)
        onset = b.when(day - timedelta(days=onset_days_before)) if onset_days_before is not None else None
        b.condition(code, None if onset_period else onset,
                    category=category or b.rng.choice(("problem-list-item", "encounter-diagnosis")),
                    clinical=clinical, verification=verification,
                    abatement=b.when(day - timedelta(days=abatement_days_before)) if abatement_days_before else None,
                    recorded=None if onset else b.when(day - timedelta(days=90)),
                    onset_period=(onset, None) if onset_period and onset else None)  # fmt: skip
        visit_coding = visit_code if isinstance(visit_code, tuple) else b.code(visit_code)
        start = visit_time or b.when(day)
        b.encounter(visit_coding, start, status=visit_status)
        b.phq9(
            index_time or b.when(index_day),
            index_score,
            status=index_status,
            teen=teen,
            quantity=index_quantity,
        )
        for offset, score in later:
            b.phq9(b.when(anniversary + timedelta(days=offset)), score, status=later_status, teen=teen)
        if extra:
            extra(b, day, anniversary)

    return build


def _exclusion(kind: str, *, days: int, status: str | None = None) -> Callable[[Builder, date, date], None]:
    """A CMS159 exclusion `days` from the identification period's start (negative: before it), or when `days` is
    >= 10000, (days - 10000) after the end of the measure assessment period (anniversary + 60 days)."""

    def extra(b: Builder, visit: date, anniversary: date) -> None:
        day = (
            (anniversary + timedelta(days=60 + days - 10000))
            if days >= 10000
            else DIP_START + timedelta(days=days)
        )
        when = b.when(day)
        if kind == "inpatient-hospice":
            b.encounter(b.code("inpatient"), b.when(day - timedelta(days=3)), when, status=status or "finished",
                        discharge=b.rng.choice((HOSPICE_HOME, HOSPICE_FACILITY)))  # fmt: skip
        elif kind == "inpatient-home":
            b.encounter(b.code("inpatient"), b.when(day - timedelta(days=3)), when, discharge="306689006")
        elif kind == "hospice-encounter":
            b.encounter(b.code("hospice_encounter"), when, status=status or "finished")
        elif kind == "hospice-assessment":
            b.observation((LOINC, HOSPICE_MDS), when, status=status or "final",
                          value={"valueCodeableConcept": {"coding": [{"system": SCT, "code": YES}]}})  # fmt: skip
        elif kind == "hospice-order":
            b.service_request(b.code("hospice_ambulatory"), when, status=status or "active")
        elif kind == "hospice-procedure":
            b.procedure(b.code("hospice_ambulatory"), when, status=status or "completed")
        elif kind == "hospice-diagnosis":
            b.condition(b.code("hospice_diagnosis"), when)
        elif kind == "palliative-assessment":
            b.observation((LOINC, FACIT_PAL), when, status=status or "final", value={"valueInteger": 40})
        elif kind == "palliative-diagnosis":
            b.condition(b.code("palliative_diagnosis"), when, category="encounter-diagnosis")
        elif kind == "palliative-encounter":
            b.encounter(b.code("palliative_encounter"), when, status=status or "finished")
        elif kind == "palliative-intervention":
            b.procedure(b.code("palliative_intervention"), when, status=status or "completed")
        else:  # a mental health disorder: bipolar, personality, schizophrenia, pdd
            system = {"snomed": SCT, "icd10": ICD10}.get(status or "", None)
            b.condition(b.code(kind, system), when, clinical="active" if status != "resolved" else "resolved")

    return extra


def cms159_paths() -> dict[str, Path_]:
    paths: dict[str, Path_] = {
        "cms159.remission": _cms159(),
        "cms159.remission-phq9-teen": _cms159(date(2010, 5, 5), teen=True),
        "cms159.no-follow-up": _cms159(later=()),
        "cms159.last-score-5": _cms159(later=((0, 5),)),
        "cms159.last-score-4": _cms159(later=((0, 4),)),
        "cms159.low-then-high": _cms159(later=((-20, 3), (20, 7))),
        "cms159.high-then-low": _cms159(later=((-20, 7), (20, 3))),
        "cms159.follow-up-preliminary": _cms159(later_status="preliminary"),
        "cms159.follow-up-amended": _cms159(later_status="amended"),
        "cms159.follow-up-on-window-start": _cms159(later=((-60, 2),)),
        "cms159.follow-up-day-before-window": _cms159(later=((-61, 2),)),
        "cms159.follow-up-on-window-end": _cms159(later=((60, 2),)),
        "cms159.follow-up-day-after-window": _cms159(later=((61, 2),)),
        "cms159.index-score-9": _cms159(index_score=9),
        "cms159.index-score-10": _cms159(index_score=10),
        "cms159.index-preliminary": _cms159(index_status="preliminary"),
        "cms159.index-quantity": _cms159(index_quantity=True),
        "cms159.index-7-days-before-visit": _cms159(index_days_before=7),
        "cms159.index-8-days-before-visit": _cms159(index_days_before=8),
        "cms159.index-day-after-visit": _cms159(index_days_before=-1),
        "cms159.index-8-days-before-late-evening": _cms159(
            visit=date(YEAR - 1, 3, 10),
            visit_time=at(date(YEAR - 1, 3, 10), 10, 0, "Z"),
            index_time=late_evening(date(YEAR - 1, 3, 2)),
        ),  # fmt: skip
        "cms159.index-after-visit-early-morning": _cms159(
            visit=date(YEAR - 1, 3, 10),
            visit_time=at(date(YEAR - 1, 3, 10), 10, 0, "Z"),
            index_time=early_morning(date(YEAR - 1, 3, 11)),
        ),  # fmt: skip
        "cms159.visit-on-dip-start": _cms159(visit=DIP_START),
        "cms159.visit-day-before-dip": _cms159(visit=DIP_START - timedelta(days=1)),
        "cms159.visit-on-dip-end": _cms159(visit=DIP_LAST),
        "cms159.visit-day-after-dip": _cms159(visit=DIP_LAST + timedelta(days=1)),
        "cms159.visit-dip-end-late-evening": _cms159(visit=DIP_LAST, visit_time=late_evening(DIP_LAST)),
        "cms159.visit-dip-start-early-morning": _cms159(visit=DIP_START, visit_time=early_morning(DIP_START)),
        "cms159.visit-not-finished": _cms159(visit_status="in-progress"),
        "cms159.visit-not-office": _cms159(visit_code=(SCT, "185463005")),
        "cms159.dx-snomed": _cms159(dx_system=SCT),
        "cms159.dx-icd10": _cms159(dx_system=ICD10),
        "cms159.dx-dysthymia-snomed": _cms159(dx="dysthymia", dx_system=SCT),
        "cms159.dx-dysthymia-icd10": _cms159(dx="dysthymia", dx_system=ICD10),
        "cms159.dx-problem-list": _cms159(category="problem-list-item"),
        "cms159.dx-encounter-diagnosis": _cms159(category="encounter-diagnosis"),
        "cms159.dx-resolved": _cms159(clinical="resolved"),
        "cms159.dx-recurrence": _cms159(clinical="recurrence"),
        "cms159.dx-provisional": _cms159(verification="provisional"),
        "cms159.dx-onset-after-visit": _cms159(onset_days_before=-5),
        "cms159.dx-onset-visit-day": _cms159(onset_days_before=0),
        "cms159.dx-abated-before-visit": _cms159(onset_days_before=200, abatement_days_before=30),
        "cms159.dx-no-onset": _cms159(onset_days_before=None),
        "cms159.dx-onset-period": _cms159(onset_period=True),
        # On the 12th birthday itself fqm-execution's age is uncertain (a birth Date against a DateTime): null.
        "cms159.age-12-on-index-day": _cms159(date(YEAR - 13, 4, 15), visit=date(YEAR - 1, 4, 15), teen=True),
        "cms159.age-12-day-after-birthday": _cms159(
            date(YEAR - 13, 4, 14), visit=date(YEAR - 1, 4, 15), teen=True
        ),
        "cms159.age-11-on-index-day": _cms159(date(YEAR - 13, 4, 16), visit=date(YEAR - 1, 4, 15), teen=True),
        "cms159.age-17": _cms159(date(YEAR - 18, 8, 1), visit=date(YEAR - 1, 7, 1), teen=True),
        "cms159.age-18": _cms159(date(YEAR - 19, 6, 1), visit=date(YEAR - 1, 7, 1)),
        "cms159.age-65": _cms159(date(YEAR - 66, 6, 1), visit=date(YEAR - 1, 7, 1)),
        "cms159.deceased-before-window-end": _cms159(
            deceased=lambda a: at(a + timedelta(days=30), 12, 0, "Z")
        ),
        "cms159.deceased-on-window-end": _cms159(deceased=lambda a: at(a + timedelta(days=60), 12, 0, "Z")),
        "cms159.deceased-after-window-end": _cms159(
            deceased=lambda a: at(a + timedelta(days=61), 12, 0, "Z")
        ),
        "cms159.deceased-boolean": _cms159(deceased=True),
        "cms159.deceased-false": _cms159(deceased=False),
    }
    for kind in ("inpatient-hospice", "hospice-encounter", "hospice-assessment", "hospice-order", "hospice-procedure",
                 "hospice-diagnosis", "palliative-assessment", "palliative-diagnosis", "palliative-encounter",
                 "palliative-intervention"):  # fmt: skip
        paths[f"cms159.{kind}-in-window"] = _cms159(extra=_exclusion(kind, days=40))
        paths[f"cms159.{kind}-on-dip-start"] = _cms159(extra=_exclusion(kind, days=0))
        paths[f"cms159.{kind}-before-dip"] = _cms159(extra=_exclusion(kind, days=-2))
        paths[f"cms159.{kind}-after-window"] = _cms159(extra=_exclusion(kind, days=10002))
    paths["cms159.inpatient-discharged-home"] = _cms159(extra=_exclusion("inpatient-home", days=40))
    paths["cms159.inpatient-hospice-not-finished"] = _cms159(extra=_exclusion("inpatient-hospice", days=40,
                                                                              status="in-progress"))  # fmt: skip
    paths["cms159.hospice-encounter-cancelled"] = _cms159(extra=_exclusion("hospice-encounter", days=40,
                                                                           status="cancelled"))  # fmt: skip
    paths["cms159.hospice-order-draft"] = _cms159(extra=_exclusion("hospice-order", days=40, status="draft"))
    paths["cms159.hospice-procedure-not-done"] = _cms159(extra=_exclusion("hospice-procedure", days=40,
                                                                          status="not-done"))  # fmt: skip
    paths["cms159.palliative-encounter-in-progress"] = _cms159(extra=_exclusion("palliative-encounter", days=40,
                                                                                status="in-progress"))  # fmt: skip
    for kind in ("bipolar", "personality", "schizophrenia", "pdd"):
        for system in ("snomed", "icd10"):
            paths[f"cms159.{kind}-{system}"] = _cms159(extra=_exclusion(kind, days=40, status=system))
        paths[f"cms159.{kind}-on-window-end"] = _cms159(extra=_exclusion(kind, days=10000))
        paths[f"cms159.{kind}-after-window-end"] = _cms159(extra=_exclusion(kind, days=10001))
        paths[f"cms159.{kind}-resolved"] = _cms159(extra=_exclusion(kind, days=40, status="resolved"))
    return paths


def all_paths() -> dict[str, tuple[str, Path_]]:
    return {
        **{k: ("cms2", v) for k, v in cms2_paths().items()},
        **{k: ("cms159", v) for k, v in cms159_paths().items()},
    }


def population(codes: Mapping[str, list[tuple[str, str]]], size: int = 2000, seed: int = 29,
               paths: Iterable[str] | None = None) -> list[Patient]:  # fmt: skip
    """`size` patients (at least), every path the same number of times, each drawn with its own seeded choices
    of codes, zones and days."""
    if any(OTHER_REASON == code for _system, code in codes[VS["medical_reason"]]):
        raise ValueError(
            f"{OTHER_REASON} is in Medical Reason: choose another code for cms2.declined-other-reason"
        )
    chosen = all_paths()
    if paths is not None:
        chosen = {k: chosen[k] for k in paths}
    rounds = max(1, math.ceil(size / len(chosen)))
    rng = random.Random(seed)  # noqa: S311 - a seeded population, not a secret
    people = []
    for _round in range(rounds):
        for name, (measure, build) in chosen.items():
            patient = Patient(f"syn{len(people):05d}", measure, name)
            build(Builder(patient, random.Random(rng.getrandbits(64)), codes))  # noqa: S311
            people.append(patient)
    return people


def write(people: Iterable[Patient], folder: Path) -> tuple[Path, Path]:
    """The population twice: `bundles.ndjson` (one patient Bundle a line, for fqm-execution) and `ndjson/`
    (one NDJSON file per resource type, as a Bulk Data export delivers them, for Tandem's extractor)."""
    folder.mkdir(parents=True, exist_ok=True)
    ndjson = folder / "ndjson"
    ndjson.mkdir(exist_ok=True)
    files: dict[str, Any] = {}
    bundles = folder / "bundles.ndjson"
    try:
        with bundles.open("w", encoding="utf-8") as out:
            for patient in people:
                out.write(json.dumps(patient.bundle(), separators=(",", ":")) + "\n")
                for resource in patient.resources:
                    kind = resource["resourceType"]
                    if kind not in files:
                        files[kind] = (ndjson / f"{kind}.ndjson").open("w", encoding="utf-8")
                    files[kind].write(json.dumps(resource, separators=(",", ":")) + "\n")
    finally:
        for handle in files.values():
            handle.close()
    return bundles, ndjson
