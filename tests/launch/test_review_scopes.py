"""The psychiatric case review reads each patient's current medications from a worklist launch (no patient in
context): a user-level read. Asked of a generic SMART server only; ehr-integration.md does not say whether Epic or
Oracle grant user-level medication reads, so they are not asked (the review then says the list could not be read)."""

from __future__ import annotations

import pytest

from launch.discovery import SmartConfiguration
from launch.oauth import requested_scopes
from launch.registrations import Registration
from launch.scopes import LaunchMode, Vendor, allows

V2 = SmartConfiguration(authorization_endpoint="https://a/authorize", token_endpoint="https://a/token",
                        capabilities=("permission-v2", "permission-patient", "permission-user"))  # fmt: skip


@pytest.mark.parametrize(
    ("vendor", "asked"),
    [
        (Vendor.GENERIC, True),  # the sandbox's generic mode: what its scopes allow
        (Vendor.EPIC, False),  # not in ehr-integration.md: unconfirmed, not asked
        (Vendor.ORACLE, False),
    ],
)
@pytest.mark.parametrize("resource_type", ["MedicationRequest", "MedicationStatement"])
def test_the_worklist_launch_asks_for_user_level_medication_reads(vendor: Vendor, asked: bool,
                                                                  resource_type: str) -> None:  # fmt: skip
    scopes = requested_scopes(Registration(iss="https://ehr.example.org/fhir", client_id="c", vendor=vendor), V2,
                              LaunchMode.EHR)  # fmt: skip
    assert allows(scopes, "user", resource_type, "s") is asked
    assert allows(scopes, "user", resource_type, "r") is asked
