"""The HealthySteps program definition (`data/programs/healthysteps.json`): tiers and the reasons for a move, the
site's tier rules (which only suggest; a person decides), referral services and concerns, the Specialist's contact
types, the referral age flag and the billing codes a payer is offered. Read and checked at start-up."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fhir_mappings.common.dates import age_bounds
from fhir_mappings.screening.events import ScreenEvent
from fhir_mappings.screening.instruments import CATALOGUE, Catalogue
from fhir_mappings.screening.schedule import Schedule

PROGRAM_FILE = Path(__file__).resolve().parent.parent / "data" / "programs" / "healthysteps.json"
TIERS = ("1", "2", "3")
FLAGS = ("positive", "monitor")
KEYS = frozenset({"key", "title", "model", "order", "_comment", "eligibility", "exit_at_months", "tiers", "reasons",
                  "tier_rules", "referral_overdue_days", "services", "concerns", "contact_types", "present",
                  "billing"})  # fmt: skip
RULE_KEYS = frozenset({"_comment", "from", "to", "flags", "within_days", "screens_at_least", "screens_at_most",
                       "distinct_needs_at_least", "open_referrals_at_most", "reason"})  # fmt: skip


class HealthyStepsError(ValueError):
    """A HealthySteps program file that cannot be used, with the reason."""


@dataclass(frozen=True)
class TierRule:
    from_tiers: tuple[str, ...]
    to: str
    reason: str
    flags: tuple[str, ...]
    within_days: int
    screens_at_least: int | None = None
    screens_at_most: int | None = None
    distinct_needs_at_least: int | None = None
    open_referrals_at_most: int | None = None


@dataclass(frozen=True)
class Concern:
    key: str
    text: str
    category: str  # sdoh | health-concern
    icd10: str | None = None


@dataclass(frozen=True)
class BillingCode:
    code: str
    text: str
    for_whom: str | None = None  # caregiver | child, for the per-instrument CPT codes
    instruments: tuple[str, ...] = ()
    when_concern: tuple[str, ...] = ()
    when_positive: tuple[str, ...] = ()
    when_caregiver_positive: tuple[str, ...] = ()


@dataclass(frozen=True)
class Payer:
    key: str
    title: str
    codes: frozenset[str]


@dataclass(frozen=True)
class TierSuggestion:
    to: str
    reason: str
    #: The screens that prompted it (registry Observation references where known).
    basis: tuple[ScreenEvent, ...]


@dataclass(frozen=True)
class HealthySteps:
    key: str
    title: str
    ages_months: tuple[int, int | None]
    exit_at_months: int
    tiers: Mapping[str, str]
    reasons: Mapping[str, str]
    rules: tuple[TierRule, ...]
    referral_overdue_days: int
    services: Mapping[str, str]
    concerns: Mapping[str, Concern]
    contact_types: Mapping[str, str]
    present: Mapping[str, str]
    instrument_codes: tuple[BillingCode, ...]
    z_codes: tuple[BillingCode, ...]
    payers: Mapping[str, Payer]

    def fits_age(self, months: int | None) -> bool:
        low, high = self.ages_months
        return months is not None and low <= months and (high is None or months <= high)

    def tier_title(self, tier: str | None) -> str:
        return self.tiers.get(tier or "", "No tier")

    def suggest(self, tier: str, held_since: date, today: date, events: Iterable[ScreenEvent], schedule: Schedule,
                open_referrals: int, already_counted: Iterable[str] = ()) -> TierSuggestion | None:  # fmt: skip
        """The first rule that holds for the family today, as a suggestion; None when none does. Screens already
        behind the current tier (`already_counted`) and screens before it do not prompt another move."""
        counted = set(already_counted)
        events = [e for e in events if e.day <= today]
        for rule in self.rules:
            if tier not in rule.from_tiers or rule.to == tier:
                continue
            window_start = today - timedelta(days=rule.within_days)
            flagged = [e for e in events if e.flag in rule.flags and e.day >= window_start]
            if rule.screens_at_most is not None:
                # "Nothing flagged for N days" only once the family has been in this tier that long.
                if held_since > window_start or len(flagged) > rule.screens_at_most:
                    continue
            fresh = [e for e in flagged if e.day >= held_since and (e.source or "") not in counted]
            if rule.screens_at_least is not None and len(fresh) < rule.screens_at_least:
                continue
            if rule.distinct_needs_at_least is not None and \
                    len({schedule.need_of(e) for e in fresh}) < rule.distinct_needs_at_least:  # fmt: skip
                continue
            if rule.open_referrals_at_most is not None and open_referrals > rule.open_referrals_at_most:
                continue
            basis = tuple(fresh) if rule.screens_at_most is None else ()
            return TierSuggestion(rule.to, rule.reason, basis)
        return None

    def codes_for(self, payer: str | None) -> frozenset[str]:
        chosen = self.payers.get(payer or "default") or self.payers["default"]
        return chosen.codes


def _positive_int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise HealthyStepsError(f"{where} must be a whole number ≥ 0")
    return value


def _rule(data: Mapping[str, Any], reasons: Mapping[str, str]) -> TierRule:
    unknown = sorted(set(data) - RULE_KEYS)
    if unknown:
        raise HealthyStepsError(f"tier rule: unknown field(s) {', '.join(unknown)}")
    from_tiers = tuple(str(t) for t in data["from"])
    to = str(data["to"])
    if not from_tiers or set(from_tiers) - set(TIERS) or to not in TIERS:
        raise HealthyStepsError(f"tier rule: tiers must be among {', '.join(TIERS)}")
    flags = tuple(data.get("flags") or FLAGS)
    if set(flags) - set(FLAGS):
        raise HealthyStepsError(f"tier rule: flags must be among {', '.join(FLAGS)}")
    if data["reason"] not in reasons:
        raise HealthyStepsError(f"tier rule: reason {data['reason']!r} is not one of the reasons")
    counts = {k: _positive_int(data[k], f"tier rule {k}") if k in data else None
              for k in ("screens_at_least", "screens_at_most", "distinct_needs_at_least", "open_referrals_at_most")}  # fmt: skip
    if all(v is None for v in counts.values()):
        raise HealthyStepsError("tier rule: give at least one condition (screens, needs or referrals)")
    return TierRule(from_tiers, to, str(data["reason"]), flags, _positive_int(data["within_days"], "within_days"),
                    **counts)  # fmt: skip


def _billing(data: Mapping[str, Any], catalogue: Catalogue, concerns: Mapping[str, Concern]
             ) -> tuple[tuple[BillingCode, ...], tuple[BillingCode, ...], dict[str, Payer]]:  # fmt: skip
    cpt = []
    for code, entry in data["instrument_codes"].items():
        if entry["for"] not in ("caregiver", "child"):
            raise HealthyStepsError(f"billing {code}: 'for' must be caregiver or child")
        instruments = tuple(entry.get("instruments", ()))
        cpt.append(BillingCode(code, str(entry["text"]), entry["for"], instruments))
    z = []
    for code, entry in data["z_codes"].items():
        if code.upper().startswith("Z13.32"):
            raise HealthyStepsError("Z13.32 (maternal depression screening) belongs on the mother's chart, never "
                                    "on the child's claim")  # fmt: skip
        z.append(BillingCode(code, str(entry["text"]), when_concern=tuple(entry.get("when_concern", ())),
                             when_positive=tuple(entry.get("when_positive", ())),
                             when_caregiver_positive=tuple(entry.get("when_caregiver_positive", ()))))  # fmt: skip
    for item in (*cpt, *z):
        for key in (*item.instruments, *item.when_positive, *item.when_caregiver_positive):
            if catalogue.get(key) is None:
                raise HealthyStepsError(f"billing {item.code} names an unknown instrument {key!r}")
        for concern in item.when_concern:
            if concern not in concerns:
                raise HealthyStepsError(f"billing {item.code} names an unknown concern {concern!r}")
    known = {c.code for c in (*cpt, *z)}
    payers = {}
    for key, entry in data["payers"].items():
        codes = frozenset(entry["codes"])
        if codes - known:
            raise HealthyStepsError(f"payer {key}: unknown code(s) {', '.join(sorted(codes - known))}")
        payers[key] = Payer(key, str(entry["title"]), codes)
    if "default" not in payers:
        raise HealthyStepsError("billing.payers needs a 'default' entry")
    return tuple(cpt), tuple(z), payers


def read_program(data: Mapping[str, Any], catalogue: Catalogue = CATALOGUE) -> HealthySteps:
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise HealthyStepsError(f"unknown field(s): {', '.join(unknown)}")
    if data.get("model") != "healthysteps":
        raise HealthyStepsError("model must be 'healthysteps'")
    tiers = {str(k): str(v) for k, v in data["tiers"].items()}
    if tuple(sorted(tiers)) != TIERS:
        raise HealthyStepsError("tiers must name exactly tiers 1, 2 and 3")
    reasons = {str(k): str(v) for k, v in data["reasons"].items()}
    if "enrolled" not in reasons:
        raise HealthyStepsError("reasons needs 'enrolled' (the reason of the first tier)")
    ages = age_bounds(data["eligibility"]["ages_months"])
    if ages is None:
        raise HealthyStepsError("eligibility.ages_months must be [lowest, highest] completed months")
    concerns = {k: Concern(k, str(v["text"]), str(v["category"]), v.get("icd10"))
                for k, v in data["concerns"].items() if k != "_comment"}  # fmt: skip
    if any(c.category not in ("sdoh", "health-concern") for c in concerns.values()):
        raise HealthyStepsError("a concern's category is sdoh or health-concern")
    cpt, z, payers = _billing(data["billing"], catalogue, concerns)
    overdue = _positive_int(data["referral_overdue_days"], "referral_overdue_days")
    exit_at = _positive_int(data["exit_at_months"], "exit_at_months")
    if not (data["services"] and data["contact_types"] and data["present"]):
        raise HealthyStepsError("services, contact_types and present each need at least one entry")
    return HealthySteps(
        key=str(data["key"]), title=str(data["title"]), ages_months=ages, exit_at_months=exit_at, tiers=tiers,
        reasons=reasons, rules=tuple(_rule(r, reasons) for r in data["tier_rules"]), referral_overdue_days=overdue,
        services=dict(data["services"]), concerns=concerns, contact_types=dict(data["contact_types"]),
        present=dict(data["present"]), instrument_codes=cpt, z_codes=z, payers=payers,
    )  # fmt: skip


def load_program(path: Path = PROGRAM_FILE, catalogue: Catalogue = CATALOGUE) -> HealthySteps:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise HealthyStepsError("not a JSON object")
        return read_program(data, catalogue)
    except (OSError, ValueError) as error:
        raise HealthyStepsError(f"{path.name}: {error}") from None
    except (KeyError, TypeError, AttributeError) as error:
        raise HealthyStepsError(f"{path.name}: missing or malformed {error}") from None


HEALTHYSTEPS_PROGRAM = load_program()
