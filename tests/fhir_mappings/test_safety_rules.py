"""Safety follow-ups as a person works them (issue 26 §2): when one is overdue (the deployment's local day), who
owns it, and how the patient is named — from the registry's copies, never a FHIR id."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.common.patient_summary import PatientLabel
from fhir_mappings.registry.resources import Enrolment, Member, work_task_from
from fhir_mappings.registry.safety import identity_text, label_for, overdue, owner
from fhir_mappings.screening.instruments import INSTRUMENTS
from fhir_mappings.screening.resources import Submission, registry_transaction
from fhir_mappings.screening.scoring import parse_answers, score

CHICAGO, BERLIN, UTC_ZONE = ZoneInfo("America/Chicago"), ZoneInfo("Europe/Berlin"), ZoneInfo("UTC")


def _local(zone: ZoneInfo, *parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=zone, fold=fold)  # type: ignore[misc]


# Source: issue 26 §2 — "mark it overdue when not closed the same day (deployment time zone)"; the brief's table:
# raised 23:30 local, checked 00:10 next day → overdue; time-zone boundaries; DST days (America/Chicago:
# 2026-03-08 springs forward at 02:00, 2026-11-01 falls back at 02:00).
@pytest.mark.parametrize(
    ("zone", "raised", "checked", "expected"),
    [
        (CHICAGO, _local(CHICAGO, 2026, 12, 6, 23, 30), _local(CHICAGO, 2026, 12, 7, 0, 10), True),
        (CHICAGO, _local(CHICAGO, 2026, 12, 6, 0, 10), _local(CHICAGO, 2026, 12, 6, 23, 59), False),
        (CHICAGO, _local(CHICAGO, 2026, 12, 6, 9, 0), _local(CHICAGO, 2026, 12, 6, 9, 1), False),
        # 05:30 UTC is 23:30 the day before in Chicago: the Chicago day ends at 06:00 UTC, not at midnight UTC.
        (CHICAGO, datetime(2026, 12, 7, 5, 30, tzinfo=UTC), datetime(2026, 12, 7, 6, 10, tzinfo=UTC), True),
        (UTC_ZONE, datetime(2026, 12, 7, 5, 30, tzinfo=UTC), datetime(2026, 12, 7, 6, 10, tzinfo=UTC), False),
        # Raised 23:30 UTC on the 6th is 00:30 on the 7th in Berlin: same Berlin day as 22:00 UTC on the 7th.
        (BERLIN, datetime(2026, 12, 6, 23, 30, tzinfo=UTC), datetime(2026, 12, 7, 22, 0, tzinfo=UTC), False),
        (BERLIN, datetime(2026, 12, 6, 23, 30, tzinfo=UTC), datetime(2026, 12, 7, 23, 5, tzinfo=UTC), True),
        # An instant without a zone is UTC (what older records hold).
        (CHICAGO, datetime(2026, 12, 7, 5, 30), datetime(2026, 12, 7, 6, 10, tzinfo=UTC), True),
        # Spring forward: a 23-hour day; still overdue only after its local midnight.
        (CHICAGO, _local(CHICAGO, 2026, 3, 8, 1, 30), _local(CHICAGO, 2026, 3, 8, 23, 30), False),
        (CHICAGO, _local(CHICAGO, 2026, 3, 8, 1, 30), _local(CHICAGO, 2026, 3, 9, 0, 10), True),
        # Fall back: a 25-hour day; 01:30 happens twice, both on the 1st.
        (CHICAGO, _local(CHICAGO, 2026, 11, 1, 1, 30, fold=1), _local(CHICAGO, 2026, 11, 1, 23, 59), False),
        (CHICAGO, _local(CHICAGO, 2026, 11, 1, 1, 30, fold=0), _local(CHICAGO, 2026, 11, 2, 0, 0), True),
        # A Task of an older release knows only its day; an unknown raising time is overdue (nothing shows it is not).
        (CHICAGO, date(2026, 12, 6), _local(CHICAGO, 2026, 12, 6, 23, 59), False),
        (CHICAGO, date(2026, 12, 6), _local(CHICAGO, 2026, 12, 7, 0, 1), True),
        (CHICAGO, None, _local(CHICAGO, 2026, 12, 7, 0, 1), True),
    ],
)
def test_a_safety_follow_up_is_overdue_after_the_local_day_it_was_raised(
    zone: ZoneInfo, raised: datetime | date | None, checked: datetime, expected: bool
) -> None:
    assert overdue(raised, checked, zone) is expected


ISS = "https://ehr.example.org/fhir"
KEY = PatientKey(ISS, "p-1")
CM = Member("Practitioner/cm", "Teresa Lindqvist")
HS = Member("Practitioner/hs", "Ana Ruiz")
PCP = Member("Practitioner/pcp", "Dana Whitfield")


def _enrolment(*, team: dict[str, Member], active: bool = True, program: str = "cocm",
               name: str | None = "Alex Rivera") -> Enrolment:  # fmt: skip
    return Enrolment("cp-1", ISS, KEY.patient_id, name, program, "active-treatment" if active else "completed",
                     date(2026, 1, 5), team=team, birth_date=date(1980, 5, 2), mrn="100007")  # fmt: skip


# Source: issue 26 §2 — "its owner (the care manager of the enrolment, else the submitting clinician — a named
# person, never nobody; if nobody can be named say so)".
@pytest.mark.parametrize(
    ("enrolments", "requester", "expected"),
    [
        ([_enrolment(team={"care-manager": CM, "pcp": PCP})], PCP, CM),
        ([_enrolment(team={"hs-specialist": HS}, program="healthysteps")], PCP, HS),
        (
            [_enrolment(team={"pcp": PCP})],
            Member("Practitioner/x", "Sam Oduya"),
            Member("Practitioner/x", "Sam Oduya"),
        ),
        ([], PCP, PCP),  # not enrolled: the submitting clinician
        ([_enrolment(team={"care-manager": Member("Practitioner/cm")})], PCP, PCP),  # an unnamed care manager
        ([], Member("Practitioner/x"), None),  # the EHR did not name the clinician: nobody can be named
        (
            [],
            Member("Patient/p-1", "the patient, in the patient portal"),
            None,
        ),  # the patient is not the owner
        ([], None, None),
        (
            [
                _enrolment(team={"care-manager": CM}, active=False),
                _enrolment(team={"care-manager": Member("Practitioner/cm2", "Lee Park")}),
            ],
            PCP,
            Member("Practitioner/cm2", "Lee Park"),
        ),  # the active enrolment's care manager first
    ],
)
def test_the_owner_of_a_safety_follow_up(enrolments: list[Enrolment], requester: Member | None,
                                         expected: Member | None) -> None:  # fmt: skip
    assert owner(enrolments, requester) == expected


KEPT = PatientLabel("Alex Rivera", date(1980, 5, 2), "100007")


# Source: issue 26 §2 — "Name each patient as the worklist does (… from the registry's copy or one kept with the
# screening; never a FHIR id)".
@pytest.mark.parametrize(
    ("enrolments", "copies", "expected"),
    [
        (
            [_enrolment(team={}, name="Alexandra Rivera")],
            (KEPT,),
            "Alexandra Rivera",
        ),  # the worklist's copy first
        ([], (KEPT,), "Alex Rivera"),
        ([_enrolment(team={}, name=None)], (None, KEPT), "Alex Rivera"),
        ([], (PatientLabel(None, date(1980, 5, 2), None), KEPT), "Alex Rivera"),  # a copy with a name wins
        ([], (PatientLabel(None, date(1980, 5, 2), None),), None),
        ([], (None,), None),
    ],
)
def test_the_patient_is_named_from_the_registrys_copies(
    enrolments: list[Enrolment], copies: tuple[PatientLabel | None, ...], expected: str | None
) -> None:
    label = label_for(enrolments, *copies)
    assert (label.name if label else None) == expected
    shown = f"{label.name if label else ''} {identity_text(label, date(2026, 12, 7))}"
    assert KEY.patient_id not in shown


def test_identity_text_tells_namesakes_apart() -> None:
    assert identity_text(KEPT, date(2026, 12, 7)) == "DOB 1980-05-02 · 46 y · MRN 100007"
    assert identity_text(None, date(2026, 12, 7)) == "DOB not recorded · MRN not recorded"


# Source: issue 26 §2 — the copy kept with the screening: "the chart launch had read the Patient — keep the
# display fields with the record/Task so a later worklist launch without Patient read access can still name the
# patient"; who raised it ("the user who submitted the screening, or 'the patient, in the portal'").
@pytest.mark.parametrize(
    ("author", "author_name", "self_reported", "via", "raised_by"),
    [
        ("Practitioner/pr-1", "Dana Whitfield", False, None, "Dana Whitfield"),
        ("Patient/p-1", None, True, "portal", "the patient, in the patient portal"),
        ("Patient/p-1", None, True, "link", "the patient, by questionnaire link"),
        ("Practitioner/pr-1", None, False, None, None),
    ],
)
def test_the_safety_task_keeps_who_the_patient_is_and_who_raised_it(
    author: str, author_name: str | None, self_reported: bool, via: str | None, raised_by: str | None
) -> None:
    phq9 = INSTRUMENTS["phq9"]
    answers, _ = parse_answers(phq9, {f"phq9-{n}": "LA6570-1" for n in range(1, 10)})
    raised = datetime(2026, 12, 7, 5, 30, tzinfo=UTC)
    submission = Submission("9" * 32, phq9, answers, score(phq9, answers), KEY.patient_id, raised, author, iss=ISS,
                            self_reported=self_reported, answered_via=via, patient_label=KEPT,
                            author_name=author_name)  # fmt: skip
    bundle = registry_transaction(submission, raised)
    resource = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Task")
    from fhir.resources.R4B import get_fhir_model_class

    get_fhir_model_class("Task").model_validate(resource)
    task = work_task_from(resource)
    assert task is not None and task.key == KEY
    assert task.patient == KEPT
    assert task.authored_at == raised
    assert (task.requester.display if task.requester else None) == raised_by
