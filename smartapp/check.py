"""`tandem check`: what an EHR's server supports that Tandem uses, before anyone registers Tandem there."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_mappings.common.capability import WRITE_BACK_TYPES, accepts_create, fhir_version, software_name
from fhir_mappings.screening.writeback import plan_writeback
from launch.discovery import Discovery, SmartConfiguration
from launch.oauth import id_token_issuers, requested_scopes
from launch.registrations import Registration
from launch.scopes import LaunchKind, LaunchMode, ProfileScope, Vendor, allows_create, to_v1
from launch.store import EmbeddedStore
from launch.transport import HttpTransport


@dataclass
class ServerReport:
    iss: str
    config: SmartConfiguration
    capability: dict[str, Any]
    ehr_launch_scopes: list[str]
    standalone_scopes: list[str]
    creates: dict[str, bool]
    writeback: str = ""
    #: Launch kind → the scopes Tandem requests for it.
    kind_scopes: dict[LaunchKind, list[str]] = field(default_factory=dict)
    #: The vendor profile's write-back scopes (worklist creates, reads that confirm a lost write).
    write_profile: list[ProfileScope] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: Worth knowing, not blocking (exit 0).
    warnings: list[str] = field(default_factory=list)
    #: Which issuer Tandem will accept in id_tokens, and where that comes from.
    id_token_issuers: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        c = self.config
        yes = {True: "yes", False: "NO"}
        # Legacy discovery (the CapabilityStatement's oauth-uris) carries no capabilities: it cannot say "no".
        legacy = c.source == "capability-statement"

        def told(value: bool, listed: bool = True) -> str:
            return yes[value] if listed and not legacy else "not advertised"

        out = [
            f"Server:             {self.iss}",
            f"Software:           {software_name(self.capability) or 'not stated'}"
            f" (FHIR {fhir_version(self.capability) or '?'})",
            f"Discovery:          {c.source}",
            f"Authorize endpoint: {c.authorization_endpoint}",
            f"Token endpoint:     {c.token_endpoint}",
            f"id_token issuer:    {self.id_token_issuers}",
            f"PKCE S256:          {told(c.supports_s256, bool(c.code_challenge_methods_supported))}",
            f"Scope versions:     {', '.join(c.scope_versions) or 'not advertised (Tandem uses v1)'}",
            f"authorize-post:     {told(c.supports_authorize_post)}",
            f"EHR launch:         {told('launch-ehr' in c.capabilities)}",
            f"Standalone launch:  {told('launch-standalone' in c.capabilities)}",
            f"Client auth:        {', '.join(c.token_endpoint_auth_methods_supported) or 'not advertised'}",
            f"Signing algorithms: {', '.join(c.token_endpoint_auth_signing_alg_values_supported) or 'not advertised'}",
            "Accepts creates:",
            *[f"  {name:<22}{yes[ok]}" for name, ok in self.creates.items()],
            f"Write-back:         {self.writeback}",
            "Scopes Tandem will ask for:",
            f"  EHR launch:        {' '.join(self.ehr_launch_scopes)}",
            f"  standalone launch: {' '.join(self.standalone_scopes)}",
        ]
        if self.kind_scopes:
            out.append("Scopes per launch kind (chart and worklist are one EHR launch request: the EHR decides the "
                       "context):")  # fmt: skip
            for kind, scopes in self.kind_scopes.items():
                out.append(f"  {_KIND_LABELS[kind]:<38}{' '.join(scopes)}")
            requested = list(dict.fromkeys(s for scopes in self.kind_scopes.values() for s in scopes))
            out.append("Advertised by the server (scopes_supported, permission-patient/-user):")
            out += [f"  {scope:<38}{advertised(scope, self.config)}" for scope in requested]
        if self.write_profile:
            out.append("Write-back scopes in the profile:")
            out += [
                f"  {p.scope:<38}{'confirmed' if p.confirmed else 'UNCONFIRMED for this vendor'}: {p.why}"
                for p in self.write_profile
            ]
        if self.warnings:
            out += ["Warnings:", *[f"  - {warning}" for warning in self.warnings]]
        if self.problems:
            out += ["Problems:", *[f"  - {problem}" for problem in self.problems]]
        return out


_KIND_LABELS = {
    LaunchKind.CHART: "chart (EHR launch, a patient):",
    LaunchKind.WORKLIST: "worklist (EHR launch, no patient):",
    LaunchKind.PORTAL: "portal (the patient's own launch):",
}


def advertised(scope: str, config: SmartConfiguration) -> str:
    """Whether the server's SMART configuration says it offers a scope: `scopes_supported` (either spelling), and
    for resource scopes the `permission-patient` / `permission-user` capability. Servers need not list resource
    scopes, so an absent list is "not listed", not "no"."""
    listed = set(config.scopes_supported)
    context = scope.split("/", 1)[0] if "/" in scope and not scope.startswith("launch") else None
    if context in ("patient", "user") and f"permission-{context}" not in config.capabilities:
        return f"NO (no permission-{context} capability)"
    if scope in listed or (context and set(to_v1(scope)) <= listed):
        return "yes"
    if context and not any("/" in s and not s.startswith("launch") for s in listed):
        return "not listed (the server lists no resource scopes)"
    return "NO" if context or scope in ("openid", "fhirUser", "launch", "launch/patient") else "not listed"


def inspect_server(iss: str, *, registration: Registration | None = None, vendor: Vendor = Vendor.GENERIC,
                   timeout: float = 15.0) -> ServerReport:  # fmt: skip
    """Raises DiscoveryError when the server cannot be reached or answers something unusable."""
    iss = iss.rstrip("/")
    discovery = Discovery(HttpTransport(timeout=timeout), EmbeddedStore(), ttl_seconds=60)
    config = discovery.smart_configuration(iss)
    capability = discovery.capability_statement(iss)
    reg = registration or Registration(iss=iss, client_id="(your client id)", vendor=vendor)
    problems: list[str] = []
    warnings: list[str] = []
    if c_methods := config.code_challenge_methods_supported:
        if "S256" not in c_methods:
            problems.append(
                "the server does not offer PKCE S256, which SMART requires and Tandem always uses"
            )
    else:
        warnings.append(
            "the server does not advertise code_challenge_methods_supported; Tandem still sends PKCE S256 "
            f"(discovery: {config.source})"
        )
    issuers = ", ".join(id_token_issuers(reg, config))
    if reg.id_token_issuers:
        issuer_line = f"{issuers} (from the registration)"
    elif config.issuer:
        issuer_line = f"{issuers} (from the server's discovery)"
    else:
        issuer_line = f"{issuers} (assumed: the discovery names none)"
        warnings.append(
            "the server's discovery names no issuer for its sign-in tokens (id_tokens), so Tandem cannot confirm "
            f"who issues them: it will accept only tokens that name {issuers}. If this EHR's tokens name another "
            "issuer, every launch will fail until the registration lists it in id_token_issuers"
        )
    if not (config.jwks_uri or reg.id_token_jwks_url):
        warnings.append(
            "the server's discovery names no key set (jwks_uri) for its sign-in tokens: Tandem will look for it "
            "in the OpenID configuration of the issuer above; if there is none, set id_token_jwks_url in the "
            "registration"
        )
    ehr_scopes = requested_scopes(reg, config, LaunchMode.EHR)
    plan = plan_writeback(
        capability,
        lambda resource_type: allows_create(ehr_scopes, resource_type),
        reg.vendor.value,
        has_encounter=True,
    )
    writeback = {"structured": "structured results (QuestionnaireResponse and screening Observations)",
                 "note": "a clinical note (DocumentReference), not structured results",
                 "none": "none: results are kept in the Tandem registry only"}[plan.kind] + f". {plan.reason}"  # fmt: skip
    if plan.kind == "note":
        warnings.append(
            "screening results will be written back as a clinical note, not as structured results"
        )
    return ServerReport(
        id_token_issuers=issuer_line,
        writeback=writeback,
        warnings=warnings,
        iss=iss,
        config=config,
        capability=capability,
        ehr_launch_scopes=ehr_scopes,
        standalone_scopes=requested_scopes(reg, config, LaunchMode.STANDALONE),
        kind_scopes={
            LaunchKind.CHART: ehr_scopes,
            LaunchKind.WORKLIST: ehr_scopes,
            LaunchKind.PORTAL: requested_scopes(reg, config, LaunchMode.STANDALONE),
        },
        write_profile=reg.write_profile if reg.scopes is None else [],
        creates={name: accepts_create(capability, name) for name in WRITE_BACK_TYPES},
        problems=problems,
    )
