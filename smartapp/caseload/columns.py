"""The worklist's columns as a person chooses them: labels, what each sorts by, and each user's saved choice."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from launch.store import KeyValueStore


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    #: The row value it sorts by (a worklist COLUMNS key).
    sort: str
    #: The program-definition columns that make it available (any of them).
    needs: tuple[str, ...]


COLUMNS: dict[str, Column] = {
    c.key: c
    for c in (
        Column("patient", "Patient", "patient", ("patient",)),
        Column("flags", "Flags", "flags", ("flags",)),
        Column("status", "Status", "status", ("status",)),
        Column("weeks", "Weeks", "weeks", ("weeks",)),
        Column("last_contact", "Last contact", "last_contact", ("last_contact",)),
        Column("follow_up_due", "Follow-up due", "follow_up_due", ("follow_up_due",)),
        Column("measure_due", "Measure due", "measure_due", ("measure_due",)),
        Column("contacts", "Contacts", "contacts", ("contacts",)),
        Column(
            "phq9", "PHQ-9 baseline → latest", "phq9_change", ("phq9_first", "phq9_latest", "phq9_change")
        ),
        Column(
            "gad7", "GAD-7 baseline → latest", "gad7_change", ("gad7_first", "gad7_latest", "gad7_change")
        ),
        Column("last_review", "Last review", "last_review", ("last_review",)),
        Column("minutes", "Minutes this month", "minutes", ("minutes",)),
        Column("billing", "Billing", "billing", ("billing",)),
        Column("care_manager", "Care manager", "care_manager", ("care_manager",)),
        Column("pcp", "PCP", "pcp", ("pcp",)),
        Column("consultant", "Consultant", "consultant", ("consultant",)),
        Column("program", "Program", "program", ("program",)),
        Column("enrolled", "Enrolled", "enrolled", ("enrolled",)),
        # The whole-person row (SMI): three composite cells, and each measure alone to sort or filter by.
        Column("symptoms", "Symptoms", "symptoms", ("symptoms",)),
        Column("medical", "Body (EHR)", "medical", ("medical",)),
        Column("social", "Life", "social", ("social",)),
        Column("bp", "BP", "bp", ("bp",)),
        Column("bmi", "BMI", "bmi", ("bmi",)),
        Column("weight_change", "Weight change %", "weight_change", ("weight_change",)),
        Column("hba1c", "HbA1c %", "hba1c", ("hba1c",)),
        Column("ldl", "LDL", "ldl", ("ldl",)),
        Column("smoking", "Smoking", "smoking", ("smoking",)),
        Column("housing", "Housing", "housing", ("housing",)),
        Column("employment", "Work or school", "employment", ("employment",)),
        Column("justice", "Jail stays", "justice", ("justice",)),
        Column("connection", "Social contact", "connection", ("connection",)),
    )
}
#: What fits a 1024-pixel EHR frame without scrolling sideways: the columns a care manager works first.
DEFAULT_COLUMNS = (
    "patient",
    "flags",
    "weeks",
    "last_contact",
    "follow_up_due",
    "measure_due",
    "phq9",
    "minutes",
)
DENSITIES = ("compact", "comfortable")
PAGE_SIZES = (25, 50, 100)
PREFS_TTL = 365 * 24 * 3600


@dataclass(frozen=True)
class WorklistPrefs:
    #: None: the user chose nothing, so the defaults apply (the program's own where one program is shown).
    columns: tuple[str, ...] | None = None
    density: str = "compact"
    page_size: int = 50

    @property
    def chosen(self) -> tuple[str, ...]:
        return self.columns if self.columns is not None else DEFAULT_COLUMNS

    def shown(self, available: Iterable[str], defaults: Iterable[str] = ()) -> list[Column]:
        """The chosen columns the shown programs offer, in the chosen order; the patient column always first.
        `defaults`: the program's default columns, used when the user chose none."""
        offered = set(available)
        columns = self.columns if self.columns is not None else (tuple(defaults) or DEFAULT_COLUMNS)
        keys = ["patient"] + [k for k in columns if k != "patient"]
        return [COLUMNS[k] for k in keys if k in COLUMNS and (k == "patient" or k in offered)]

    @classmethod
    def from_form(cls, form: Mapping[str, object], chosen: list[str]) -> WorklistPrefs:
        """From the column form: the ticked columns ordered by their position numbers (unknown names dropped)."""

        def position(key: str) -> tuple[float, int, int]:
            """By the number typed; on a tie, the column whose number was just changed goes first."""
            raw, was = str(form.get(f"pos-{key}") or ""), str(form.get(f"was-{key}") or "")
            try:
                return float(raw), 0 if raw != was else 1, list(COLUMNS).index(key)
            except ValueError:
                return 999.0, 1, list(COLUMNS).index(key)

        columns = tuple(sorted((k for k in dict.fromkeys(chosen) if k in COLUMNS), key=position))
        density = str(form.get("density") or "compact")
        try:
            page_size = int(str(form.get("page_size") or 50))
        except ValueError:
            page_size = 50
        return cls(columns or None, density if density in DENSITIES else "compact",
                   page_size if page_size in PAGE_SIZES else 50)  # fmt: skip


def available_columns(program_columns: Iterable[str]) -> list[str]:
    """The display columns the programs' definitions offer."""
    wanted = set(program_columns)
    return [c.key for c in COLUMNS.values() if wanted.intersection(c.needs)]


class PrefsStore:
    """Each user's worklist choice, in the key-value store, keyed by (EHR issuer, user) without either in clear."""

    def __init__(self, store: KeyValueStore) -> None:
        self.store = store

    @staticmethod
    def _key(iss: str, user: str) -> str:
        return "prefs:worklist:" + hashlib.sha256(f"{iss}|{user}".encode()).hexdigest()[:32]

    def load(self, iss: str, user: str | None) -> WorklistPrefs:
        if not user:
            return WorklistPrefs()
        raw = self.store.get(self._key(iss, user))
        if not raw:
            return WorklistPrefs()
        try:
            data = json.loads(raw)
            return WorklistPrefs(tuple(c for c in data["columns"] if c in COLUMNS) or None,
                                 data["density"] if data.get("density") in DENSITIES else "compact",
                                 data["page_size"] if data.get("page_size") in PAGE_SIZES else 50)  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return WorklistPrefs()

    def save(self, iss: str, user: str, prefs: WorklistPrefs) -> None:
        payload = {"columns": list(prefs.chosen), "density": prefs.density, "page_size": prefs.page_size}
        self.store.set(self._key(iss, user), json.dumps(payload), PREFS_TTL)

    def reset(self, iss: str, user: str) -> None:
        self.store.delete(self._key(iss, user))
