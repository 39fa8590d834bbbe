"""The cards of Tandem's `patient-view` service, from what is known about the patient. Pure and total.

Most urgent first, at most a few: an open safety follow-up (critical); an enrolled patient not improving
(warning); screenings due by program or age (warning while enrolled, else info); no contact for weeks (info). A
patient or relative in a portal (`userId` Patient/RelatedPerson) gets only their own questionnaires, never the
care team's cards. Each card carries a SMART link whose URL holds only an opaque key (no PHI), and the same key
in `appContext` for EHRs that pass it (../shared/reference/cds_hooks.md §4, §7)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

#: Card kinds in the order of their urgency (the order cards are given in).
KINDS = ("safety", "not-improving", "screening-due", "no-contact", "questionnaire")
INDICATOR_RANK = {"critical": 0, "warning": 1, "info": 2}
SUMMARY_LIMIT = 139
DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "cds" / "patient-view.json"
OVERRIDE_SYSTEM = "https://tandem.health/fhir/CodeSystem/cds-override-reason"


@dataclass(frozen=True)
class DueScreen:
    instrument: str  # an instrument key (phq9, gad7, epds, ...)
    name: str  # what people call it (PHQ-9)
    reason: str
    #: A caregiver's own screen at the child's visit.
    caregiver: bool = False


@dataclass(frozen=True)
class CardFacts:
    #: Why there is an open safety follow-up (an unacknowledged alert, an open same-day safety Task).
    safety: tuple[str, ...] = ()
    due: tuple[DueScreen, ...] = ()
    #: The program the patient is actively enrolled in (its name), if any.
    program: str | None = None
    #: Not improving: the words after "Not improving:", e.g. "PHQ-9 16 → 15 after 12 weeks".
    not_improving: str | None = None
    #: Days since the last contact, when over the program's limit.
    no_contact_days: int | None = None
    #: The user is the patient or a relative (a portal): their own questionnaires only.
    patient_user: bool = False


@dataclass(frozen=True)
class Card:
    uuid: str
    kind: str
    indicator: str
    summary: str
    detail: str
    link_label: str
    #: Where the launch goes: safety | screen | patient | chart | self-report.
    action: str
    instrument: str | None = None

    @property
    def launch_target(self) -> dict[str, str]:
        """What the launch needs to open the right page (no PHI: the patient comes from the EHR's launch)."""
        target = {"card": self.uuid, "kind": self.kind, "action": self.action}
        if self.instrument:
            target["instrument"] = self.instrument
        return target


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    max_cards: int
    source_label: str
    override_reasons: Mapping[str, tuple[tuple[str, str], ...]]


@cache
def patient_view_service() -> ServiceDefinition:
    raw = json.loads(DATA_FILE.read_text("utf-8"))
    reasons = {kind: tuple((str(r["code"]), str(r["display"])) for r in items)
               for kind, items in raw["override_reasons"].items()}  # fmt: skip
    unknown = set(reasons) - set(KINDS)
    if unknown or not all(code and display for items in reasons.values() for code, display in items):
        raise ValueError(f"patient-view.json: override reasons need a code and a display, for {KINDS}")
    return ServiceDefinition(
        id=str(raw["id"]), hook=str(raw["hook"]), title=str(raw["title"]), description=str(raw["description"]),
        max_cards=int(raw["max_cards"]), source_label=str(raw["source"]["label"]), override_reasons=reasons,
    )  # fmt: skip


#: The words a safety follow-up Task's description starts with (fhir_mappings.screening.resources.safety_task):
#: the alert itself follows them.
_TASK_PREFIX = re.compile(r"^Safety alert from [^:]{1,80}:\s*")
#: The safety card says this once, after the alerts.
SAFETY_STAYS = (
    "Dismissing this card does not close the follow-up: it stays open in Tandem until the care team records "
    "its outcome."
)


def distinct_alerts(reasons: Iterable[str]) -> list[str]:
    """Each safety alert once: an unacknowledged screening and its open follow-up Task state the same alert (the
    Task's description is the alert after "Safety alert from <instrument>: "); an alert contained in another one
    (the Task adds whom it is about, for a caregiver) is given by the longer one only."""
    texts = list(dict.fromkeys(" ".join(_TASK_PREFIX.sub("", r).split()) for r in reasons))
    texts = [t for t in texts if t]
    folded = [t.casefold() for t in texts]
    return [t for t, key in zip(texts, folded, strict=True)
            if not any(key != other and key in other for other in folded)]  # fmt: skip


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 1].rstrip() + "…"


def _names(due: tuple[DueScreen, ...]) -> str:
    names = list(dict.fromkeys(("caregiver's " if d.caregiver else "") + d.name for d in due))
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def build_cards(facts: CardFacts, new_id: Callable[[], str], *, limit: int = 3) -> list[Card]:
    """The cards for these facts, most urgent first, at most `limit`."""
    cards: list[Card] = []
    if facts.patient_user:
        own = tuple(d for d in facts.due if not d.caregiver)
        if own:
            cards.append(Card(new_id(), "questionnaire", "info",
                              _short(f"A questionnaire is ready for you: {_names(own)}"),
                              "Answering takes a few minutes. Your care team will see your answers.",
                              "Answer now", "self-report", own[0].instrument))  # fmt: skip
        return cards[:limit]
    alerts = distinct_alerts(facts.safety)
    if alerts:
        reasons = "\n".join(f"- {alert}" for alert in alerts)
        cards.append(Card(new_id(), "safety", "critical",
                          "Open safety follow-up: a positive safety item needs same-day follow-up",
                          f"{reasons}\n\n{SAFETY_STAYS}",
                          "Open the safety follow-up in Tandem", "safety"))  # fmt: skip
    if facts.not_improving:
        cards.append(Card(new_id(), "not-improving", "warning",
                          _short(f"Not improving in {facts.program or 'the program'}: {facts.not_improving}"),
                          "Treat to target: consider a change of treatment and the next psychiatric case review.",
                          "Open the registry record in Tandem", "patient"))  # fmt: skip
    if facts.due:
        first = facts.due[0]
        reasons = "\n".join(
            f"- **{d.name}**{' (caregiver)' if d.caregiver else ''}: {d.reason}" for d in facts.due
        )
        cards.append(Card(new_id(), "screening-due", "warning" if facts.program else "info",
                          _short(f"Screening due: {_names(facts.due)}"), reasons,
                          f"Record the {first.name} in Tandem" if not first.caregiver else "Open the visit screens in Tandem",
                          "chart" if first.caregiver else "screen", None if first.caregiver else first.instrument))  # fmt: skip
    if facts.no_contact_days is not None:
        cards.append(Card(new_id(), "no-contact", "info",
                          _short(f"No care-manager contact for {facts.no_contact_days} days"
                                 + (f" ({facts.program})" if facts.program else "")),
                          "The program expects regular contact; record one or plan the next in Tandem.",
                          "Open the registry record in Tandem", "patient"))  # fmt: skip
    cards.sort(key=lambda c: (INDICATOR_RANK[c.indicator], KINDS.index(c.kind)))
    return cards[:limit]


def launch_url(base_url: str, card: Card) -> str:
    """Tandem's launch URL for a card: the EHR adds `iss` and `launch`; the opaque key is the only addition."""
    return f"{base_url.rstrip('/')}/launch?{urlencode({'cdsCard': card.uuid})}"


def card_json(card: Card, service: ServiceDefinition, base_url: str) -> dict[str, Any]:
    """The card as CDS Hooks 2.0 JSON: no null or empty values, a summary under 140 characters, override reasons
    with displays, and a SMART link (no suggestions, so no selectionBehavior)."""
    body: dict[str, Any] = {
        "uuid": card.uuid,
        "summary": card.summary,
        "indicator": card.indicator,
        "source": {"label": service.source_label, "url": f"{base_url.rstrip('/')}/about"},
        "links": [{
            "label": card.link_label,
            "url": launch_url(base_url, card),
            "type": "smart",
            "appContext": json.dumps({"cdsCard": card.uuid}, separators=(",", ":")),
        }],
    }  # fmt: skip
    if card.detail:
        body["detail"] = card.detail
    reasons = service.override_reasons.get(card.kind, ())
    if reasons:
        body["overrideReasons"] = [{"system": OVERRIDE_SYSTEM, "code": code, "display": display}
                                   for code, display in reasons]  # fmt: skip
    return body
