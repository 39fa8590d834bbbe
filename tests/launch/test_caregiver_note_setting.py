"""`caregiver_note_item_level` under `[[issuer]]` (issue 26 §3): off unless set, and checked at start-up (a
misspelt or non-boolean value stops Tandem instead of silently putting a caregiver's answers on a child's chart)."""

from __future__ import annotations

from typing import Any

import pytest

from launch.errors import ConfigurationError
from launch.registrations import parse_registrations

ENTRY = {"iss": "https://ehr.example.org/fhir", "client_id": "tandem"}


# Source: issue 26 §3 — "A registration setting may allow item level" (default: no item-level answers).
@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ({}, False),
        ({"caregiver_note_item_level": False}, False),
        ({"caregiver_note_item_level": True}, True),
        ({"caregiver_note_item_level": "yes"}, ConfigurationError),
        ({"caregiver_note_item_level": 1}, ConfigurationError),
        ({"caregiver_notes_item_level": True}, ConfigurationError),  # misspelt: refused, not ignored
    ],
)
def test_caregiver_note_item_level_is_validated(setting: dict[str, Any], expected: Any) -> None:
    data = {"issuer": [{**ENTRY, **setting}]}
    if expected is ConfigurationError:
        with pytest.raises(ConfigurationError, match="caregiver_note"):
            parse_registrations(data)
        return
    registration = parse_registrations(data).get(ENTRY["iss"])
    assert registration is not None and registration.caregiver_note_item_level is expected
