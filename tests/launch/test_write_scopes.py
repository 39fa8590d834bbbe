"""The vendor profiles' write-back scopes: the worklist's user-level creates and the reads that confirm a write
whose answer was lost, only where ../shared/reference/ehr-integration.md says the vendor accepts the write."""

from __future__ import annotations

import pytest

from launch.discovery import SmartConfiguration
from launch.oauth import requested_scopes
from launch.registrations import Registration
from launch.scopes import WRITE_SCOPES, LaunchMode, Vendor, allows
from smartapp.check import advertised

ISS = "https://ehr.example.org/fhir"
V2 = SmartConfiguration(authorization_endpoint="https://a/authorize", token_endpoint="https://a/token",
                        capabilities=("permission-v2", "permission-patient", "permission-user"))  # fmt: skip


@pytest.mark.parametrize(
    ("vendor", "resource_type", "asked"),
    [
        # ehr-integration.md §1: both vendors accept DocumentReference creates (clinical notes) ...
        (Vendor.ORACLE, "DocumentReference", True),
        # ... but Epic files notes only against an encounter, which a worklist launch lacks: not asked.
        (Vendor.EPIC, "DocumentReference", False),
        # §1: neither accepts survey Observations or QuestionnaireResponses from apps.
        (Vendor.EPIC, "Observation", False),
        (Vendor.EPIC, "QuestionnaireResponse", False),
        (Vendor.ORACLE, "Observation", False),
        (Vendor.ORACLE, "QuestionnaireResponse", False),
        # A generic SMART server (the sandbox's generic mode): whatever its CapabilityStatement accepts.
        (Vendor.GENERIC, "DocumentReference", True),
        (Vendor.GENERIC, "Observation", True),
        (Vendor.GENERIC, "QuestionnaireResponse", True),
    ],
)
def test_the_ehr_launch_asks_for_the_worklist_creates_the_vendor_accepts(vendor: Vendor, resource_type: str,
                                                                         asked: bool) -> None:  # fmt: skip
    reg = Registration(iss=ISS, client_id="c", vendor=vendor)
    scopes = requested_scopes(reg, V2, LaunchMode.EHR)
    assert allows(scopes, "user", resource_type, "c") is asked


@pytest.mark.parametrize("vendor", [Vendor.EPIC, Vendor.ORACLE])
def test_vendor_write_scopes_not_in_the_reference_are_marked_unconfirmed(vendor: Vendor) -> None:
    # ehr-integration.md does not say whether Epic or Oracle grant user-level note creates or note searches.
    assert WRITE_SCOPES[vendor] and all(not p.confirmed for p in WRITE_SCOPES[vendor])


def test_the_registration_replaces_the_write_scopes() -> None:
    reg = Registration(iss=ISS, client_id="c", vendor=Vendor.ORACLE, write_scopes=["user/Observation.c"])
    scopes = requested_scopes(reg, V2, LaunchMode.EHR)
    assert "user/Observation.c" in scopes and "user/DocumentReference.c" not in scopes
    assert [(p.scope, p.confirmed) for p in reg.write_profile] == [("user/Observation.c", True)]


def test_a_v1_server_gets_the_write_scopes_in_the_v1_spelling() -> None:
    v1 = SmartConfiguration(authorization_endpoint="https://a/authorize", token_endpoint="https://a/token")
    scopes = requested_scopes(Registration(iss=ISS, client_id="c", vendor=Vendor.ORACLE), v1, LaunchMode.EHR)
    assert "user/DocumentReference.write" in scopes and "user/DocumentReference.read" in scopes


@pytest.mark.parametrize(
    ("scope", "supported", "capabilities", "expected"),
    [
        ("user/DocumentReference.c", ("user/DocumentReference.c",), ("permission-user",), "yes"),
        ("user/DocumentReference.c", ("user/DocumentReference.write",), ("permission-user",), "yes"),
        ("user/DocumentReference.c", ("patient/Patient.r",), ("permission-user",), "NO"),
        ("user/DocumentReference.c", ("openid",), ("permission-user",), "not listed"),
        (
            "user/DocumentReference.c",
            ("user/DocumentReference.c",),
            ("permission-patient",),
            "NO (no permission-user",
        ),
        ("openid", ("openid",), (), "yes"),
    ],
)
def test_check_says_whether_the_server_advertises_a_scope(scope: str, supported: tuple[str, ...],
                                                          capabilities: tuple[str, ...], expected: str) -> None:  # fmt: skip
    config = SmartConfiguration(authorization_endpoint="https://a/authorize", token_endpoint="https://a/token",
                                scopes_supported=supported, capabilities=capabilities)  # fmt: skip
    assert advertised(scope, config).startswith(expected)
