"""One question per screen, each step its own page (Post/Redirect/Get): the answers so far are kept on the server
between steps, so a phone's Back button goes to the previous step's page (a GET, showing the saved answer) and
never asks to send a form again. A draft belongs to one portal launch, or to one confirmed visit of a questionnaire
link (the visit's cookie is part of its key), and to one questionnaire; it remembers the record its answers made,
so a step reached again after the end shows the thank-you page, never a second record. Framework-neutral."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from launch.store import KeyValueStore

#: How long a draft of a portal launch is kept (time to answer on a phone, with breaks).
DRAFT_SECONDS = 2 * 3600


def _fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


@dataclass
class Draft:
    #: The submission id the answers are saved under (saving twice finds the first record).
    submission_id: str
    answers: dict[str, str] = field(default_factory=dict)
    #: The record the answers made, once sent.
    record: str | None = None


class Drafts:
    def __init__(self, store: KeyValueStore, seconds: int = DRAFT_SECONDS) -> None:
        self.store = store
        self.seconds = seconds

    @staticmethod
    def portal_owner(launch_id: str, instrument: str) -> str:
        return f"portal:{_fingerprint(launch_id)}:{instrument}"

    @staticmethod
    def link_owner(token: str, visit_secret: str) -> str:
        return f"link:{_fingerprint(token)}:{_fingerprint(visit_secret)}"

    def _key(self, owner: str) -> str:
        return f"selfreport:draft:{owner}"

    def get(self, owner: str) -> Draft | None:
        raw = self.store.get(self._key(owner))
        if raw is None:
            return None
        data = json.loads(raw)
        return Draft(str(data["submission_id"]), dict(data.get("answers") or {}), data.get("record"))

    def start(self, owner: str) -> Draft:
        """The owner's draft, begun now when there is none."""
        found = self.get(owner)
        if found is not None:
            return found
        draft = Draft(secrets.token_hex(16))
        self.save(owner, draft)
        return draft

    def save(self, owner: str, draft: Draft) -> None:
        value = {"submission_id": draft.submission_id, "answers": draft.answers, "record": draft.record}
        self.store.set(self._key(owner), json.dumps(value), self.seconds)

    def answer(self, owner: str, draft: Draft, answers: Mapping[str, str]) -> Draft:
        """The draft with this step's answers added (an answer changed replaces the earlier one)."""
        draft.answers.update({k: v for k, v in answers.items() if v})
        self.save(owner, draft)
        return draft

    def sent(self, owner: str, draft: Draft, record_id: str) -> None:
        """The answers were saved: keep only which record they made (the answers themselves are dropped)."""
        self.save(owner, Draft(draft.submission_id, {}, record_id))
