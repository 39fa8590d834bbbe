"""The `patient-view` service: what is known about the patient (the EHR's data from prefetch, else from the FHIR
server with the call's token; the registry's with backend services), the cards, and the card-to-launch hand-over.
Framework-neutral: the Flask views pass in the verified caller, the body and the public base URL."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fhir_mappings.cds.cards import (
    Card,
    CardFacts,
    build_cards,
    card_json,
    patient_view_service,
)
from fhir_mappings.cds.prefetch import Prefetched, State, read_prefetch
from fhir_mappings.common.conditions import behavioral_conditions
from fhir_mappings.common.identity import PatientKey
from fhir_mappings.registry.programs import program_or_default
from fhir_mappings.registry.worklist import build_rows
from fhir_mappings.screening.history import SCORE_CODE_PARAM, ScorePoint, merge_history, score_points
from launch import errors
from launch.fhir import FHIRClient, StaticToken
from launch.registrations import Registration, normalize_iss
from smartapp import clock
from smartapp.cds.client_auth import CdsCaller
from smartapp.due import due_screens, schedule_gestation
from smartapp.errors import CdsBadRequest, CdsDataUnavailable, CdsUnknownCard

if TYPE_CHECKING:
    from smartapp.services import Services

log = logging.getLogger(__name__)

#: A card's launch context is kept this long (the EHR launches within minutes of showing the card).
CARD_TTL_SECONDS = 600
#: Which EHR each card was issued to (and its kind) is kept this long: feedback is accepted only for these cards.
ISSUED_TTL_SECONDS = 30 * 86400
#: A feedback record is kept this long (a year of counts for the program lead, and a little more).
FEEDBACK_TTL_SECONDS = 400 * 86400
#: At most this many feedback records per EHR; beyond it new feedback is not stored (a warning is logged).
FEEDBACK_CAP_PER_ISSUER = 20_000
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_USER = re.compile(r"^(Practitioner|PractitionerRole|Patient|RelatedPerson)/[A-Za-z0-9\-.]{1,64}$")
CARD_KEY = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
OUTCOMES = ("accepted", "overridden")
MAX_PAGES = 5


def prefetch_templates() -> dict[str, str]:
    """What Tandem asks the EHR to send with each call (the same queries it makes itself when they are missing)."""
    patient = "{{context.patientId}}"
    return {
        "patient": f"Patient/{patient}",
        "scores": f"Observation?patient={patient}&code={SCORE_CODE_PARAM}&_sort=-date&_count=100",
        "conditions": f"Condition?patient={patient}&clinical-status=active&_count=100",
    }


@dataclass(frozen=True)
class EhrFacts:
    patient: dict[str, Any] | None
    observations: list[dict[str, Any]]
    conditions: list[dict[str, Any]]
    #: How many FHIR requests the missing prefetch cost.
    requests: int


def _subject_is(resource: Mapping[str, Any], patient_id: str) -> bool:
    reference = str(((resource.get("subject") or resource.get("patient") or {}) or {}).get("reference", ""))
    return reference == f"Patient/{patient_id}" or reference.endswith(f"/Patient/{patient_id}")


class CdsService:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.definition = patient_view_service()
        self.feedback_cap = FEEDBACK_CAP_PER_ISSUER

    # --- discovery --------------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        d = self.definition
        return {"services": [{"hook": d.hook, "title": d.title, "description": d.description, "id": d.id,
                              "prefetch": prefetch_templates()}]}  # fmt: skip

    # --- patient-view -----------------------------------------------------------------------------

    def patient_view(self, caller: CdsCaller, body: Any, base_url: str) -> dict[str, Any]:
        """The cards for one `patient-view` call (CdsBadRequest, CdsDataUnavailable)."""
        reg = caller.registration
        context = self._check_body(body, reg)
        patient_id = str(context["patientId"])
        user = str(context["userId"])
        key = PatientKey(reg.iss, patient_id)
        ehr = self._ehr_facts(reg, body, patient_id)
        if ehr.patient is None:  # the EHR has no such patient: nothing to say
            return {"cards": []}
        facts, careplan_id = self._facts(key, ehr, user)
        cards = build_cards(facts, lambda: str(uuid.uuid4()), limit=self.definition.max_cards)
        for card in cards:
            self._remember(card, key, careplan_id)
        log.info("patient-view at %s: %d card(s) (%s), %d FHIR request(s) for missing prefetch", reg.label,
                 len(cards), ",".join(c.kind for c in cards) or "-", ehr.requests)  # fmt: skip
        return {"cards": [card_json(card, self.definition, base_url) for card in cards]}

    def _check_body(self, body: Any, reg: Registration) -> Mapping[str, Any]:
        if not isinstance(body, Mapping):
            raise CdsBadRequest("the request body is not a JSON object")
        if body.get("hook") != self.definition.hook:
            raise CdsBadRequest(f"this service answers the {self.definition.hook} hook")
        if not isinstance(body.get("hookInstance"), str) or not body["hookInstance"]:
            raise CdsBadRequest("hookInstance is required")
        context = body.get("context")
        if not isinstance(context, Mapping):
            raise CdsBadRequest("context is required")
        if not isinstance(context.get("patientId"), str) or not _ID.match(context["patientId"]):
            raise CdsBadRequest("context.patientId must be a FHIR id")
        if not isinstance(context.get("userId"), str) or not _USER.match(context["userId"]):
            raise CdsBadRequest(
                "context.userId must be a Practitioner, PractitionerRole, Patient or RelatedPerson"
            )
        server = body.get("fhirServer")
        if server is not None and (not isinstance(server, str) or normalize_iss(server) != reg.iss):
            # The patient id means something only at the EHR the caller is registered for.
            raise CdsBadRequest("fhirServer is not the FHIR server registered for this CDS client")
        if body.get("fhirAuthorization") is not None and server is None:
            raise CdsBadRequest("fhirServer is required with fhirAuthorization")
        return context

    def _client(self, reg: Registration, body: Mapping[str, Any]) -> FHIRClient | None:
        auth = body.get("fhirAuthorization")
        if not isinstance(auth, Mapping):
            return None
        token = auth.get("access_token")
        if (
            not isinstance(token, str)
            or not token
            or str(auth.get("token_type", "Bearer")).lower() != "bearer"
        ):
            raise CdsBadRequest("fhirAuthorization needs a Bearer access_token")
        return FHIRClient(reg.iss, self.services.transport, StaticToken(token), name="EHR (CDS)")

    def _ehr_facts(self, reg: Registration, body: Mapping[str, Any], patient_id: str) -> EhrFacts:
        client = self._client(reg, body)
        before = client.counter.total if client is not None else 0
        prefetch = body.get("prefetch")
        patient_state = read_prefetch(prefetch, "patient", resource_type="Patient")
        if patient_state.state is State.FOUND and patient_state.resources[0].get("id") != patient_id:
            patient_state = Prefetched(State.ERROR)  # another patient's record is never used
        if patient_state.state is State.NONE:
            patient: dict[str, Any] | None = None
        elif patient_state.usable:
            patient = patient_state.resources[0]
        else:
            patient = self._fetch_read(client, patient_id)
        observations = self._search(client, read_prefetch(prefetch, "scores"), "Observation", {
            "patient": patient_id, "code": SCORE_CODE_PARAM, "_sort": "-date", "_count": "100"})  # fmt: skip
        conditions = self._search(client, read_prefetch(prefetch, "conditions"), "Condition", {
            "patient": patient_id, "clinical-status": "active", "_count": "100"})  # fmt: skip
        return EhrFacts(
            patient=patient,
            observations=[o for o in observations if _subject_is(o, patient_id)],
            conditions=[c for c in conditions if _subject_is(c, patient_id)],
            requests=(client.counter.total - before) if client is not None else 0,
        )

    def _fetch_read(self, client: FHIRClient | None, patient_id: str) -> dict[str, Any] | None:
        if client is None:
            raise CdsDataUnavailable("the patient was not prefetched and no FHIR server access was given")
        try:
            return client.read("Patient", patient_id)
        except errors.FHIRNotFound:
            return None
        except errors.TandemError as error:
            raise CdsDataUnavailable(
                f"the patient could not be read from the FHIR server ({error.message})"
            ) from None

    def _search(self, client: FHIRClient | None, found: Prefetched, resource_type: str,
                params: dict[str, str]) -> list[dict[str, Any]]:  # fmt: skip
        try:
            if found.usable:
                resources = list(found.resources)
                page: dict[str, Any] | None = {"link": [{"relation": "next", "url": found.next_url}]}
                for _ in range(MAX_PAGES if found.next_url and client is not None else 0):
                    # A paginated prefetch: the rest from the server (same origin only, as every next link).
                    page = client.next_page(page) if client is not None and page is not None else None
                    if page is None:
                        break
                    resources += [e["resource"] for e in page.get("entry") or [] if isinstance(e, Mapping)
                                  and isinstance(e.get("resource"), Mapping)]  # fmt: skip
                return resources
            if client is None:
                raise CdsDataUnavailable(
                    f"{resource_type} was not prefetched and no FHIR server access was given"
                )
            return client.search_all(resource_type, params, max_pages=MAX_PAGES)
        except errors.TandemError as error:
            if isinstance(error, CdsDataUnavailable):
                raise
            raise CdsDataUnavailable(
                f"{resource_type} could not be read from the FHIR server ({error.message})"
            ) from None

    def _facts(self, key: PatientKey, ehr: EhrFacts, user: str) -> tuple[CardFacts, str | None]:
        """What the cards say, and the active enrolment (its CarePlan id) the registry cards open."""
        svc = self.services
        today = clock.today()
        data = None
        if svc.registry is not None:
            try:
                # The caseload snapshot (fresh within seconds, re-synced after any Tandem write): a chart open
                # costs no registry request while it is fresh, which keeps the service fast under load.
                data = svc.caseload.load().for_patient(key)
            except (errors.FHIRError, errors.TokenError) as error:
                log.warning("patient-view: the registry could not be read (%s); cards from the EHR's data only",
                            type(error).__name__)  # fmt: skip
        records = svc.screenings.for_patient(key.iss, key.patient_id)
        registry_points: list[ScorePoint] = data.scores.get(key, []) if data is not None else []
        history = merge_history(score_points(ehr.observations, "EHR"), registry_points)
        conditions = behavioral_conditions(ehr.conditions)
        enrolments = [e for e in (data.enrolments_of(key) if data is not None else []) if e.active]
        screens = due_screens(
            ehr.patient,
            history,
            conditions,
            enrolments,
            records,
            svc.catalogue,
            svc.schedule,
            today,
            schedule_gestation(svc.gestation, key, ehr.patient, svc.schedule, today),
        )
        catalogue = svc.catalogue
        patient_user = user.startswith(("Patient/", "RelatedPerson/"))
        if patient_user:
            if user.startswith("Patient/") and user != key.ehr_relative:
                return CardFacts(patient_user=True), None  # someone else's chart in a portal: nothing
            own = tuple(s for s in screens if not s.caregiver and (i := catalogue.get(s.instrument)) is not None
                        and i.self_report)  # fmt: skip
            return CardFacts(due=own, patient_user=True), None
        # Joined as the follow-up Task joins them (fhir_mappings.screening.resources.safety_task), so that the card
        # states an alert once when both its screening and its Task are open (cards.distinct_alerts).
        safety = ["; ".join(f.message for f in r.result.safety) for r in records if r.needs_acknowledgement]
        if data is not None:
            safety += [t.description or "Same-day safety follow-up" for t in data.tasks
                       if t.kind == "safety-follow-up" and t.open and t.key == key]  # fmt: skip
        program = None
        not_improving = None
        no_contact = None
        if data is not None and enrolments:
            # The EHR's scores with the registry's, as the chart and the worklist show them.
            rows = build_rows(enrolments, data.contacts, data.tasks, {key: history}, today,
                              no_contact_weeks=svc.settings.no_contact_weeks)  # fmt: skip
            row = rows[0] if rows else None
            program = program_or_default(enrolments[0].program).title
            if row is not None:
                program = row.program.title
                if "not-improving" in row.flags:
                    series = row.program.outcome.series
                    scores = row.phq9 if series == "PHQ-9" else row.gad7 if series == "GAD-7" else None
                    change = (f"{series} {scores.first} → {scores.latest}" if scores and scores.first is not None
                              else series)  # fmt: skip
                    not_improving = f"{change} after {row.weeks_in_treatment} weeks"
                if "no-contact" in row.flags:
                    no_contact = (today - (row.last_contact or row.enrolment.start)).days
        facts = CardFacts(safety=tuple(s for s in safety if s), due=tuple(screens), program=program,
                          not_improving=not_improving, no_contact_days=no_contact)  # fmt: skip
        return facts, (enrolments[0].id if enrolments else None)

    # --- the card-to-launch hand-over -------------------------------------------------------------

    def _remember(self, card: Card, key: PatientKey, careplan_id: str | None) -> None:
        target = {**card.launch_target, "iss": key.iss, "patient": key.patient_id}
        if card.action == "patient" and careplan_id:
            target["careplan"] = careplan_id
        store = self.services.store
        store.set(f"cds:card:{card.uuid}", json.dumps(target), CARD_TTL_SECONDS)
        store.set(
            f"cds:issued:{card.uuid}", json.dumps({"kind": card.kind, "iss": key.iss}), ISSUED_TTL_SECONDS
        )

    def card_target(self, card_id: str, iss: str, patient_id: str | None) -> dict[str, str] | None:
        """Where a launch from a card goes: only for the same EHR and the patient the EHR launched with (the key
        is never authorization: the launch's own context is)."""
        if not CARD_KEY.match(card_id or ""):
            return None
        raw = self.services.store.get(f"cds:card:{card_id}")
        if raw is None:
            return None
        target: dict[str, str] = json.loads(raw)
        if target.get("iss") != iss or target.get("patient") != patient_id:
            log.warning("a card's launch named another EHR or patient than the launch's context; ignored")
            return None
        return target

    # --- feedback ---------------------------------------------------------------------------------

    @staticmethod
    def _issuer_key(iss: str) -> str:
        return hashlib.sha256(iss.encode()).hexdigest()[:32]

    def record_feedback(self, caller: CdsCaller, body: Any) -> int:
        """Record accepted/overridden cards (idempotent on card, outcome and timestamp); how many were new.
        Only for cards Tandem issued to this EHR (CdsUnknownCard otherwise, and nothing of the call is stored);
        at most `feedback_cap` records per EHR, each kept FEEDBACK_TTL_SECONDS. User comments are kept with the
        feedback, never logged. Feedback is only counted: it never closes, hides or changes anything (an
        overridden safety card still comes back while its follow-up is open)."""
        items = body.get("feedback") if isinstance(body, Mapping) else None
        if not isinstance(items, list) or not items:
            raise CdsBadRequest("feedback must be a non-empty array")
        parsed = [self._feedback_item(item) for item in items]
        store = self.services.store
        iss = caller.registration.iss
        kinds: dict[str, str] = {}
        for card, *_ in parsed:  # every card first: a call naming an unknown card stores nothing
            issued = store.get(f"cds:issued:{card}")
            record = json.loads(issued) if issued else None
            if not isinstance(record, dict) or record.get("iss") != iss:
                log.warning("CDS feedback from %s about a card Tandem did not issue to it; refused",
                            caller.registration.label)  # fmt: skip
                raise CdsUnknownCard("feedback.card is not a card Tandem issued to this EHR")
            kinds[card] = str(record.get("kind") or "unknown")
        index = f"cds:feedback-index:{self._issuer_key(iss)}"
        new = 0
        for card, outcome, when, reason, comment in parsed:
            identity = hashlib.sha256(f"{card}\x1f{outcome}\x1f{when}".encode()).hexdigest()
            if store.get(f"cds:feedback:{identity}") is not None:
                continue  # the same feedback again
            if not self._room_for_feedback(index):
                log.warning("CDS feedback from %s not stored: its %d records are the most Tandem keeps",
                            caller.registration.label, self.feedback_cap)  # fmt: skip
                break
            record = {"card": card, "kind": kinds[card], "outcome": outcome, "at": when, "reason": reason,
                      "comment": comment, "iss": iss}  # fmt: skip
            if store.set(
                f"cds:feedback:{identity}", json.dumps(record), FEEDBACK_TTL_SECONDS, only_if_absent=True
            ):
                new += 1
                store.add_to_set(index, identity)
                store.add_to_set("cds:feedback-issuers", self._issuer_key(iss))
        log.info("CDS feedback from %s: %d item(s), %d new", caller.registration.label, len(parsed), new)
        return new

    def _room_for_feedback(self, index: str) -> bool:
        """Whether the EHR's feedback is under the cap; expired records are dropped from its index first."""
        store = self.services.store
        members = store.set_members(index)
        if len(members) < self.feedback_cap:
            return True
        for identity in members:
            if store.get(f"cds:feedback:{identity}") is None:
                store.remove_from_set(index, identity)
        return len(store.set_members(index)) < self.feedback_cap

    @staticmethod
    def _feedback_item(item: Any) -> tuple[str, str, str, str | None, str | None]:
        if not isinstance(item, Mapping):
            raise CdsBadRequest("each feedback item must be an object")
        card, outcome, when = item.get("card"), item.get("outcome"), item.get("outcomeTimestamp")
        if not isinstance(card, str) or not CARD_KEY.match(card):
            raise CdsBadRequest("feedback.card must be the uuid of a Tandem card")
        if outcome not in OUTCOMES:
            raise CdsBadRequest("feedback.outcome must be accepted or overridden")
        try:
            datetime.fromisoformat(str(when).replace("Z", "+00:00"))
        except ValueError:
            raise CdsBadRequest("feedback.outcomeTimestamp must be an RFC 3339 time") from None
        reason = comment = None
        override = item.get("overrideReason")
        if isinstance(override, Mapping):
            coding = override.get("reason")
            if isinstance(coding, Mapping) and isinstance(coding.get("code"), str):
                reason = coding["code"][:64]
            if isinstance(override.get("userComment"), str):
                comment = override["userComment"][:1000]
        return card, str(outcome), str(when), reason, comment

    def feedback_summary(self) -> dict[str, dict[str, int]]:
        """Feedback counted by card kind and outcome (with override reasons), for IT and the program lead."""
        store = self.services.store
        summary: dict[str, dict[str, int]] = {}
        identities = set(
            store.set_members("cds:feedback-index")
        )  # kept by earlier versions, until they expire
        for issuer in store.set_members("cds:feedback-issuers"):
            identities |= store.set_members(f"cds:feedback-index:{issuer}")
        for identity in identities:
            raw = store.get(f"cds:feedback:{identity}")
            if raw is None:
                continue
            record = json.loads(raw)
            counts = summary.setdefault(record["kind"], {})
            label = record["outcome"] + (f":{record['reason']}" if record.get("reason") else "")
            counts[label] = counts.get(label, 0) + 1
        return summary
