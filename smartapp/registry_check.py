"""`tandem check --registry URL`: every interaction Tandem relies on, tried against a registry store.

The check writes a few throwaway resources the way Tandem writes them (`RegistryClient`'s design: a minimal
registry Patient per (issuer, patient id), `Patient/tp-…`, written with a client-assigned id; registry resources
referencing it), runs the searches Tandem sends (`SEARCHES`, one row per parameter and where Tandem sends it), and
deletes what it wrote where the store allows. Everything it writes carries `CHECK_TAG`, so an operator can find
leftovers (`?_tag=https://tandem.health/fhir/CodeSystem/registry|contract-check`); its patients belong to the
issuer `CHECK_ISSUER`, which no EHR has.

Each interaction is reported as supported, NOT supported (with what to configure, per known store), or not
configured; a few are informational (whether a reference to a missing Patient is refused, whether clean-up was
allowed) and never fail the check. The report is plain data (`RegistryReport`), printed as aligned lines or JSON.
"""

from __future__ import annotations

import secrets
import textwrap
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from fhir_mappings.common.capability import fhir_version, software_name
from fhir_mappings.common.identity import PatientKey, registry_patient
from fhir_mappings.common.registry_refs import to_registry
from fhir_mappings.registry.resources import PROGRAM_SYSTEM, TASK_SYSTEM
from launch import errors
from launch.fhir import FHIRClient, etag_for
from smartapp.outgoing import validated

#: On everything the check writes (leftovers: search `_tag=<system>|<code>`).
CHECK_TAG = {"system": "https://tandem.health/fhir/CodeSystem/registry", "code": "contract-check"}
#: The issuer of the check's throwaway patients: no EHR has it (`.invalid` is reserved, RFC 2606).
CHECK_ISSUER = "https://tandem-check.invalid/fhir"
#: The system of the score codes Tandem searches the registry's Observations by (with LOINC's).
INSTRUMENT_SYSTEM = "https://tandem.health/fhir/CodeSystem/instrument"


#: The report's lines are wrapped to this width (advice is long).
LINE_WIDTH = 110


class Verdict(StrEnum):
    SUPPORTED = "supported"
    NOT_SUPPORTED = "NOT supported"
    NOT_CONFIGURED = "not configured"
    #: Could not be tried because an interaction it needs failed (that one is reported).
    NOT_CHECKED = "not checked"
    #: Worth knowing, never a failure (the detail says what was seen).
    NOTED = "noted"


class Store(StrEnum):
    HAPI = "HAPI FHIR JPA"
    GOOGLE = "Google Cloud Healthcare API"
    AZURE = "Azure Health Data Services"
    AWS = "AWS HealthLake"
    OTHER = "other"


def detect_store(url: str, capability: Mapping[str, Any] | None) -> Store:
    """Which known store a registry URL and CapabilityStatement name (their public host names and software
    names); OTHER when neither says."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "healthcare.googleapis.com":
        return Store.GOOGLE
    if host.endswith(".azurehealthcareapis.com"):
        return Store.AZURE
    if host.startswith("healthlake.") and host.endswith(".amazonaws.com"):
        return Store.AWS
    cap = capability if isinstance(capability, Mapping) else {}
    named = cap.get("software")
    software: Mapping[str, Any] = named if isinstance(named, Mapping) else {}
    said = " ".join(
        str(v) for v in (software.get("name"), cap.get("publisher"), cap.get("name")) if v
    ).lower()
    for needle, store in (("hapi", Store.HAPI), ("smile", Store.HAPI), ("google", Store.GOOGLE),
                          ("cloud healthcare", Store.GOOGLE), ("microsoft", Store.AZURE), ("azure", Store.AZURE),
                          ("healthlake", Store.AWS), ("amazon", Store.AWS)):  # fmt: skip
        if needle in said:
            return store
    return Store.OTHER


# --- what to configure ------------------------------------------------------------------------------

#: Interactions (the keys of `ADVICE`; a search row's advice is its own).
METADATA = "metadata"
GRANT = "grant"
UPDATE_CREATE = "update-create"
REFERENCE = "reference"
REFERENCE_MISSING = "reference-missing"
TRANSACTION = "transaction"
CONDITIONAL_CREATE = "conditional-create"
IF_MATCH = "if-match"
VERSIONED_READ = "versioned-read"
PAGING = "paging"
CLEAN_UP = "clean-up"
FRESH = "fresh-search"

UNTESTED = " (from the vendor's public documentation; untested with Tandem)"

#: (interaction, store) → what to configure. OTHER is the fallback for every store. Vendor advice is what their
#: public documentation says; none of it has been tried against the vendor's service (marked "untested").
# fmt: off
ADVICE: dict[tuple[str, Store], str] = {
    (METADATA, Store.OTHER): "check TANDEM_REGISTRY_URL: it must be the store's FHIR R4 base URL (its /metadata "
                             "answers a CapabilityStatement with fhirVersion 4.0.x)",
    (GRANT, Store.OTHER): "register Tandem at the store as a backend-services client (SMART Backend Services) with "
                          "TANDEM_REGISTRY_CLIENT_ID, its public key (`tandem keys public`, the key "
                          "TANDEM_REGISTRY_KEY_ID) and the scopes in TANDEM_REGISTRY_SCOPES",
    (GRANT, Store.GOOGLE): "Google Cloud Healthcare authenticates with Google OAuth (a service account), not SMART "
                           "Backend Services: put the store behind an authenticating proxy and set "
                           "TANDEM_REGISTRY_AUTH=none" + UNTESTED,
    (GRANT, Store.AZURE): "Azure Health Data Services authenticates with Microsoft Entra ID tokens: put the store "
                          "behind an authenticating proxy and set TANDEM_REGISTRY_AUTH=none" + UNTESTED,
    (GRANT, Store.AWS): "AWS HealthLake authenticates with AWS Signature Version 4 or its SMART on FHIR "
                        "integration: put the store behind an authenticating proxy and set "
                        "TANDEM_REGISTRY_AUTH=none, or create the data store with SMART on FHIR enabled" + UNTESTED,
    (UPDATE_CREATE, Store.OTHER): "allow a PUT to create a resource with the id the client chose (FHIR update as "
                                  "create); Tandem's registry Patients have ids such as tp-0a1b…",
    (UPDATE_CREATE, Store.HAPI): "allow client-assigned ids: hapi.fhir.client_id_strategy ALPHANUMERIC (the "
                                 "default) or ANY; NOT_ALLOWED refuses Tandem's writes" + UNTESTED,
    (UPDATE_CREATE, Store.GOOGLE): "create the FHIR store with enableUpdateCreate (gcloud healthcare fhir-stores "
                                   "create/update --enable-update-create)" + UNTESTED,
    (UPDATE_CREATE, Store.AZURE): "the FHIR service creates a resource on PUT with a new id; check the data "
                                  "plane role allows writes (FHIR Data Contributor)" + UNTESTED,
    (UPDATE_CREATE, Store.AWS): "HealthLake creates the resource on a PUT to a new id; check the IAM policy "
                                "allows healthlake:UpdateResource" + UNTESTED,
    (REFERENCE, Store.OTHER): "the store refused a resource referencing the registry Patient written just before: "
                              "check that Patient writes and reads are allowed and not filtered by scope",
    (REFERENCE_MISSING, Store.OTHER): "informational: Tandem writes each registry Patient before anything "
                                      "referencing it, so either answer works",
    (TRANSACTION, Store.OTHER): "accept transaction Bundles (all entries written or none), with PUT entries and "
                                "POST entries whose urn:uuid fullUrls other entries reference",
    (TRANSACTION, Store.AZURE): "transaction Bundles are supported by Azure Health Data Services' FHIR service, "
                                "not by the retired Azure API for FHIR" + UNTESTED,
    (TRANSACTION, Store.AWS): "HealthLake accepts transaction Bundles; check the size limits of the data "
                              "store" + UNTESTED,
    (CONDITIONAL_CREATE, Store.OTHER): "not required: Tandem publishes its Questionnaires by update-as-create "
                                       "when If-None-Exist is refused; enable Questionnaire search by url and "
                                       "version to avoid the fallback",
    (IF_MATCH, Store.OTHER): "honour If-Match on update (a stale version answered 409 or 412): without it two "
                             "care managers saving the same record overwrite each other",
    (IF_MATCH, Store.GOOGLE): "Google Cloud Healthcare honours If-Match only while resource versioning is on: "
                              "do not create the store with disableResourceVersioning" + UNTESTED,
    (IF_MATCH, Store.AZURE): "the FHIR service honours If-Match (412 on a stale ETag); its versioning policy must "
                             "not be no-version" + UNTESTED,
    (VERSIONED_READ, Store.OTHER): "keep resource versions (meta.versionId or an ETag on read): Tandem sends them "
                                   "back in If-Match",
    (VERSIONED_READ, Store.GOOGLE): "do not create the store with disableResourceVersioning" + UNTESTED,
    (VERSIONED_READ, Store.AZURE): "set the versioning policy to versioned (the default), not no-version"
                                   + UNTESTED,
    (PAGING, Store.OTHER): "honour _count and give `next` links on the store's own base URL until the last page "
                           "(behind a proxy: set the store's public base URL so links name the proxy)",
    (PAGING, Store.HAPI): "set hapi.fhir.server_address to the URL Tandem uses, so next links stay on it"
                          + UNTESTED,
    (FRESH, Store.OTHER): "answer a search from the data as it is now when asked with Cache-Control: no-cache: "
                          "a worklist must show what was just written",
    (FRESH, Store.HAPI): "HAPI honours Cache-Control: no-cache; otherwise set "
                         "hapi.fhir.reuse_cached_search_results_millis to 0" + UNTESTED,
    (CLEAN_UP, Store.OTHER): "informational: the check could not delete what it wrote; find the leftovers with "
                             "_tag=https://tandem.health/fhir/CodeSystem/registry|contract-check and delete them "
                             "by hand",
}
# fmt: on


def advice_for(interaction: str, store: Store) -> str:
    return ADVICE.get((interaction, store)) or ADVICE.get((interaction, Store.OTHER), "")


# --- the searches Tandem sends ----------------------------------------------------------------------


class Kind(StrEnum):
    #: A search parameter: the match values find the resources written, the miss values find nothing.
    FILTER = "filter"
    #: `_sort`: the order of the resources written stays the same when one of them changes.
    SORT = "sort"
    #: `_count`: a page holds at most that many, with a `next` link when more match.
    COUNT = "count"


@dataclass(frozen=True)
class SearchUse:
    """One search parameter Tandem sends to the registry store (see `SEARCHES`)."""

    resource_type: str
    #: The parameter as sent, with its modifier if any (`code:text`).
    parameter: str
    #: A value like Tandem's (for the report and the README).
    example: str
    #: Where Tandem sends it: `path.py::function`, one or more.
    where: tuple[str, ...]
    #: What to configure when the store refuses or ignores it.
    advice: str
    kind: Kind = Kind.FILTER
    #: The check's search (placeholders in `RunValues.fill`) that must find `finds`, and one that must find
    #: nothing. Both name only what the check wrote.
    match: tuple[tuple[str, str], ...] = ()
    miss: tuple[tuple[str, str], ...] = ()
    #: Which written resources of the type the match must find: "a" (patient A's) or "ab" (A's and B's).
    finds: str = "a"
    #: Tandem fails without it (False: Tandem falls back to something else).
    required: bool = True

    @property
    def name(self) -> str:
        return f"search {self.resource_type}?{self.parameter}" + (
            " (a list)" if any("," in v for _, v in self.match if not v.startswith("ge")) else ""
        )


_CASELOAD_FILL = "smartapp/caseload/service.py::CaseloadService._fill"
_LOAD_PATIENT = "smartapp/caseload/service.py::CaseloadService.load_patient"
_MIGRATE = "smartapp/caseload/service.py::CaseloadService.migrate_issuer"
_HS_LOAD = "smartapp/healthysteps/service.py::HealthyStepsService.load"
_CHART = "smartapp/chart/views.py::_schedule_lines"
_MEASURES = "smartapp/measures/service.py::_registry_results"
_DYAD = "smartapp/dyad/service.py::CaregiverService.for_child"
_READY_SYNC = "smartapp/caseload/ready.py::ReadyRows._search"
_READY_PATCH = "smartapp/caseload/ready.py::ReadyRows._patch_written"
_HS_READY_FULL = "smartapp/healthysteps/ready.py::HealthyStepsReady._full"
_HS_READY_PATCH = "smartapp/healthysteps/ready.py::HealthyStepsReady._patch"
_PUBLISH = "smartapp/screening/service.py::ScreeningService.publish_questionnaires"
_REVIEWS = "smartapp/caseload/service.py::CaseloadService.case_review_tasks"

_REF_ADVICE = ("index the reference search parameter {p} of {t} (a standard FHIR R4 parameter), searched with a "
               "relative reference Patient/tp-…")  # fmt: skip
_CODE_ADVICE = "index the token search parameter {p} of {t} (system|code, and a comma-separated list of them)"
_LAST_UPDATED_ADVICE = ("support _lastUpdated with the ge prefix on {t}: the caseload reads only what changed since "
                        "its last read")  # fmt: skip
_SORT_ADVICE = ("support _sort=_id on {t}: the caseload pages through the whole registry and needs an order that "
                "does not change while records are edited")  # fmt: skip
_COUNT_ADVICE = "honour _count on {t} (pages of at most that many, with next links)"


def _filter(t: str, p: str, example: str, where: Sequence[str], advice: str, match: dict[str, str],
            miss: dict[str, str], finds: str = "a", required: bool = True) -> SearchUse:  # fmt: skip
    return SearchUse(t, p, example, tuple(where), advice.format(p=p, t=t), Kind.FILTER, tuple(match.items()),
                     tuple(miss.items()), finds, required)  # fmt: skip


def _reference(t: str, p: str, where: Sequence[str], *, listed: bool = False) -> SearchUse:
    if listed:
        return _filter(t, p, "Patient/tp-…,Patient/tp-…", where, _REF_ADVICE, {p: "{patient},{patient_b}"},
                       {p: "{other},{other_b}"}, finds="ab")  # fmt: skip
    return _filter(t, p, "Patient/tp-…", where, _REF_ADVICE, {p: "{patient}"}, {p: "{other}"})


def _token(t: str, p: str, system: str, example: str, where: Sequence[str], *, listed: bool) -> SearchUse:
    match = f"{system}|{{code_b}},{system}|{{code}}" if listed else f"{system}|{{code}}"
    miss = f"{system}|{{miss}},{system}|{{code_b}}" if listed else f"{system}|{{miss}}"
    return _filter(t, p, example, where, _CODE_ADVICE, {p: match}, {p: miss})


def _last_updated(t: str, patient_param: str, also: Sequence[str] = ()) -> SearchUse:
    return _filter(t, "_lastUpdated", "ge2026-01-05T09:30:00.000+00:00", [_CASELOAD_FILL, *also], _LAST_UPDATED_ADVICE,
                   {patient_param: "{patient}", "_lastUpdated": "ge{since}"},
                   {patient_param: "{patient}", "_lastUpdated": "ge{future}"})  # fmt: skip


def _sort(t: str, patient_param: str, also: Sequence[str] = ()) -> SearchUse:
    return SearchUse(t, "_sort", "_id", (_CASELOAD_FILL, *also), _SORT_ADVICE.format(t=t), Kind.SORT,
                     ((patient_param, "{patient}"), ("_sort", "_id"), ("_count", "50")))  # fmt: skip


def _count(t: str, where: Sequence[str]) -> SearchUse:
    return SearchUse(t, "_count", "1000", tuple(where), _COUNT_ADVICE.format(t=t), Kind.COUNT,
                     (("_count", "1"),))  # fmt: skip


#: Every search parameter Tandem sends to the registry store, with where it sends it (a test reads the source and
#: fails when one is missing). The codes the check searches by are its own (same systems and syntax as Tandem's),
#: so a store full of real data answers with the check's resources only.
SEARCHES: tuple[SearchUse, ...] = (
    _reference("CarePlan", "subject", [_LOAD_PATIENT, _HS_LOAD, _READY_PATCH]),
    _token(
        "CarePlan", "category", PROGRAM_SYSTEM, f"{PROGRAM_SYSTEM}|healthysteps", [_HS_LOAD], listed=False
    ),
    _last_updated("CarePlan", "subject", [_READY_SYNC, _HS_READY_PATCH]),
    _sort("CarePlan", "subject", [_READY_SYNC]),
    _count(
        "CarePlan",
        [
            _CASELOAD_FILL,
            _LOAD_PATIENT,
            _HS_LOAD,
            _MIGRATE,
            _READY_SYNC,
            _READY_PATCH,
            _HS_READY_FULL,
            _HS_READY_PATCH,
        ],
    ),  # fmt: skip
    _reference("Task", "patient", [_LOAD_PATIENT, _READY_PATCH, _REVIEWS]),
    _filter(
        "Task",
        "based-on",
        "CarePlan/hs-…",
        [_HS_LOAD],
        "index the reference search parameter {p} of {t} (a "
        "standard FHIR R4 parameter): a family's page reads its enrolment's Tasks",
        {"based-on": "CarePlan/tc-{run}-cp2"},
        {"based-on": "CarePlan/tc-{run}-none"},
    ),  # fmt: skip
    _token(
        "Task",
        "code",
        TASK_SYSTEM,
        f"{TASK_SYSTEM}|referral,{TASK_SYSTEM}|hs-contact,…",
        [_HS_LOAD, _REVIEWS],
        listed=True,
    ),  # fmt: skip
    _last_updated("Task", "patient", [_READY_SYNC, _HS_READY_PATCH]),
    _sort("Task", "patient", [_READY_SYNC]),
    _count(
        "Task",
        [
            _CASELOAD_FILL,
            _LOAD_PATIENT,
            _HS_LOAD,
            _MIGRATE,
            _READY_SYNC,
            _READY_PATCH,
            _HS_READY_PATCH,
            _REVIEWS,
        ],
    ),
    _reference("Observation", "subject", [_LOAD_PATIENT, _CHART, _READY_PATCH]),
    _reference("Observation", "subject", [_HS_LOAD], listed=True),
    _token(
        "Observation",
        "code",
        INSTRUMENT_SYSTEM,
        "http://loinc.org|44261-6,http://loinc.org|89204-2,…",
        [_CASELOAD_FILL, _LOAD_PATIENT, _MEASURES],
        listed=True,
    ),  # fmt: skip
    _last_updated("Observation", "subject", [_READY_SYNC, _HS_READY_PATCH]),
    _sort("Observation", "subject", [_READY_SYNC]),
    _count(
        "Observation",
        [
            _CASELOAD_FILL,
            _LOAD_PATIENT,
            _HS_LOAD,
            _CHART,
            _MEASURES,
            _MIGRATE,
            _READY_SYNC,
            _READY_PATCH,
            _HS_READY_PATCH,
        ],
    ),  # fmt: skip
    _reference("RelatedPerson", "patient", [_DYAD]),
    _reference("RelatedPerson", "patient", [_HS_LOAD], listed=True),
    _count("RelatedPerson", [_HS_LOAD]),
    _count("QuestionnaireResponse", [_MIGRATE]),
    # If-None-Exist when the Questionnaires are published (refused: Tandem falls back to update-as-create).
    _filter(
        "Questionnaire",
        "url",
        "https://tandem.health/fhir/Questionnaire/phq-9",
        [_PUBLISH],
        "index url of Questionnaire (not required: see conditional create)",
        {"url": "{q_url}"},
        {"url": "{q_url}-none"},
        required=False,
    ),  # fmt: skip
    _filter(
        "Questionnaire",
        "version",
        "1.0.0",
        [_PUBLISH],
        "index version of Questionnaire (not required: see conditional create)",
        {"url": "{q_url}", "version": "{q_version}"},
        {"url": "{q_url}", "version": "{q_version}-none"},
        required=False,
    ),  # fmt: skip
)


# --- the report -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One interaction's result."""

    name: str
    verdict: Verdict
    #: What was seen (the store's answer, a count).
    detail: str = ""
    #: What to configure; shown when the verdict is not "supported".
    advice: str = ""
    #: Tandem needs it: NOT supported fails the check (exit 1).
    required: bool = True

    @property
    def failed(self) -> bool:
        return self.required and self.verdict is Verdict.NOT_SUPPORTED


@dataclass
class RegistryReport:
    url: str
    store: Store = Store.OTHER
    software: str = ""
    fhir_version: str = ""
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(o.failed for o in self.outcomes)

    def counts(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for outcome in self.outcomes:
            counted[outcome.verdict.value] = counted.get(outcome.verdict.value, 0) + 1
        return counted

    def summary(self) -> str:
        failed = [o.name for o in self.outcomes if o.failed]
        counts = ", ".join(f"{n} {v}" for v, n in self.counts().items())
        if failed:
            return f"NOT READY: {len(failed)} required interaction(s) not supported ({counts})"
        return f"Ready: every required interaction is supported ({counts})"

    def lines(self) -> list[str]:
        width = max([len(o.name) for o in self.outcomes] + [20]) + 2
        out = [f"Registry store:     {self.url}",
               f"Software:           {self.software or 'not stated'} (FHIR {self.fhir_version or '?'})",
               f"Recognised as:      {self.store.value}", ""]  # fmt: skip
        for o in self.outcomes:
            shown = o.detail if o.verdict is Verdict.NOTED else o.verdict.value
            if o.verdict is Verdict.NOT_SUPPORTED and not o.required:
                shown += ", not required"
            tail = f" ({o.detail})" if o.detail and o.verdict is not Verdict.NOTED else ""
            out += textwrap.wrap(
                f"{o.name:<{width}}{shown}{tail}", LINE_WIDTH, subsequent_indent=" " * (width + 2)
            )
            if o.advice and o.verdict is not Verdict.SUPPORTED:
                out += textwrap.wrap(o.advice, LINE_WIDTH, initial_indent=" " * (width + 2) + "→ ",
                                     subsequent_indent=" " * (width + 4), break_on_hyphens=False)  # fmt: skip
        return [*out, "", self.summary()]

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "store": self.store.value, "software": self.software,
                "fhir_version": self.fhir_version, "ok": self.ok, "summary": self.summary(),
                "interactions": [{**asdict(o), "verdict": o.verdict.value, "failed": o.failed}
                                 for o in self.outcomes]}  # fmt: skip


def search_verdict(
    found_ids: Sequence[str], expected: Sequence[str], missed_ids: Sequence[str]
) -> tuple[Verdict, str]:
    """A filter search's verdict: the match found every resource expected, and the miss found nothing (a store
    that ignores a parameter answers everything to both)."""
    lost = sorted(set(expected) - set(found_ids))
    if lost:
        return Verdict.NOT_SUPPORTED, f"{len(lost)} of {len(expected)} written resource(s) not found"
    if missed_ids:
        return Verdict.NOT_SUPPORTED, (f"a value nothing has matched {len(missed_ids)} resource(s): the "
                                       "parameter is ignored")  # fmt: skip
    return Verdict.SUPPORTED, ""


def paging_verdict(pages: Sequence[Sequence[str]], expected: Sequence[str], count: int, *, ended: bool
                   ) -> tuple[Verdict, str]:  # fmt: skip
    """Paging with `_count`: every expected id exactly once, no page larger than `count`, the last page without a
    `next` link (`ended`)."""
    seen = [rid for page in pages for rid in page]
    if not ended:
        return Verdict.NOT_SUPPORTED, f"next links did not end after {len(pages)} pages"
    if any(len(page) > count for page in pages):
        return Verdict.NOT_SUPPORTED, f"a page held more than _count={count} resources"
    twice = sorted({rid for rid in seen if seen.count(rid) > 1})
    if twice:
        return Verdict.NOT_SUPPORTED, f"{len(twice)} resource(s) on two pages"
    lost = set(expected) - set(seen)
    if lost:
        return Verdict.NOT_SUPPORTED, f"{len(lost)} of {len(expected)} written resource(s) on no page"
    return Verdict.SUPPORTED, f"{len(expected)} resources on {len(pages)} pages of {count}"


def sort_verdict(before: Sequence[str], after: Sequence[str], expected: Sequence[str]) -> tuple[Verdict, str]:
    """`_sort=_id`: the expected resources all found, in the same order before and after one of them changed."""
    ours_before = [rid for rid in before if rid in expected]
    ours_after = [rid for rid in after if rid in expected]
    if set(ours_before) != set(expected) or set(ours_after) != set(expected):
        return Verdict.NOT_SUPPORTED, "not every written resource was found"
    if ours_before != ours_after:
        return (
            Verdict.NOT_SUPPORTED,
            "the order changed when a resource was updated: the store does not sort by _id",
        )
    lexical = (
        "in id order" if ours_before == sorted(ours_before) else "a stable order, not the ids' text order"
    )
    return Verdict.SUPPORTED, lexical


# --- the run ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunValues:
    """One run's throwaway identities and codes (every value is unique to the run)."""

    run: str
    patient: PatientKey
    patient_b: PatientKey
    patient_c: PatientKey
    other: PatientKey
    other_b: PatientKey
    #: Referenced by the informational probe, never written (so never the searches' "nothing" values).
    missing: PatientKey

    @classmethod
    def new(cls) -> RunValues:
        run = secrets.token_hex(4)

        def key(label: str) -> PatientKey:
            return PatientKey(CHECK_ISSUER, f"check-{run}-{label}")

        return cls(run, key("a"), key("b"), key("c"), key("x"), key("y"), key("z"))

    @property
    def code(self) -> str:
        return f"contract-check-{self.run}"

    @property
    def q_url(self) -> str:
        return f"https://tandem.health/fhir/Questionnaire/contract-check-{self.run}"

    def fill(
        self, pairs: Sequence[tuple[str, str]], *, since: str = "", future: str = ""
    ) -> list[tuple[str, str]]:
        values = {"patient": self.patient.relative, "patient_b": self.patient_b.relative, "run": self.run,
                  "other": self.other.relative, "other_b": self.other_b.relative, "code": self.code,
                  "code_b": f"{self.code}-b", "miss": f"{self.code}-none", "q_url": self.q_url, "q_version": "1",
                  "since": since, "future": future}  # fmt: skip
        return [(name, value.format(**values)) for name, value in pairs]


def _tagged(resource: dict[str, Any]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), dict(CHECK_TAG)]
    return {**resource, "meta": meta}


def check_patient(key: PatientKey) -> dict[str, Any]:
    """The registry Patient as `RegistryClient` writes it, with the check's tag."""
    return _tagged(registry_patient(key))


def written_resources(values: RunValues) -> dict[str, list[dict[str, Any]]]:
    """What the check writes, by type, in the order written (client ids out of text order, so `_sort=_id` and the
    insertion order differ). Patient A's resources, then B's."""
    run = values.run

    def careplan(rid: str, key: PatientKey) -> dict[str, Any]:
        return {"resourceType": "CarePlan", "id": rid, "status": "active", "intent": "plan",
                "category": [{"coding": [{"system": PROGRAM_SYSTEM, "code": values.code}]}],
                "subject": key.reference()}  # fmt: skip

    def task(rid: str, key: PatientKey) -> dict[str, Any]:
        plan = f"tc-{run}-cp2" if key == values.patient else f"tc-{run}-cpb"  # written before the Tasks
        return {"resourceType": "Task", "id": rid, "status": "requested", "intent": "order",
                "code": {"coding": [{"system": TASK_SYSTEM, "code": values.code}]}, "for": key.reference(),
                "basedOn": [{"reference": f"CarePlan/{plan}"}],
                "description": "Tandem registry contract check"}  # fmt: skip

    def observation(rid: str, key: PatientKey) -> dict[str, Any]:
        return {"resourceType": "Observation", "id": rid, "status": "final",
                "code": {"coding": [{"system": INSTRUMENT_SYSTEM, "code": values.code}]},
                "subject": key.reference(), "effectiveDateTime": "2026-01-05T09:30:00+00:00",
                "valueInteger": 0}  # fmt: skip

    def related(rid: str, key: PatientKey) -> dict[str, Any]:
        return {"resourceType": "RelatedPerson", "id": rid, "patient": key.reference(), "active": True}

    def response(rid: str, key: PatientKey) -> dict[str, Any]:
        return {"resourceType": "QuestionnaireResponse", "id": rid, "status": "completed",
                "questionnaire": f"{values.q_url}|1", "subject": key.reference()}  # fmt: skip

    a, b = values.patient, values.patient_b
    order = (5, 2, 7, 1, 4, 6, 3)  # written in this order: neither ascending nor descending
    out = {
        "CarePlan": [careplan(f"tc-{run}-cp{n}", a) for n in (2, 3, 1)] + [careplan(f"tc-{run}-cpb", b)],
        "Task": [task(f"tc-{run}-t{n}", a) for n in order] + [task(f"tc-{run}-tb", b)],
        "Observation": [observation(f"tc-{run}-o{n}", a) for n in (2, 3, 1)]
        + [observation(f"tc-{run}-ob", b)],
        "RelatedPerson": [related(f"tc-{run}-rp", a), related(f"tc-{run}-rpb", b)],
        "QuestionnaireResponse": [response(f"tc-{run}-qr", a), response(f"tc-{run}-qrb", b)],
    }
    return {t: [_tagged(r) for r in resources] for t, resources in out.items()}


#: A real change per sorted type (a store may keep an identical PUT as no new version, its last update unchanged).
_CHANGE: dict[str, dict[str, Any]] = {
    "CarePlan": {"description": "Tandem registry contract check (changed)"},
    "Task": {"description": "Tandem registry contract check (changed)"},
    "Observation": {"valueInteger": 1},
}


def _why(error: errors.TandemError) -> str:
    """The error and the store's own words (its OperationOutcome): what an operator needs to act."""
    issues = [str(i) for i in getattr(error, "issues", [])][:2]
    return error.message + (f": {'; '.join(issues)}" if issues else "")


def _ids(bundle: Mapping[str, Any], resource_type: str) -> list[str]:
    return [str(e["resource"].get("id")) for e in bundle.get("entry") or []
            if isinstance(e, Mapping) and isinstance(e.get("resource"), Mapping)
            and e["resource"].get("resourceType") == resource_type]  # fmt: skip


def _has_next(bundle: Mapping[str, Any]) -> bool:
    return any(
        isinstance(link, Mapping) and link.get("relation") == "next" for link in bundle.get("link") or []
    )


def _tandem_time(value: datetime) -> str:
    """A time as the caseload sends it in `_lastUpdated=ge…`."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


class RegistryCheck:
    """Runs the check against one store. `client` is the registry's client (`RegistryClient` from the settings);
    `backend_services`: whether TANDEM_REGISTRY_AUTH asks for a token."""

    def __init__(self, client: FHIRClient, *, backend_services: bool, values: RunValues | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:  # fmt: skip
        self.client = client
        self.backend_services = backend_services
        self.values = values or RunValues.new()
        self.now = now
        self.report = RegistryReport(client.base_url)
        self.written: list[tuple[str, str]] = []
        self.resources = written_resources(self.values)
        #: Resources actually stored, by type: id → the stored resource.
        self.stored: dict[str, dict[str, dict[str, Any]]] = {}

    # --- plumbing -----------------------------------------------------------------------------------

    def _add(self, name: str, verdict: Verdict, detail: str = "", advice_key: str = "", *, advice: str = "",
             required: bool = True) -> Outcome:  # fmt: skip
        outcome = Outcome(name, verdict, detail, advice or (advice_for(advice_key, self.report.store)
                                                            if advice_key else ""), required)  # fmt: skip
        self.report.outcomes.append(outcome)
        return outcome

    def _put(self, resource: dict[str, Any], *, if_match: str | None = None) -> dict[str, Any]:
        """A PUT as `RegistryClient` sends it (references rewritten for the store), without its step that writes
        the registry Patient: the check writes its Patients itself, tagged."""
        written = FHIRClient.update(self.client, to_registry(validated(resource)), if_match=if_match)
        self._remember(resource["resourceType"], str(written.get("id") or resource["id"]))
        return written

    def _remember(self, resource_type: str, resource_id: str) -> None:
        if (resource_type, resource_id) not in self.written:
            self.written.append((resource_type, resource_id))

    def _search(self, resource_type: str, params: Sequence[tuple[str, str]]) -> dict[str, Any]:
        return self.client.search(resource_type, list(params))

    # --- the interactions ---------------------------------------------------------------------------

    def run(self) -> RegistryReport:
        if not self.check_token():
            # Every request carries the token: nothing else can be tried until it is granted.
            for name in ("metadata (CapabilityStatement)", "update-as-create PUT (client id)", "searches"):
                self._add(name, Verdict.NOT_CHECKED, "needs the backend-services token")
            return self.report
        self.check_metadata()
        if self.check_update_create():
            self.check_references()
            self.write_fixtures()
            self.check_transaction()
            self.check_conditional_create()
            self.check_versions()
            self.check_searches()
            self.check_fresh_search()
            self.check_paging()
        else:
            for name in ("referential integrity", "transaction", "conditional create", "If-Match",
                         "versioned read", "searches", "search right after a write", "paging"):  # fmt: skip
                self._add(name, Verdict.NOT_CHECKED, "needs update-as-create PUT")
        self.clean_up()
        return self.report

    def check_token(self) -> bool:
        """Whether the run can go on: a token was granted, or none is asked for."""
        name = "backend-services token"
        if not self.backend_services:
            self._add(name, Verdict.NOT_CONFIGURED,
                      advice="the store must sit behind an authenticating proxy or allow this client by network "
                             "(TANDEM_REGISTRY_AUTH=none)", required=False)  # fmt: skip
            return True
        try:
            granted = self.client.auth.token()
        except errors.TandemError as error:
            self._add(name, Verdict.NOT_SUPPORTED, _why(error), GRANT)
            return False
        if not granted:
            self._add(name, Verdict.NOT_SUPPORTED, "no token was granted", GRANT)
            return False
        self._add(name, Verdict.SUPPORTED, "a token was granted")
        return True

    def check_metadata(self) -> None:
        try:
            capability = self.client.capabilities()
        except errors.TandemError as error:
            self.report.store = detect_store(self.client.base_url, None)
            self._add("metadata (CapabilityStatement)", Verdict.NOT_SUPPORTED, _why(error), METADATA)
            return
        self.report.store = detect_store(self.client.base_url, capability)
        self.report.software = software_name(capability) or ""
        version = fhir_version(capability) or ""
        self.report.fhir_version = version
        if version.startswith("4.0"):
            self._add("metadata (CapabilityStatement)", Verdict.SUPPORTED, f"FHIR {version}")
        else:
            self._add("metadata (CapabilityStatement)", Verdict.NOT_SUPPORTED,
                      f"FHIR {version or 'version not stated'}: Tandem needs R4 (4.0.x)", METADATA)  # fmt: skip

    def check_update_create(self) -> bool:
        name = "update-as-create PUT (client id)"
        try:
            self._put(check_patient(self.values.patient))
            self._put(check_patient(self.values.patient_b))
        except errors.TandemError as error:
            self._add(name, Verdict.NOT_SUPPORTED, _why(error), UPDATE_CREATE)
            return False
        self._add(name, Verdict.SUPPORTED, f"registry Patient {self.values.patient.registry_id[:10]}…")
        return True

    def check_references(self) -> None:
        """A resource referencing the registry Patient written above is accepted (required); one referencing a
        Patient the store lacks is refused or not (informational)."""
        first = self.resources["Observation"][0]
        try:
            written = self._put(first)
            self.stored.setdefault("Observation", {})[first["id"]] = written
            self._add("reference to the registry Patient", Verdict.SUPPORTED)
        except errors.TandemError as error:
            self._add("reference to the registry Patient", Verdict.NOT_SUPPORTED, _why(error), REFERENCE)
        orphan = _tagged({"resourceType": "Observation", "status": "final",
                          "code": {"coding": [{"system": INSTRUMENT_SYSTEM, "code": f"{self.values.code}-orphan"}]},
                          "subject": self.values.missing.reference(), "valueInteger": 0})  # fmt: skip
        name = "reference to a missing Patient"
        try:
            # Sent without RegistryClient's step that would write the missing Patient first.
            created = FHIRClient.create(self.client, to_registry(validated(orphan)))
        except errors.TandemError as error:
            self._add(name, Verdict.NOTED, f"enforced (refused: {error.message})", REFERENCE_MISSING,
                      required=False)  # fmt: skip
            return
        if created.get("id"):
            self._remember("Observation", str(created["id"]))
        self._add(name, Verdict.NOTED, "not enforced (accepted)", REFERENCE_MISSING, required=False)

    def write_fixtures(self) -> None:
        """The resources the searches must find. A write the store refuses shows in the searches that need it."""
        for resource_type, resources in self.resources.items():
            for resource in resources:
                if resource["id"] in self.stored.get(resource_type, {}):
                    continue
                try:
                    self.stored.setdefault(resource_type, {})[resource["id"]] = self._put(resource)
                except errors.TandemError as error:
                    self._add(f"write {resource_type}", Verdict.NOT_SUPPORTED, _why(error),
                              advice=f"allow Tandem to create and update {resource_type}")  # fmt: skip
                    break

    def check_transaction(self) -> None:
        """A transaction as Tandem's: the new patient's registry Patient PUT first, a POST whose urn:uuid another
        entry references, a PUT with a client id."""
        key, run = self.values.patient_c, self.values.run
        posted_url = f"urn:uuid:{uuid.uuid4()}"
        observation = {"resourceType": "Observation", "status": "final", "subject": key.reference(),
                       "code": {"coding": [{"system": INSTRUMENT_SYSTEM, "code": self.values.code}]},
                       "valueInteger": 1}  # fmt: skip
        put_id = f"tc-{run}-txn"
        derived = _tagged({**observation, "id": put_id, "derivedFrom": [{"reference": posted_url}]})
        patient = check_patient(key)
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": f"Patient/{key.registry_id}", "resource": patient,
             "request": {"method": "PUT", "url": f"Patient/{key.registry_id}"}},
            {"fullUrl": posted_url, "resource": to_registry(validated(_tagged(observation))),
             "request": {"method": "POST", "url": "Observation"}},
            {"fullUrl": f"Observation/{put_id}", "resource": to_registry(validated(derived)),
             "request": {"method": "PUT", "url": f"Observation/{put_id}"}}]}  # fmt: skip
        name = "transaction Bundle"
        try:
            response = FHIRClient.transaction(self.client, validated(bundle))
        except errors.TandemError as error:
            self._add(name, Verdict.NOT_SUPPORTED, _why(error), TRANSACTION)
            return
        self._remember("Patient", key.registry_id)
        locations = [str((e.get("response") or {}).get("location") or "") for e in response.get("entry") or []
                     if isinstance(e, Mapping)]  # fmt: skip
        posted_id = (
            locations[1].split("/_history")[0].rstrip("/").split("/")[-1] if len(locations) > 1 else ""
        )
        if posted_id:
            self._remember("Observation", posted_id)
        self._remember("Observation", put_id)
        try:
            stored = self.client.read("Observation", put_id)
        except errors.TandemError as error:
            self._add(name, Verdict.NOT_SUPPORTED, f"the PUT entry could not be read back: {_why(error)}",
                      TRANSACTION)  # fmt: skip
            return
        reference = str(((stored.get("derivedFrom") or [{}])[0]).get("reference") or "")
        if reference.startswith("urn:uuid:") or not reference.startswith("Observation/"):
            self._add(name, Verdict.NOT_SUPPORTED, "the urn:uuid reference to the POSTed entry was not resolved",
                      TRANSACTION)  # fmt: skip
            return
        self._add(name, Verdict.SUPPORTED, "PUT Patient, POST with urn:uuid, PUT with a client id")

    def check_conditional_create(self) -> None:
        name = "conditional create (If-None-Exist)"
        questionnaire = _tagged({"resourceType": "Questionnaire", "status": "draft", "url": self.values.q_url,
                                 "version": "1", "title": "Tandem registry contract check"})  # fmt: skip
        condition = f"url={self.values.q_url}&version=1"
        try:
            first = FHIRClient.create(self.client, validated(questionnaire), if_none_exist=condition)
            if first.get("id"):
                self._remember("Questionnaire", str(first["id"]))
            second = FHIRClient.create(self.client, validated(questionnaire), if_none_exist=condition)
            if second.get("id"):
                self._remember("Questionnaire", str(second["id"]))
            found = _ids(self._search("Questionnaire", [("url", self.values.q_url)]), "Questionnaire")
        except errors.TandemError as error:
            self._add(name, Verdict.NOT_SUPPORTED, _why(error), CONDITIONAL_CREATE, required=False)
            self._publish_fallback()
            return
        if first.get("id") != second.get("id") or len(found) > 1:
            self._add(name, Verdict.NOT_SUPPORTED, "the second create made a duplicate", CONDITIONAL_CREATE,
                      required=False)  # fmt: skip
            return
        self._add(name, Verdict.SUPPORTED, "the second create returned the first", required=False)

    def _publish_fallback(self) -> None:
        """Tandem's fallback when If-None-Exist is refused: the Questionnaire by update-as-create (so the url and
        version searches have something to find)."""
        try:
            self._put(_tagged({"resourceType": "Questionnaire", "id": f"tc-{self.values.run}-q", "status": "draft",
                               "url": self.values.q_url, "version": "1"}))  # fmt: skip
        except errors.TandemError:
            return

    def check_versions(self) -> None:
        """Versioned read (meta.versionId or ETag), then If-Match: the current version updates, a stale one is
        refused (409/412)."""
        tasks = self.stored.get("Task") or {}
        if not tasks:
            self._add("versioned read", Verdict.NOT_CHECKED, "no Task could be written")
            self._add("If-Match", Verdict.NOT_CHECKED, "no Task could be written")
            return
        task_id = next(iter(tasks))
        try:
            current = self.client.read("Task", task_id)
        except errors.TandemError as error:
            self._add("versioned read", Verdict.NOT_SUPPORTED, _why(error), VERSIONED_READ)
            self._add("If-Match", Verdict.NOT_CHECKED, "needs a versioned read")
            return
        stale = etag_for(current)
        if stale is None:
            self._add(
                "versioned read", Verdict.NOT_SUPPORTED, "no meta.versionId and no ETag", VERSIONED_READ
            )
            self._add("If-Match", Verdict.NOT_CHECKED, "needs a versioned read")
            return
        self._add("versioned read", Verdict.SUPPORTED, "meta.versionId / ETag")
        try:
            self._put({**current, "description": "Tandem registry contract check (updated)"}, if_match=stale)
        except errors.TandemError as error:
            self._add(
                "If-Match", Verdict.NOT_SUPPORTED, f"the current version was refused: {_why(error)}", IF_MATCH
            )
            return
        try:
            self._put({**current, "description": "Tandem registry contract check (stale)"}, if_match=stale)
        except (errors.FHIRPreconditionFailed, errors.FHIRConflict) as error:
            self._add(
                "If-Match",
                Verdict.SUPPORTED,
                f"a stale version was refused with HTTP {error.message.rsplit(' ', 1)[-1]}",
            )
            return
        except errors.TandemError as error:
            self._add(
                "If-Match", Verdict.NOT_SUPPORTED, f"a stale version was answered {_why(error)}", IF_MATCH
            )
            return
        self._add("If-Match", Verdict.NOT_SUPPORTED, "a stale version overwrote the current one", IF_MATCH)

    def check_searches(self) -> None:
        for use in SEARCHES:
            if use.kind is Kind.FILTER:
                self._check_filter(use)
            elif use.kind is Kind.SORT:
                self._check_sort(use)
            else:
                self._check_count(use)

    def check_fresh_search(self) -> None:
        """A search repeated right after a write finds the new resource (HAPI caches search results for 60 s by
        default: Tandem's searches ask for fresh ones). Also notes whether the store caches without being told."""
        name = "search right after a write"
        params = [("patient", self.values.patient.relative), ("code", f"{TASK_SYSTEM}|{self.values.code}"),
                  ("_count", "50")]  # fmt: skip
        task = {**self.resources["Task"][0], "id": f"tc-{self.values.run}-fresh"}
        try:
            FHIRClient.search(self.client, "Task", params)  # as any earlier view: the store may cache it
            self.client.search("Task", params)
            self._put(task)
            plain = _ids(FHIRClient.search(self.client, "Task", params), "Task")
            fresh = _ids(self.client.search("Task", params), "Task")
        except errors.TandemError as error:
            self._add(name, Verdict.NOT_SUPPORTED, _why(error), FRESH)
            return
        if task["id"] not in fresh:
            self._add(name, Verdict.NOT_SUPPORTED, "the new Task was missing from the search repeated after it",
                      FRESH)  # fmt: skip
            return
        cached = task["id"] not in plain
        self._add(name, Verdict.SUPPORTED, "found at once" + (
            " (the store answers a repeated search from its cache unless asked with Cache-Control: no-cache, "
            "as Tandem asks)" if cached else ""))  # fmt: skip

    def _of(self, resource_type: str, *keys: PatientKey) -> list[str]:
        """The ids of the written resources of a type that name one of these patients."""
        wanted = {key.relative for key in keys}
        return [r["id"] for r in self.resources.get(resource_type, [])
                if any(str((r.get(e) or {}).get("reference")) in wanted for e in ("subject", "for", "patient"))]  # fmt: skip

    def _expected(self, use: SearchUse) -> list[str]:
        if use.resource_type == "Questionnaire":
            return []  # its id is the store's (conditional create) or the fallback's: found by url below
        keys = (self.values.patient, self.values.patient_b) if use.finds == "ab" else (self.values.patient,)
        return self._of(use.resource_type, *keys)

    def _check_filter(self, use: SearchUse) -> None:
        expected = self._expected(use)
        stored = self.stored.get(use.resource_type) or {}
        since, future = self._times(stored)
        try:
            found = _ids(self._search(use.resource_type, self.values.fill(use.match, since=since, future=future)),
                         use.resource_type)  # fmt: skip
        except errors.TandemError as error:
            self._add(use.name, Verdict.NOT_SUPPORTED, _why(error), advice=use.advice, required=use.required)
            return
        note = ""
        try:
            missed = _ids(self._search(use.resource_type, self.values.fill(use.miss, since=since, future=future)),
                          use.resource_type)  # fmt: skip
        except errors.FHIRNotFound:
            # Some stores answer 404 for a reference to a Patient they do not hold: nothing matches.
            missed, note = (
                [],
                "; a reference to a Patient the store lacks is answered 404, not an empty Bundle",
            )
        except errors.TandemError as error:
            self._add(use.name, Verdict.NOT_SUPPORTED, _why(error), advice=use.advice, required=use.required)
            return
        if use.resource_type == "Questionnaire" and not found:
            verdict, detail = Verdict.NOT_SUPPORTED, "the Questionnaire written was not found"
        else:
            verdict, detail = search_verdict(found, expected, missed)
        detail = (detail + note).lstrip("; ")
        self._add(use.name, verdict, detail, advice=use.advice, required=use.required)

    def _times(self, stored: Mapping[str, Mapping[str, Any]]) -> tuple[str, str]:
        """`_lastUpdated` values: just before the earliest write the store stamped, and a day after it."""
        stamps = []
        for resource in stored.values():
            value = str((resource.get("meta") or {}).get("lastUpdated") or "")
            try:
                stamps.append(datetime.fromisoformat(value.replace("Z", "+00:00")))
            except ValueError:
                continue
        earliest = min(stamps) if stamps else self.now() - timedelta(minutes=10)
        if earliest.tzinfo is None:
            earliest = earliest.replace(tzinfo=UTC)
        return _tandem_time(earliest - timedelta(seconds=1)), _tandem_time(earliest + timedelta(days=1))

    def _check_sort(self, use: SearchUse) -> None:
        expected = self._of(use.resource_type, self.values.patient)
        params = self.values.fill(use.match)
        try:
            before = _ids(self._search(use.resource_type, params), use.resource_type)
            ours = [rid for rid in before if rid in expected]
            if ours:
                # Touch the first: a store ordering by last update (ignoring _sort) now answers another order.
                current = self.client.read(use.resource_type, ours[0])
                self._put({**current, **_CHANGE[use.resource_type], "meta": {"tag": [dict(CHECK_TAG)]}})
            after = _ids(self._search(use.resource_type, params), use.resource_type)
        except errors.TandemError as error:
            self._add(use.name, Verdict.NOT_SUPPORTED, _why(error), advice=use.advice, required=use.required)
            return
        verdict, detail = sort_verdict(before, after, expected)
        self._add(use.name, verdict, detail, advice=use.advice, required=use.required)

    def _check_count(self, use: SearchUse) -> None:
        try:
            bundle = self._search(use.resource_type, self.values.fill(use.match))
        except errors.TandemError as error:
            self._add(use.name, Verdict.NOT_SUPPORTED, _why(error), advice=use.advice, required=use.required)
            return
        entries = _ids(bundle, use.resource_type)
        if len(entries) > 1:
            verdict, detail = Verdict.NOT_SUPPORTED, f"_count=1 answered {len(entries)} resources"
        elif not _has_next(bundle):
            verdict, detail = Verdict.NOT_SUPPORTED, "_count=1 answered no next link though more match"
        else:
            verdict, detail = Verdict.SUPPORTED, ""
        self._add(use.name, verdict, detail, advice=use.advice, required=use.required)

    def check_paging(self, count: int = 3, max_pages: int = 10) -> None:
        """`_count` paging to the end, as the caseload reads: every written Task exactly once, the last page
        without `next`, every link on the store's origin (the client refuses any other)."""
        name = f"paging (_count={count}, next links)"
        expected = self._of("Task", self.values.patient)
        pages: list[list[str]] = []
        try:
            page: dict[str, Any] | None = self._search(
                "Task", [("patient", self.values.patient.relative), ("_count", str(count))]
            )
            while page is not None and len(pages) < max_pages:
                pages.append(_ids(page, "Task"))
                page = self.client.next_page(page)
            ended = page is None
        except errors.UnsafeURL:
            self._add(name, Verdict.NOT_SUPPORTED, "a next link names another origin", PAGING)
            return
        except errors.TandemError as error:
            self._add(name, Verdict.NOT_SUPPORTED, _why(error), PAGING)
            return
        verdict, detail = paging_verdict(pages, expected, count, ended=ended)
        self._add(name, verdict, detail, PAGING)

    def clean_up(self) -> None:
        """Delete what was written, dependants before their Patients. Never a failure."""
        refused: list[str] = []
        for resource_type, resource_id in reversed(self.written):
            url = f"{self.client.base_url}/{resource_type}/{resource_id}"
            try:
                self.client.send("DELETE", url, what=f"delete {resource_type}")
            except errors.TandemError as error:
                refused.append(error.message)
        if not self.written:
            return
        if refused:
            self._add("clean-up (delete)", Verdict.NOTED,
                      f"{len(refused)} of {len(self.written)} deletes refused ({refused[0]})", CLEAN_UP,
                      required=False)  # fmt: skip
        else:
            self._add("clean-up (delete)", Verdict.NOTED, f"deleted all {len(self.written)} resources written",
                      required=False)  # fmt: skip


def run_registry_check(client: FHIRClient, *, backend_services: bool) -> RegistryReport:
    """Run every check against the store `client` names (see the module doc)."""
    return RegistryCheck(client, backend_services=backend_services).run()
