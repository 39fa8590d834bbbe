"""Care-team pickers list practitioners by the role they hold (issue 28, "Clinician (chart)": care managers for the
care manager, consultants for the consultant; the PCP is never defaulted into another role)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappings.registry.care_team import care_team_people, default_member, pickers


def practitioner(pid: str, name: str, qualification: str | None = None, **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Practitioner", "id": pid, "name": [{"text": name}], **extra}
    if qualification:
        resource["qualification"] = [{"code": {"text": qualification}}]
    return resource


def role(pid: str, text: str | None = None, *, display: str | None = None, specialty: str | None = None,
         active: bool = True) -> dict[str, Any]:  # fmt: skip
    resource: dict[str, Any] = {"resourceType": "PractitionerRole", "active": active,
                                "practitioner": {"reference": f"Practitioner/{pid}"}}  # fmt: skip
    if text or display:
        resource["code"] = [{"text": text} if text else {"coding": [{"code": "x", "display": display}]}]
    if specialty:
        resource["specialty"] = [{"text": specialty}]
    return resource


@pytest.mark.parametrize(
    ("practitioners", "roles", "expected"),
    [
        # The demo's practitioners: roles from Practitioner.qualification (sandbox/data.py PRACTITIONERS).
        ([practitioner("a", "A", "Primary care physician")], [], {"pcp"}),
        ([practitioner("a", "A", "Behavioral health care manager")], [], {"care-manager"}),
        (
            [practitioner("a", "A", "Behavioral health care manager (serious mental illness)")],
            [],
            {"care-manager"},
        ),
        ([practitioner("a", "A", "Psychiatric consultant")], [], {"psychiatric-consultant"}),
        ([practitioner("a", "A", "Pediatrician")], [], {"pcp"}),
        ([practitioner("a", "A", "HealthySteps specialist")], [], {"hs-specialist"}),
        # An EHR's PractitionerRole: its code text, a coding's display, its specialty (FHIR R4 PractitionerRole).
        ([practitioner("a", "A")], [role("a", "Care Manager")], {"care-manager"}),
        ([practitioner("a", "A")], [role("a", display="Psychiatrist")], {"psychiatric-consultant"}),
        ([practitioner("a", "A")], [role("a", "Doctor", specialty="Family medicine")], {"pcp"}),
        # An inactive PractitionerRole says nothing; nor does another practitioner's.
        ([practitioner("a", "A")], [role("a", "Care manager", active=False)], set()),
        ([practitioner("a", "A")], [role("b", "Care manager")], set()),
        # Nothing known: no role (the picker then offers everyone, saying so).
        ([practitioner("a", "A")], [], set()),
    ],
)
def test_roles_of_a_practitioner(practitioners: list[Any], roles: list[Any], expected: set[str]) -> None:
    (person,) = care_team_people(practitioners, roles)
    assert person.roles == expected


def test_each_picker_lists_only_the_role_and_never_defaults_the_pcp_elsewhere() -> None:
    people = care_team_people([
        practitioner("pcp", "Dana Whitfield", "Primary care physician"),
        practitioner("cm", "Teresa Lindqvist", "Behavioral health care manager"),
        practitioner("psy", "Irene Castellanos", "Psychiatric consultant"),
        {"resourceType": "Practitioner", "id": "gone", "active": False, "name": [{"text": "Left"}]},
        {"resourceType": "Patient", "id": "p"}, "not a resource",
    ])  # fmt: skip
    by_role = pickers(people, ["pcp", "care-manager", "psychiatric-consultant", "hs-specialist"])
    assert [p.name for p in by_role["care-manager"].people] == ["Teresa Lindqvist"]
    assert [p.name for p in by_role["psychiatric-consultant"].people] == ["Irene Castellanos"]
    assert [p.name for p in by_role["pcp"].people] == ["Dana Whitfield"]
    # Nobody holds the HealthySteps role: everyone is offered, and nobody is defaulted into it.
    assert not by_role["hs-specialist"].by_role and len(by_role["hs-specialist"].people) == 3
    assert default_member(by_role["hs-specialist"], ["Practitioner/pcp"]) is None
    # The launching PCP is not the default care manager; a care manager who launches is.
    assert default_member(by_role["care-manager"], ["Practitioner/pcp"]) is None
    assert default_member(by_role["care-manager"], ["Practitioner/cm"]) == "Practitioner/cm"
    assert default_member(by_role["psychiatric-consultant"], [None, "Practitioner/psy"]) == "Practitioner/psy"
    assert by_role["care-manager"].offers("Practitioner/cm") and not by_role["care-manager"].offers(None)
