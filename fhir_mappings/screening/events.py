"""Screens done, whatever the instrument: read from result Observations (registry or EHR) and from Tandem's own
records, for the visit schedule's due list and the worklists' latest results. Pure and total."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fhir_mappings.common.access import code, field, obj, objs, text
from fhir_mappings.common.dates import parse_datetime
from fhir_mappings.screening.history import ScorePoint, focus_of
from fhir_mappings.screening.instruments import CATALOGUE, LOINC, Catalogue
from fhir_mappings.screening.resources import RESULT_FLAG_SYSTEM


@dataclass(frozen=True, slots=True)
class ScreenEvent:
    key: str  # instrument key
    when: datetime
    #: The caregiver it is about (RelatedPerson/…), or None for the patient's own screen.
    focus: str | None
    #: positive / monitor / negative; None when not known.
    flag: str | None
    summary: str
    #: The result Observation in the registry ("Observation/<id>"), when the event came from one.
    source: str | None = None
    #: The total score, for instruments that have one.
    score: int | None = None

    @property
    def day(self) -> date:
        return self.when.date()


def _flag(observation: Mapping[str, Any], value: int | None, positive_at: int | None) -> str | None:
    for concept in objs(observation.get("interpretation")):
        found = code(concept, RESULT_FLAG_SYSTEM)
        if found in ("positive", "monitor", "negative"):
            return found
    if value is not None and positive_at is not None:
        return "positive" if value >= positive_at else "negative"
    return None


def events_from_observations(
    observations: Iterable[Any], catalogue: Catalogue = CATALOGUE
) -> list[ScreenEvent]:
    """A result Observation of a known instrument (its LOINC total, or Tandem's instrument code) → an event."""
    by_code = catalogue.by_result_code()
    events = []
    for observation in observations:
        observation = obj(observation)
        if observation.get("resourceType") != "Observation":
            continue
        if observation.get("status") in ("entered-in-error", "cancelled"):
            continue
        instrument = next((by_code[(str(c.get("system")), str(c.get("code")))]
                           for c in objs(obj(observation.get("code")).get("coding"))
                           if (str(c.get("system")), str(c.get("code"))) in by_code), None)  # fmt: skip
        when = parse_datetime(observation.get("effectiveDateTime") or field(observation, "effectivePeriod", "start")
                              or observation.get("issued"))  # fmt: skip
        if instrument is None or when is None:
            continue
        value = observation.get("valueInteger")
        value = value if isinstance(value, int) and not isinstance(value, bool) else None
        level = text(field(observation, "valueCodeableConcept", "text"))
        summary = (
            f"{instrument.name} {value}" if value is not None else f"{instrument.name}: {level or 'recorded'}"
        )
        source = f"Observation/{observation['id']}" if text(observation.get("id")) else None
        events.append(ScreenEvent(instrument.key, when, focus_of(observation),
                                  _flag(observation, value, instrument.positive_at), summary, source, value))  # fmt: skip
    return events


def events_from_points(points: Iterable[ScorePoint], catalogue: Catalogue = CATALOGUE) -> list[ScreenEvent]:
    """Score-series points (the EHR's LOINC totals) as events."""
    by_code = catalogue.by_result_code()
    events = []
    for point in points:
        instrument = by_code.get((LOINC, point.code))
        if instrument is not None:
            flag = _flag({}, point.score, instrument.positive_at)
            events.append(
                ScreenEvent(
                    instrument.key,
                    point.when,
                    point.focus,
                    flag,
                    f"{instrument.name} {point.score}",
                    score=point.score,
                )
            )
    return events


def latest(events: Iterable[ScreenEvent], keys: Iterable[str], focus: str | None = None, *,
           any_caregiver: bool = False) -> ScreenEvent | None:  # fmt: skip
    """The latest event of any of `keys`: the patient's own, one caregiver's, or any caregiver's."""
    wanted = set(keys)
    matching = [e for e in events if e.key in wanted
                and ((e.focus is not None) if any_caregiver else e.focus == focus)]  # fmt: skip
    return max(matching, key=lambda e: e.when) if matching else None


def merged(*sources: Iterable[ScreenEvent]) -> list[ScreenEvent]:
    """One event per (instrument, whom, minute): a screen in the registry and in the EHR counts once."""
    seen: dict[tuple[Any, ...], ScreenEvent] = {}
    for events in sources:
        for event in events:
            seen.setdefault((event.key, event.focus, event.when.replace(second=0, microsecond=0)), event)
    return sorted(seen.values(), key=lambda e: e.when)
