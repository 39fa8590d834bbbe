"""The pure CDS Hooks part: prefetch states and the cards for each case (tables)."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from fhir_mappings.cds.cards import CardFacts, DueScreen, build_cards, card_json, patient_view_service
from fhir_mappings.cds.prefetch import State, fill_template, read_prefetch

PATIENT = {"resourceType": "Patient", "id": "p1"}
OUTCOME = {"resourceType": "OperationOutcome", "issue": []}


@pytest.mark.parametrize(("prefetch", "key", "state", "count"), [
    (None, "patient", State.MISSING, 0),
    ({}, "patient", State.MISSING, 0),
    ({"patient": None}, "patient", State.NONE, 0),
    ({"patient": PATIENT}, "patient", State.FOUND, 1),
    ({"patient": {"resourceType": "Observation"}}, "patient", State.ERROR, 0),
    ({"patient": OUTCOME}, "patient", State.ERROR, 0),
    ({"patient": "Patient/p1"}, "patient", State.ERROR, 0),
    ({"scores": {"resourceType": "Bundle", "type": "searchset"}}, "scores", State.FOUND, 0),
    ({"scores": {"resourceType": "Bundle", "entry": []}}, "scores", State.FOUND, 0),
    ({"scores": {"resourceType": "Bundle", "entry": [{"resource": PATIENT}, {"resource": OUTCOME, "search": {"mode": "outcome"}}]}}, "scores", State.FOUND, 1),
    ({"scores": {"resourceType": "Bundle", "entry": [{"resource": OUTCOME}]}}, "scores", State.ERROR, 0),
    ({"scores": {"resourceType": "Bundle", "entry": "nonsense"}}, "scores", State.FOUND, 0),
    ([1, 2], "scores", State.MISSING, 0),
])  # fmt: skip
def test_prefetch_states(prefetch: Any, key: str, state: State, count: int) -> None:
    found = read_prefetch(prefetch, key, resource_type="Patient" if key == "patient" else None)
    assert found.state is state and len(found.resources) == count
    assert found.usable == (state in (State.NONE, State.FOUND))


def test_a_paginated_prefetch_keeps_its_next_link() -> None:
    bundle = {"resourceType": "Bundle", "entry": [{"resource": PATIENT}],
              "link": [{"relation": "self", "url": "a"}, {"relation": "next", "url": "https://ehr/x?page=2"}]}  # fmt: skip
    assert read_prefetch({"s": bundle}, "s").next_url == "https://ehr/x?page=2"


@pytest.mark.parametrize(("template", "filled"), [
    ("Patient/{{context.patientId}}", "Patient/p1"),
    ("Observation?patient={{context.patientId}}&_sort=-date", "Observation?patient=p1&_sort=-date"),
    ("Encounter/{{context.encounterId}}", None),  # not in this context: the key is left out
    ("Practitioner/{{userPractitionerId}}", None),
    ("Patient/{{context.patientId", None),
])  # fmt: skip
def test_template_filling(template: str, filled: str | None) -> None:
    assert fill_template(template, {"patientId": "p1", "userId": "Practitioner/x"}) == filled


PHQ = DueScreen("phq9", "PHQ-9", "Last PHQ-9 (16) was 40 days ago")
GAD = DueScreen("gad7", "GAD-7", "Active anxiety")
EPDS = DueScreen("epds", "EPDS", "Depression screen (caregiver) at the 2-month visit.", caregiver=True)


@pytest.mark.parametrize(("facts", "expected"), [
    (CardFacts(), []),
    (CardFacts(due=(PHQ,)), [("screening-due", "info", "Screening due: PHQ-9", "screen", "phq9")]),
    (CardFacts(due=(PHQ, GAD), program="CoCM"), [("screening-due", "warning", "Screening due: PHQ-9 and GAD-7", "screen", "phq9")]),
    (CardFacts(due=(EPDS,)), [("screening-due", "info", "Screening due: caregiver's EPDS", "chart", None)]),
    (CardFacts(safety=("item 9",), due=(PHQ,), program="CoCM", not_improving="PHQ-9 16 → 15 after 12 weeks", no_contact_days=40), [
        ("safety", "critical", "Open safety follow-up: a positive safety item needs same-day follow-up", "safety", None),
        ("not-improving", "warning", "Not improving in CoCM: PHQ-9 16 → 15 after 12 weeks", "patient", None),
        ("screening-due", "warning", "Screening due: PHQ-9", "screen", "phq9")]),
    (CardFacts(no_contact_days=40, program="CoCM"), [("no-contact", "info", "No care-manager contact for 40 days (CoCM)", "patient", None)]),
    (CardFacts(due=(PHQ,), no_contact_days=35), [("screening-due", "info", "Screening due: PHQ-9", "screen", "phq9"),
                                                 ("no-contact", "info", "No care-manager contact for 35 days", "patient", None)]),
    # The portal: only the patient's own questionnaires, never the care team's cards.
    (CardFacts(safety=("item 9",), due=(PHQ, EPDS), patient_user=True),
     [("questionnaire", "info", "A questionnaire is ready for you: PHQ-9", "self-report", "phq9")]),
    (CardFacts(due=(EPDS,), patient_user=True), []),
])  # fmt: skip
def test_cards_for_each_case(facts: CardFacts, expected: list[tuple[Any, ...]]) -> None:
    counter = itertools.count()
    cards = build_cards(facts, lambda: f"id-{next(counter)}")
    assert [(c.kind, c.indicator, c.summary, c.action, c.instrument) for c in cards] == expected


def test_at_most_the_limit_and_summaries_stay_under_140() -> None:
    long = DueScreen("phq9", "PHQ-9 " + "x" * 300, "r")
    facts = CardFacts(
        safety=("s",), due=(long,), program="P" * 200, not_improving="n" * 200, no_contact_days=99
    )
    cards = build_cards(facts, lambda: "id", limit=3)
    assert len(cards) == 3 and all(len(c.summary) < 140 for c in cards)
    assert [c.kind for c in cards] == ["safety", "not-improving", "screening-due"]


def test_the_service_definition_gives_every_kind_override_reasons_with_displays() -> None:
    service = patient_view_service()
    card = build_cards(CardFacts(due=(PHQ,)), lambda: "5f0a3c2e-6b1d-4c1e-9a7e-0b6a8d7c1f10")[0]
    body = card_json(card, service, "https://tandem.example.org/")
    assert (
        body["links"][0]["url"]
        == "https://tandem.example.org/launch?cdsCard=5f0a3c2e-6b1d-4c1e-9a7e-0b6a8d7c1f10"
    )
    assert [r["display"] for r in body["overrideReasons"]][0] == "Screened elsewhere today"
    assert service.id == "tandem-patient-view" and service.max_cards == 3


# Issue 26 §2: the critical card stated one alert twice (the unacknowledged screening, and its open follow-up Task
# whose description is "Safety alert from <instrument>: <the alert>", fhir_mappings.screening.resources.safety_task).
ITEM9 = (
    "PHQ-9 question 9 was answered “Several days”. Assess suicide risk today and arrange same-day follow-up."
)


@pytest.mark.parametrize(("safety", "alerts"), [
    ((ITEM9,), [ITEM9]),
    ((ITEM9, f"Safety alert from PHQ-9: {ITEM9}"), [ITEM9]),  # the screening and its Task: once
    ((f"Safety alert from PHQ-9: {ITEM9}", ITEM9, ITEM9), [ITEM9]),
    ((ITEM9, f"Safety alert from EPDS: Mother (caregiver): {ITEM9}"), [f"Mother (caregiver): {ITEM9}"]),  # the longer
    ((ITEM9, "EPDS question 10 scored 2 of 3."), [ITEM9, "EPDS question 10 scored 2 of 3."]),  # two alerts: both
    (("  ", ""), []),  # nothing to say: no safety card
])  # fmt: skip
def test_the_safety_card_states_each_alert_once(safety: tuple[str, ...], alerts: list[str]) -> None:
    cards = build_cards(CardFacts(safety=safety), lambda: "u")
    if not alerts:
        assert cards == []
        return
    (card,) = cards
    assert card.detail.startswith("\n".join(f"- {a}" for a in alerts) + "\n\n")
    sentences = [s for s in re.split(r"(?<=[.:])\s+|\n+", card.detail) if s.strip(" -")]
    assert len(sentences) == len(set(sentences)), card.detail  # no sentence repeated
    assert "does not close the follow-up" in card.detail  # dismissing the card is not closing it
