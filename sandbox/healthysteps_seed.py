"""HealthySteps families for the demo: children 0–3 with one or two caregivers (one mother also a patient here),
due and overdue screens, a mother's positive EPDS with item 10 (its same-day safety Task names her), a
food-insecure family with an open referral past the flag, a family in each tier. The EHR side (`add_families`)
goes into the cohort; the registry side (`seed_healthysteps`) is written through Tandem's own services, so the
registry holds exactly what a Specialist using Tandem would have written. Launcher labels come from the computed
worklist rows, never asserted."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fhir_mappings.common.caregivers import Caregiver, registry_id
from fhir_mappings.common.dates import age_months
from fhir_mappings.common.identity import PatientKey
from fhir_mappings.healthysteps.referrals import referral_from
from fhir_mappings.healthysteps.worklist import FLAGS, build_rows
from fhir_mappings.registry.resources import Member
from fhir_mappings.screening.instruments import Answer
from fhir_mappings.screening.resources import Submission
from fhir_mappings.screening.scoring import score
from fhir_mappings.screening.writeback import WritebackPlan
from smartapp.caseload.ehr_refresh import ScoreRefresh

from .data import Cohort, _coding

log = logging.getLogger(__name__)

SPECIALIST = Member("Practitioner/pr-hs-1", "Amara Diallo")
#: The sandbox EHR's own code for a gestational age at birth (a local code, as a real site's would be configured
#: in TANDEM_GESTATIONAL_AGE_CODES; Tandem ships no default because no code is confirmed).
EHR_GESTATION_CODE = ("https://sandbox.tandem.health/CodeSystem/local", "GA-AT-BIRTH")
#: Leo was born at 31+2 weeks (in the EHR), Ava at 35+0 (recorded by the Specialist in Tandem).
PRETERM_IN_EHR = {"hs-0003": 31 * 7 + 2}
PRETERM_IN_TANDEM = {"hs-0004": (35, 0)}
ROLE_CODES = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"


@dataclass(frozen=True)
class Family:
    child: str
    given: str
    family: str
    age_days: int
    caregivers: tuple[tuple[str, str, str], ...]  # (id suffix, relationship, given name)
    #: The mother's own patient id, when she is also a patient here.
    mother_patient: str | None = None


FAMILIES = (
    # A mother (also a patient here) whose EPDS at the 2-month visit had item 10 positive.
    Family("hs-0001", "Noah", "Ferreira", 62, (("mother", "MTH", "Luisa"),), "hs-0101"),
    # Two caregivers; the 2-month caregiver screens are due today (the tests take them).
    Family("hs-0002", "Maya", "Okafor", 64, (("mother", "MTH", "Grace"), ("father", "FTH", "Emeka"))),
    # Food insecurity: a positive Hunger Vital Sign, Tier 2, a food-assistance referral open 40 days.
    Family("hs-0003", "Leo", "Haddad", 300, (("mother", "MTH", "Rana"),)),
    # Tier 3: caregiver depression plus a developmental concern; early intervention received.
    Family("hs-0004", "Ava", "Lindgren", 610, (("mother", "MTH", "Elin"), ("grandmother", "GRMTH", "Karin"))),
    # Tier 1, nothing screened since the 12-month visit: development and autism screens overdue.
    Family("hs-0005", "Eli", "Baptiste", 930, (("guardian", "GUARD", "Joelle"),)),
)


def add_families(cohort: Cohort, today: date) -> None:
    """The families' Patients, RelatedPersons and today's encounters in the EHR."""
    for f in FAMILIES:
        cohort.add({
            "resourceType": "Patient", "id": f.child, "active": True,
            "identifier": [{"type": {"coding": [_coding("http://terminology.hl7.org/CodeSystem/v2-0203", "MR")]},
                            "system": "urn:oid:2.16.840.1.113883.19.5", "value": f"MRN9{f.child[-4:]}"}],
            "name": [{"use": "official", "family": f.family, "given": [f.given]}],
            "gender": "female" if f.given in ("Maya", "Ava") else "male",
            "birthDate": (today - timedelta(days=f.age_days)).isoformat(),
            "generalPractitioner": [{"reference": "Practitioner/pr-ped-1"}],
        })  # fmt: skip
        cohort.add({
            "resourceType": "Encounter", "id": f"{f.child}-enc", "status": "in-progress",
            "class": _coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory"),
            "type": [{"text": "Well-child visit"}], "subject": {"reference": f"Patient/{f.child}"},
            "period": {"start": today.isoformat()},
        })  # fmt: skip
        if f.child in PRETERM_IN_EHR:
            cohort.add({
                "resourceType": "Observation", "id": f"{f.child}-ga", "status": "final",
                "code": {"coding": [_coding(*EHR_GESTATION_CODE, "Gestational age at birth")]},
                "subject": {"reference": f"Patient/{f.child}"},
                "effectiveDateTime": (today - timedelta(days=f.age_days)).isoformat(),
                "valueQuantity": {"value": PRETERM_IN_EHR[f.child], "unit": "d", "system": "http://unitsofmeasure.org",
                                  "code": "d"},
            })  # fmt: skip
        for suffix, relationship, given in f.caregivers:
            cohort.add({
                "resourceType": "RelatedPerson", "id": f"{f.child}-{suffix}", "active": True,
                "patient": {"reference": f"Patient/{f.child}"},
                "relationship": [{"coding": [_coding(ROLE_CODES, relationship)]}],
                "name": [{"use": "official", "family": f.family, "given": [given]}],
            })  # fmt: skip
        if f.mother_patient:
            given = f.caregivers[0][2]
            cohort.add({
                "resourceType": "Patient", "id": f.mother_patient, "active": True,
                "name": [{"use": "official", "family": f.family, "given": [given]}], "gender": "female",
                "birthDate": (today - timedelta(days=29 * 365)).isoformat(),
                "link": [{"other": {"reference": f"RelatedPerson/{f.child}-mother"}, "type": "seealso"}],
                "generalPractitioner": [{"reference": "Practitioner/pr-pcp-1"}],
            })  # fmt: skip


def demo_answers(instrument: Any, item_scores: dict[str, int], total: int | None = None) -> dict[str, Any]:
    """Answers with these item scores; a `total` is entered where the form takes one, else spread over the other
    items (the licensed form's answers, as a person would have chosen them)."""
    items = [i for i in instrument.form_items if i.kind == "choice" and i.answers]
    takes_total = any(i.kind == "integer" for i in instrument.form_items)
    remaining = 0 if total is None or takes_total else total - sum(item_scores.values())
    answers: dict[str, Any] = {}
    for item in instrument.form_items:
        if item.kind == "integer":
            if total is not None:
                answers[item.link_id] = Answer(str(total), str(total), total, integer=True)
            continue
    for item in items:
        wanted = item_scores.get(item.link_id)
        if wanted is None:
            wanted = min(remaining, max(a.score for a in item.answers))
            remaining -= wanted
        answers[item.link_id] = next((a for a in item.answers if a.score == wanted), item.answers[0])
    return answers


def record_demo_screen(services: Any, iss: str, child: str, born: date, key: str, when: date, *,
            caregiver: Caregiver | None = None, item_scores: dict[str, int] | None = None,
            total: int | None = None, author: Member = SPECIALIST) -> None:  # fmt: skip
    """A screening recorded in the registry as Tandem records one (scored, with its result Observation)."""
    instrument = services.catalogue.get(key)
    answers = demo_answers(instrument, item_scores or {}, total)
    months = age_months(born, when)
    authored = datetime.combine(when, time(10, 0), UTC)
    submission_id = hashlib.sha256(f"demo|{iss}|{child}|{key}|{when}|{caregiver.id if caregiver else ''}".encode()
                                   ).hexdigest()[:32]  # fmt: skip
    submission = Submission(submission_id, instrument, answers, score(instrument, answers, age_months=months), child,
                            authored, author.reference, f"{child}-enc",
                            focus=caregiver.reference if caregiver else None,
                            focus_label=caregiver.label if caregiver else None,
                            ehr_focus=caregiver.ehr_reference if caregiver else None, iss=iss)  # fmt: skip
    plan = WritebackPlan((), "Demo history: recorded in the registry only.")
    record = services.screenings.record(submission, iss=iss, vendor="generic", sex=None, plan=plan,
                                        caregiver=caregiver, age_months=months)  # fmt: skip
    services.screenings.run(record, None, force=True)


def seed_healthysteps(cohort: Cohort, services: Any, iss: str, *, today: date) -> dict[str, str]:
    """Enrol every child 0–3 of the cohort and give the families their histories; return launcher labels."""
    hs, caregivers_svc = services.healthysteps, services.caregivers
    patients = {p["id"]: p for p in cohort.of_type("Patient")}
    related = cohort.of_type("RelatedPerson")
    enrolled = {}
    for pid, patient in patients.items():
        born = date.fromisoformat(patient["birthDate"])
        if not hs.program.fits_age(age_months(born, today)):
            continue
        key = PatientKey(iss, pid)
        people = []
        for r in related:
            if r["patient"]["reference"] == f"Patient/{pid}":
                relationship = r["relationship"][0]["coding"][0]["code"]
                name = " ".join([*r["name"][0]["given"], r["name"][0]["family"]])
                mother_patient = next((f.mother_patient for f in FAMILIES if f.child == pid), None)
                caregiver = Caregiver(registry_id(key, r["id"]), key, name, relationship,
                                      f"RelatedPerson/{r['id']}",
                                      mother_patient if relationship == "MTH" else None)  # fmt: skip
                caregivers_svc.save(caregiver)
                people.append(caregiver)
        start = min(today, born + timedelta(days=14))
        enrolment = hs.enrol(key, name=" ".join([*patient["name"][0]["given"], patient["name"][0]["family"]]),
                             birth_date=born, mrn=None, specialist=SPECIALIST, pcp=None, today=start,
                             existing=())  # fmt: skip
        enrolled[pid] = (enrolment, born, people)
        if pid in PRETERM_IN_TANDEM:
            weeks, days = PRETERM_IN_TANDEM[pid]
            services.gestation.record(key, str(weeks), str(days), born=born, performer=SPECIALIST.reference)
    # The EHR's scores of the children just enrolled (their mothers' EPDS) reach the registry's copy as they do in
    # production: the worker's refresh with backend services (issue 28: no "overdue" for screens the EHR has).
    reg = services.registrations.get(iss)
    if reg is not None and reg.backend is not None:
        ScoreRefresh(services, reg).run(full=True)
    _histories(services, iss, enrolled, today)
    data = hs.load(iss, services.ehr_scores.for_issuer(iss))
    rows = build_rows(hs.program, services.schedule, data.enrolments, caregivers=data.caregivers, events=data.events,
                      referrals=data.referrals, contacts=data.contacts, safety_tasks=data.safety_tasks, today=today,
                      catalogue=services.catalogue)  # fmt: skip
    labels = {}
    for row in rows:
        flags = [FLAGS[f].lower() for f in row.flags if f != "due"]
        labels[row.enrolment.patient_id] = " · ".join(
            ["HealthySteps", hs.program.tier_title(row.tier).split(" — ")[0], *flags[:2]]
        )
    log.info("demo HealthySteps: %d children enrolled", len(enrolled))
    return labels


def _negative(services: Any, keys: tuple[str, ...], months: int) -> tuple[str, int | None] | None:
    """The first of a need's instruments the demo can record with a negative result (no concern), and the total
    it enters (None: answered item by item, every answer the lowest); else one recorded without a concern (a form
    age with no cutoff in the scoring data)."""
    for acceptable in (False, None):
        for key in keys:
            instrument = services.catalogue.get(key)
            if instrument is None:
                continue  # a site-supplied instrument the demo does not have
            for total in (None, 0, 10, 20, 30, 40, 50, 60):
                try:
                    result = score(instrument, demo_answers(instrument, {}, total), age_months=months)
                except (ValueError, KeyError):
                    continue
                if result.positive is acceptable and not result.monitor and not result.missing:
                    return key, total
    return None


def _on_schedule(services: Any, iss: str, pid: str, born: date, people: list[Caregiver], today: date,
                 nth: int) -> None:  # fmt: skip
    """A cohort child seen on schedule (issue 28: "screen due" singles children out): every earlier visit's child
    screens done in its window, negative; this visit's too, but for one child in four (still due); the family's
    needs screened within the year. The caregiver's depression screens are the EHR's own (EPDS at 1-6 months)."""
    age = (today - born).days
    this_visit_due = nth % 4 == 3
    for visit in services.schedule.visits:
        current = visit.from_days <= age <= visit.to_days
        if visit.from_days > age or (current and this_visit_due):
            continue
        # In the middle of the visit's window (where the forms' ages are), never after today.
        day = born + timedelta(days=min((visit.from_days + visit.to_days) // 2, age))
        for need in visit.needs:
            chosen = (
                _negative(services, need.any_of, age_months(born, day) or 0)
                if need.for_whom == "child"
                else None
            )
            if chosen is not None:
                record_demo_screen(services, iss, pid, born, chosen[0], day, total=chosen[1])
    caregiver = next((c for c in people if c.relationship == "MTH"), people[0] if people else None)
    for recurring in services.schedule.recurring:
        chosen = _negative(services, recurring.need.any_of, 0)
        if chosen is not None and caregiver is not None and not this_visit_due:
            record_demo_screen(services, iss, pid, born, chosen[0], max(born, today - timedelta(days=20)),
                               caregiver=caregiver, total=chosen[1])  # fmt: skip


def _histories(services: Any, iss: str, enrolled: dict[str, Any], today: date) -> None:
    hs = services.healthysteps
    families = {f.child for f in FAMILIES}
    for nth, (pid, (_, born, people)) in enumerate((p, v) for p, v in enrolled.items() if p not in families):
        _on_schedule(services, iss, pid, born, people, today, nth)
    for pid, (enrolment, born, people) in enrolled.items():
        mother = next((c for c in people if c.relationship == "MTH"), people[0] if people else None)
        if pid == "hs-0001" and mother:
            record_demo_screen(services, iss, pid, born, "epds", today - timedelta(days=1), caregiver=mother,
                    item_scores={"epds-10": 2}, total=14)  # fmt: skip
        elif pid == "hs-0003" and mother:
            when = today - timedelta(days=40)
            record_demo_screen(services, iss, pid, born, "hunger-vital-sign", when, caregiver=mother,
                    item_scores={"hvs-1": 1, "hvs-2": 1})  # fmt: skip
            data = hs.load(iss, {}, only=enrolment.key)
            basis = tuple(
                e.source for e in data.events.get(enrolment.key, []) if e.source and e.flag == "positive"
            )
            enrolment = hs.move_tier(hs.enrolment(enrolment.id, iss), "2", "positive-screen",
                                     "Food insecurity on the Hunger Vital Sign", SPECIALIST, basis, when)  # fmt: skip
            referral = hs.refer(enrolment, service="food-assistance", for_whom="both", caregiver=mother,
                                concern="food-insecurity", goal="Enough food for the family every week",
                                organisation="Eastside Food Bank", note="Family prefers morning calls", basis=basis,
                                requester=SPECIALIST)  # fmt: skip
            _backdate_referral(services, referral.task_id, when)
            hs.log_contact(enrolment, when=when, minutes=25, contact_type="consult", present="both", owner=SPECIALIST,
                           note="Talked through WIC and SNAP", today=today)  # fmt: skip
        elif pid == "hs-0004" and mother:
            for months, epds in ((1, 15), (2, 13), (4, 9), (6, 6)):
                record_demo_screen(services, iss, pid, born, "epds", born + timedelta(days=30 * months + 3), caregiver=mother,
                        total=epds)  # fmt: skip
            record_demo_screen(
                services, iss, pid, born, "swyc-milestones", born + timedelta(days=280), item_scores={}
            )
            data = hs.load(iss, {}, only=enrolment.key)
            basis = tuple(
                e.source for e in data.events.get(enrolment.key, []) if e.source and e.flag == "positive"
            )
            enrolment = hs.move_tier(hs.enrolment(enrolment.id, iss), "3", "multiple-risks",
                                     "Mother's EPDS positive and a developmental concern", SPECIALIST, basis,
                                     born + timedelta(days=285))  # fmt: skip
            referral = hs.refer(enrolment, service="early-intervention", for_whom="child", caregiver=None,
                                concern="developmental-concern", goal=None, organisation="County Part C program",
                                note=None, basis=basis, requester=SPECIALIST)  # fmt: skip
            seen = referral_from(
                services.registry.read("Task", f"referral-{referral.id}")
            )  # as the page shows it
            hs.update_referral(enrolment, referral.id, "completed", "Evaluation done; services started", SPECIALIST,
                               version=seen.version if seen and seen.version else "")  # fmt: skip
            for days, kind in ((20, "joint-well-child"), (9, "home-visit"), (2, "phone")):
                hs.log_contact(enrolment, when=today - timedelta(days=days), minutes=30, contact_type=kind,
                               present="both" if kind != "phone" else "caregiver", owner=SPECIALIST, note=None,
                               today=today)  # fmt: skip
        elif pid == "hs-0005":
            for months in (1, 2, 4, 6):
                if mother:
                    record_demo_screen(services, iss, pid, born, "epds", born + timedelta(days=30 * months + 2), caregiver=mother,
                            total=4)  # fmt: skip
            record_demo_screen(services, iss, pid, born, "bpsc", born + timedelta(days=60))
            record_demo_screen(services, iss, pid, born, "swyc-milestones", born + timedelta(days=275),
                    item_scores={f"swyc-{n}": 2 for n in range(1, 11)})  # fmt: skip


def _backdate_referral(services: Any, task_id: str, when: date) -> None:
    """The demo's referral was made weeks ago (the flag after 30 days shows on the worklist)."""
    registry = services.registry
    task = registry.read("Task", task_id)
    stamp = datetime.combine(when, time(11, 0), UTC).isoformat()
    task = {k: v for k, v in task.items() if k != "meta"} | {"authoredOn": stamp, "lastModified": stamp}
    registry.update(task)
