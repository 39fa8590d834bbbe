"""A child's gestational age at birth, for prematurity correction (SWYC: under 24 months, born 3 or more weeks
early; healthysteps.md §1a).

No code for it is confirmed in Tandem's references, so none is shipped as a default. Two sources:
- the registry store: an Observation the care team records in Tandem, coded with Tandem's own CodeSystem
  (GESTATION_CODING), one per child (a deterministic id, so recording again corrects it);
- the EHR: Observations under codes the site confirms for its EHR (the TANDEM_GESTATIONAL_AGE_CODES setting).
The value is a Quantity in UCUM weeks (`wk`) or days (`d`). Pure and total: anything unreadable gives None.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from fhir_mappings.common.access import obj, objs, text
from fhir_mappings.common.dates import age_months, parse_datetime
from fhir_mappings.common.identity import PatientKey, patient_key

UCUM = "http://unitsofmeasure.org"
GESTATION_SYSTEM = "https://tandem.health/fhir/CodeSystem/observation"
GESTATION_CODE = "gestational-age-at-birth"
GESTATION_CODING = {"system": GESTATION_SYSTEM, "code": GESTATION_CODE, "display": "Gestational age at birth"}
#: Plausible gestational ages at a live birth, in days (22+0 to 44+6 weeks); anything else is a typing slip.
PLAUSIBLE_DAYS = (22 * 7, 44 * 7 + 6)
TERM_WEEKS = 40


@dataclass(frozen=True, slots=True)
class Gestation:
    """Gestational age at birth in completed weeks and days (32+4 = 32 weeks 4 days), and where it was read."""

    days: int
    source: str  # "EHR" or "Tandem"
    recorded: datetime | None = None

    @property
    def weeks(self) -> int:
        return self.days // 7

    @property
    def text(self) -> str:
        rest = self.days % 7
        return f"{self.weeks}+{rest} weeks" if rest else f"{self.weeks} weeks"

    @property
    def weeks_early(self) -> int:
        """Completed weeks before 40 weeks (0 at or after term)."""
        return max(0, (TERM_WEEKS * 7 - self.days) // 7)


def parse_codes(setting: str | None) -> tuple[tuple[str, str], ...] | None:
    """`system|code,system|code` as pairs; None when malformed (the setting's validation says so)."""
    if not setting or not setting.strip():
        return ()
    pairs = []
    for item in setting.split(","):
        system, bar, code = item.strip().partition("|")
        if not bar or not system.strip() or not code.strip() or " " in code.strip():
            return None
        pairs.append((system.strip(), code.strip()))
    return tuple(pairs)


def _days(quantity: Any) -> int | None:
    quantity = obj(quantity)
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    unit = text(quantity.get("code")) if quantity.get("system") == UCUM else None
    unit = unit or (text(quantity.get("unit")) or "").strip().lower()
    if unit in ("wk", "week", "weeks", "wks"):
        days = round(value * 7)
    elif unit in ("d", "day", "days"):
        days = round(value)
    else:
        return None
    return days if PLAUSIBLE_DAYS[0] <= days <= PLAUSIBLE_DAYS[1] else None


def _has_code(observation: Mapping[str, Any], wanted: Iterable[tuple[str, str]]) -> bool:
    wanted = set(wanted)
    return any((text(c.get("system")), text(c.get("code"))) in wanted
               for c in objs(obj(observation.get("code")).get("coding")))  # fmt: skip


def gestation_from(observations: Iterable[Any], codes: Iterable[tuple[str, str]], source: str,
                   key: PatientKey | None = None) -> Gestation | None:  # fmt: skip
    """The most recently recorded readable gestational age among `observations` with one of `codes`
    (final, amended or corrected only). `key`: for registry Observations, only those of this patient count."""
    codes = tuple(codes)
    best: Gestation | None = None
    for observation in (obj(o) for o in observations):
        if observation.get("status") not in ("final", "amended", "corrected") or not _has_code(
            observation, codes
        ):
            continue
        if key is not None and patient_key(observation.get("subject")) != key:
            continue
        days = _days(observation.get("valueQuantity"))
        if days is None:
            continue
        recorded = parse_datetime(observation.get("issued")) or parse_datetime(
            observation.get("effectiveDateTime")
        )
        found = Gestation(days, source, recorded)
        if best is None or (recorded is not None and (best.recorded is None or recorded > best.recorded)):
            best = found
    return best


def observation_id(key: PatientKey) -> str:
    """One registry Observation per child (recording again replaces it)."""
    return "ga-" + hashlib.sha256(f"{key.iss}\n{key.patient_id}".encode()).hexdigest()[:24]


def gestation_observation(key: PatientKey, weeks: int, days: int, born: date | None, recorded: datetime,
                          performer: str | None, site_codes: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:  # fmt: skip
    """The registry Observation for a gestational age the care team recorded in Tandem."""
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": observation_id(key),
        "status": "final",
        "code": {
            "coding": [GESTATION_CODING, *({"system": s, "code": c} for s, c in site_codes)],
            "text": "Gestational age at birth",
        },  # fmt: skip
        "subject": key.reference(),
        "issued": recorded.isoformat(),
        "valueQuantity": {"value": weeks * 7 + days, "unit": "days", "system": UCUM, "code": "d"},
        "note": [{"text": f"{weeks}+{days} weeks, recorded in Tandem"}],
    }
    if born is not None:
        observation["effectiveDateTime"] = born.isoformat()
    if performer:
        observation["performer"] = [{"reference": performer}]
    return observation


def corrected_age_months(born: date | None, today: date, gestation: Gestation | None,
                         rule: tuple[int, int] | None) -> int | None:  # fmt: skip
    """The age an instrument reads, in completed months: corrected for prematurity (chronological age less the
    time born before 40 weeks) when `rule` = (below_months, weeks_early_at_least) applies — SWYC: under 24 months
    and born 3 or more weeks early, when the gestational age is known — otherwise the chronological age."""
    months = age_months(born, today)
    if months is None or born is None or rule is None or gestation is None:
        return months
    below, weeks_early = rule
    early_days = TERM_WEEKS * 7 - gestation.days
    if months >= below or early_days < weeks_early * 7:
        return months
    return age_months(born + timedelta(days=early_days), today) or 0


def corrected_birth(
    born: date, today: date, gestation: Gestation | None, rule: tuple[int, int] | None
) -> date:
    """The date a corrected age counts from: the birth date plus the time born before 40 weeks, when `rule` =
    (below_months, weeks_early_at_least) applies (chronological age under below_months, born that many weeks
    early or more, gestational age known); otherwise the birth date. Corrected age = chronological age − (40 weeks −
    gestational age at birth)."""
    months = age_months(born, today)
    if months is None or rule is None or gestation is None:
        return born
    below, weeks_early = rule
    early_days = TERM_WEEKS * 7 - gestation.days
    if months >= below or early_days < weeks_early * 7:
        return born
    return born + timedelta(days=early_days)
