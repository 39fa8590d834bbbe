"""`tandem check --registry`: the verdict and advice rules (pure), the search table against the source (every
parameter Tandem sends to the registry is in it), and faults injected in front of a real sekmet-fhir store (a
store that ignores a search parameter or If-Match is reported NOT supported)."""

from __future__ import annotations

import ast
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import responses
from click.testing import CliRunner

from launch.backend import BackendServicesAuth
from launch.keys import KeyRing
from launch.transport import HttpTransport
from sandbox.processes import FhirServer
from smartapp.cli import main
from smartapp.registry_check import (
    ADVICE,
    SEARCHES,
    UNTESTED,
    UPDATE_CREATE,
    Kind,
    Outcome,
    RegistryCheck,
    RegistryReport,
    Store,
    Verdict,
    advice_for,
    detect_store,
    paging_verdict,
    search_verdict,
    sort_verdict,
)
from smartapp.registry_store import RegistryClient

ROOT = Path(__file__).resolve().parents[2]

# --- verdicts (pure) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("found", "expected", "missed", "verdict"),
    [
        # FHIR R4 §3.1.1.4 (search): a matching value finds the resource, a value nothing has finds nothing.
        (["a", "b"], ["a", "b"], [], Verdict.SUPPORTED),
        (["a", "b", "z"], ["a", "b"], [], Verdict.SUPPORTED),  # more than ours: other data may match too
        (["a"], ["a", "b"], [], Verdict.NOT_SUPPORTED),  # one written resource not found
        ([], ["a"], [], Verdict.NOT_SUPPORTED),
        # FHIR R4 §3.1.1.4.2: a server may ignore a parameter it does not know and answer everything: the
        # value nothing has then finds something, which the check must not call "supported".
        (["a", "b"], ["a", "b"], ["a", "b"], Verdict.NOT_SUPPORTED),
        (["a"], ["a"], ["q"], Verdict.NOT_SUPPORTED),
    ],
)
def test_a_search_is_supported_only_when_it_finds_ours_and_nothing_for_a_value_nothing_has(
    found: list[str], expected: list[str], missed: list[str], verdict: Verdict
) -> None:
    assert search_verdict(found, expected, missed)[0] is verdict


@pytest.mark.parametrize(
    ("pages", "count", "ended", "verdict"),
    [
        # FHIR R4 §3.1.1.6 (paging): `next` links until the last page; _count caps a page.
        ([["1", "2", "3"], ["4", "5", "6"], ["7"]], 3, True, Verdict.SUPPORTED),
        ([["1", "2", "3", "4", "5", "6", "7"]], 3, True, Verdict.NOT_SUPPORTED),  # _count ignored
        ([["1", "2", "3"], ["3", "4", "5"], ["6", "7"]], 3, True, Verdict.NOT_SUPPORTED),  # one twice
        ([["1", "2", "3"], ["4", "5", "6"]], 3, True, Verdict.NOT_SUPPORTED),  # one on no page
        ([["1", "2", "3"], ["4", "5", "6"], ["7"]], 3, False, Verdict.NOT_SUPPORTED),  # next never ends
    ],
)
def test_paging_finds_each_resource_once_in_pages_of_count_and_ends(
    pages: list[list[str]], count: int, ended: bool, verdict: Verdict
) -> None:
    assert paging_verdict(pages, list("1234567"), count, ended=ended)[0] is verdict


@pytest.mark.parametrize(
    ("before", "after", "verdict"),
    [
        # smartapp/caseload/service.py::_fill pages with _sort=_id so an edit mid-load moves nothing.
        (["1", "2", "3"], ["1", "2", "3"], Verdict.SUPPORTED),
        (["x", "1", "2", "3"], ["1", "x", "2", "3"], Verdict.SUPPORTED),  # other data: only ours count
        (["1", "2", "3"], ["2", "3", "1"], Verdict.NOT_SUPPORTED),  # by last update: _sort ignored
        (["1", "2"], ["1", "2"], Verdict.NOT_SUPPORTED),  # one of ours not found
    ],
)
def test_sort_by_id_keeps_the_order_when_a_resource_changes(
    before: list[str], after: list[str], verdict: Verdict
) -> None:
    assert sort_verdict(before, after, ["1", "2", "3"])[0] is verdict


@pytest.mark.parametrize(
    ("url", "capability", "store"),
    [
        # Host names from the vendors' public documentation (base URLs of their FHIR APIs).
        (
            "https://healthcare.googleapis.com/v1/projects/p/locations/l/datasets/d/fhirStores/s/fhir",
            None,
            Store.GOOGLE,
        ),  # fmt: skip
        ("https://ws-fhirsvc.fhir.azurehealthcareapis.com", None, Store.AZURE),
        ("https://healthlake.us-east-1.amazonaws.com/datastore/abc/r4/", None, Store.AWS),
        # HAPI FHIR JPA's CapabilityStatement names its software "HAPI FHIR Server".
        ("https://fhir.hospital.example/fhir", {"software": {"name": "HAPI FHIR Server"}}, Store.HAPI),
        ("https://fhir.hospital.example/fhir", {"publisher": "Microsoft"}, Store.AZURE),
        ("http://127.0.0.1:8080/fhir", {"software": {"name": "SEKMET FHIR R4 Tester"}}, Store.OTHER),
        ("http://127.0.0.1:8080/fhir", None, Store.OTHER),
        ("http://127.0.0.1:8080/fhir", {"software": "not an object"}, Store.OTHER),
    ],
)
def test_the_store_is_recognised_by_its_host_or_its_software(
    url: str, capability: dict[str, Any] | None, store: Store
) -> None:
    assert detect_store(url, capability) is store


@pytest.mark.parametrize(
    ("interaction", "store", "contains"),
    [
        # Google Cloud Healthcare: fhirStores enableUpdateCreate (fhir.update reference page).
        (UPDATE_CREATE, Store.GOOGLE, "enableUpdateCreate"),
        # HAPI FHIR JPA starter: hapi.fhir.client_id_strategy.
        (UPDATE_CREATE, Store.HAPI, "client_id_strategy"),
        # No advice of its own: the general one.
        (UPDATE_CREATE, Store.OTHER, "update as create"),
        ("if-match", Store.HAPI, "If-Match"),
    ],
)
def test_advice_is_the_stores_own_or_the_general_one(interaction: str, store: Store, contains: str) -> None:
    assert contains in advice_for(interaction, store)


def test_every_vendors_advice_says_it_is_untested() -> None:
    """Vendor advice is read from their documentation, never tried here: it must say so."""
    vendor = {key: text for key, text in ADVICE.items() if key[1] is not Store.OTHER}
    assert vendor and all(text.endswith(UNTESTED) for text in vendor.values())


@pytest.mark.parametrize(
    ("outcomes", "ok"),
    [
        ([Outcome("a", Verdict.SUPPORTED)], True),
        ([Outcome("a", Verdict.SUPPORTED), Outcome("b", Verdict.NOT_SUPPORTED)], False),
        # Not required (conditional create has a fallback), informational, or not configured: never a failure.
        ([Outcome("a", Verdict.NOT_SUPPORTED, required=False)], True),
        ([Outcome("a", Verdict.NOTED, "not enforced", required=False)], True),
        ([Outcome("a", Verdict.NOT_CONFIGURED, required=False)], True),
        ([Outcome("a", Verdict.NOT_CHECKED)], True),
    ],
)
def test_the_check_fails_only_on_a_required_interaction_not_supported(
    outcomes: list[Outcome], ok: bool
) -> None:
    report = RegistryReport("https://registry.example/fhir", outcomes=outcomes)
    assert report.ok is ok
    assert report.summary().startswith("Ready" if ok else "NOT READY")
    assert report.as_json()["ok"] is ok


def test_the_lines_are_aligned_and_advice_shows_only_where_something_is_missing() -> None:
    report = RegistryReport("https://registry.example/fhir", outcomes=[
        Outcome("metadata (CapabilityStatement)", Verdict.SUPPORTED, "FHIR 4.0.1", "never shown"),
        Outcome("If-Match", Verdict.NOT_SUPPORTED, "a stale version overwrote the current one", "honour If-Match"),
    ])  # fmt: skip
    lines = report.lines()
    rows = [line for line in lines if line.startswith(("metadata", "If-Match"))]
    assert len({row.index(word) for row, word in zip(rows, ("supported", "NOT supported"), strict=True)}) == 1
    assert not any("never shown" in line for line in lines)
    assert any(line.strip() == "→ honour If-Match" for line in lines)
    assert all(len(line) <= 110 for line in lines)


# --- the table covers every search Tandem sends to the registry ---------------------------------------

#: Receivers of search calls that are the EHR's FHIR server, not the registry (checked by name per file).
EHR_RECEIVERS = {
    ("smartapp/cds/service.py", "client"),  # the CDS call's FHIR server (fhirServer)
    ("smartapp/caseload/ehr_refresh.py", "self.client"),  # the EHR with backend services
}
SEARCH_METHODS = {"search", "search_all", "iter_pages"}
#: The registry client itself and this check are not callers.
NOT_CALLERS = {"smartapp/registry_store.py", "smartapp/registry_check.py"}


def _qualname(stack: list[ast.AST]) -> str:
    return ".".join(
        n.name for n in stack if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    )


def _strings(node: ast.AST | None) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)} if node else set()  # fmt: skip


def _assigned(function: ast.AST, name: str) -> list[ast.expr]:
    values: list[ast.expr] = []
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            values.append(node.value)
    return values


def _module_constant(module: ast.Module, name: str) -> ast.expr | None:
    for node in module.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets) and node.value is not None:
                return node.value
    return None


def _loop_source(function: ast.AST, module: ast.Module, name: str) -> ast.expr | None:
    """The module constant a `for …name… in CONSTANT` loop in the function iterates."""
    for node in ast.walk(function):
        if isinstance(node, ast.For) and name in {
            n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)
        }:
            if isinstance(node.iter, ast.Name):
                return _module_constant(module, node.iter.id)
    return None


def _dict_keys(node: ast.expr, function: ast.AST, module: ast.Module) -> set[str]:
    """The parameter names a params expression sends: dict literal keys (names resolved in the function),
    `**spread` of a loop over a module constant, and `name["key"] = …` assignments."""
    keys: set[str] = set()
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:  # **spread
                if isinstance(value, ast.Name):
                    source = _loop_source(function, module, value.id)
                    keys |= {k for d in ast.walk(source) if isinstance(d, ast.Dict) for k in _strings(ast.Tuple(
                        elts=[k for k in d.keys if k is not None]))} if source is not None else set()  # fmt: skip
            elif isinstance(key, ast.Constant) and isinstance(key.value, str):
                keys.add(key.value)
            elif isinstance(key, ast.Name):  # `"patient" if … else "subject"`: the two names, not the test's
                for assigned in _assigned(function, key.id):
                    parts = (
                        [assigned.body, assigned.orelse] if isinstance(assigned, ast.IfExp) else [assigned]
                    )
                    keys |= set().union(*(_strings(part) for part in parts))
    elif isinstance(node, ast.Name):
        for value in _assigned(function, node.id):
            keys |= _dict_keys(value, function, module)
        for sub in ast.walk(function):
            if isinstance(sub, ast.Assign):
                for target in sub.targets:
                    if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and \
                            target.value.id == node.id and isinstance(target.slice, ast.Constant):  # fmt: skip
                        keys.add(str(target.slice.value))
    return keys


def _types(node: ast.expr, function: ast.AST, module: ast.Module) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Name):
        source = _loop_source(function, module, node.id)
        return (
            {s for s in _strings(source) if s[:1].isupper() and s.isalpha()} if source is not None else set()
        )
    return set()


def _is_registry(receiver: str, module: ast.Module, function: ast.AST) -> bool:
    """`…registry…`, or `client` / `self._client()` in a class whose `_client()` is its registry client."""
    if "registry" in receiver:
        return True
    registry_getter = any(isinstance(n, ast.FunctionDef) and n.name == "_client" and "self.registry" in ast.unparse(n)
                          for n in ast.walk(module))  # fmt: skip
    return receiver in ("client", "self._client()") and registry_getter


def registry_searches() -> dict[str, tuple[set[str], set[str]]]:
    """Each function that searches the registry (`path::qualname`) → (resource types, parameters sent)."""
    found: dict[str, tuple[set[str], set[str]]] = {}
    for file in sorted((ROOT / "smartapp").rglob("*.py")):
        path = str(file.relative_to(ROOT))
        if path in NOT_CALLERS:
            continue
        module = ast.parse(file.read_text(encoding="utf-8"))

        def visit(node: ast.AST, stack: list[ast.AST], module: ast.Module = module, path: str = path) -> None:
            for child in ast.iter_child_nodes(node):
                visit(child, [*stack, child], module, path)
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                return
            function = next((n for n in reversed(stack) if isinstance(n, ast.FunctionDef)), module)
            receiver = ast.unparse(node.func.value)
            method = node.func.attr
            site = f"{path}::{_qualname(stack)}"
            if method == "create" and any(k.arg == "if_none_exist" for k in node.keywords):
                if _is_registry(receiver, module, function):
                    condition = next(k.value for k in node.keywords if k.arg == "if_none_exist")
                    names = {part.split("=")[0].lstrip("&") for s in _strings(condition) for part in s.split("&")
                             if "=" in part}  # fmt: skip
                    found[site] = (set(), found.get(site, (set(), set()))[1] | names)
                return
            if method not in SEARCH_METHODS or not node.args:
                return
            if "ehr" in receiver or (path, receiver) in EHR_RECEIVERS:
                return
            assert _is_registry(receiver, module, function), f"{site}: is {receiver} the EHR or the registry?"
            types = _types(node.args[0], function, module)
            params = _dict_keys(node.args[1], function, module) if len(node.args) > 1 else set()
            old_types, old_params = found.get(site, (set(), set()))
            found[site] = (old_types | types, old_params | params)

        visit(module, [])
    return found


def test_the_source_reader_finds_the_registry_searches_it_should() -> None:
    """The reader itself: it sees the caseload's searches with their parameters (else the next test proves
    nothing)."""
    found = registry_searches()
    fill = found["smartapp/caseload/service.py::CaseloadService._fill"]
    assert fill == ({"CarePlan", "Task", "Observation"}, {"code", "_sort", "_count", "_lastUpdated"})
    # The chart's registry part names only its patient (issue 27 §2: no code filter riding along).
    assert found["smartapp/caseload/service.py::CaseloadService.load_patient"][1] == {
        "patient",
        "subject",
        "_count",
    }
    assert found["smartapp/caseload/ready.py::ReadyRows._search"][1] == {"_sort", "_count", "_lastUpdated"}
    assert found["smartapp/screening/service.py::ScreeningService.publish_questionnaires"][1] == {
        "url",
        "version",
    }
    assert "smartapp/healthysteps/service.py::HealthyStepsService.load" in found


def test_every_parameter_tandem_sends_to_the_registry_is_in_the_table() -> None:
    missing = []
    for site, (types, params) in registry_searches().items():
        for param in sorted(params):
            rows = [row for row in SEARCHES if row.parameter == param and site in row.where
                    and (not types or row.resource_type in types)]  # fmt: skip
            if not rows:
                missing.append(f"{site}: {param} ({', '.join(sorted(types)) or 'condition'})")
    assert missing == []


def test_every_place_the_table_names_exists() -> None:
    sites = {site for row in SEARCHES for site in row.where}
    searching = registry_searches()
    assert sorted(sites - set(searching)) == []


def test_each_filter_row_has_a_value_that_matches_and_one_that_does_not() -> None:
    for row in SEARCHES:
        if row.kind is Kind.FILTER:
            assert row.match and row.miss and dict(row.match) != dict(row.miss), row.name


# --- faults injected in front of a real store --------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    server = FhirServer(Path(tmp_path_factory.mktemp("registry-check"))).start()
    try:
        yield server
    finally:
        server.stop()


def _forward(request: Any, *, drop_params: set[str] = frozenset(), drop_headers: set[str] = frozenset()
             ) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    """Send a request on to the real store (outside `responses`), less some parameters or headers."""
    parts = urlsplit(request.url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in drop_params])
    url = parts._replace(query=query).geturl()
    headers = {k: v for k, v in request.headers.items() if k.lower() not in {h.lower() for h in drop_headers}}
    body = request.body.encode() if isinstance(request.body, str) else request.body
    forwarded = urllib.request.Request(url, data=body, headers=headers, method=request.method)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(forwarded, timeout=30) as answer:  # noqa: S310 - loopback
            return answer.status, {"Content-Type": answer.headers.get("Content-Type", "")}, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, {"Content-Type": error.headers.get("Content-Type", "")}, error.read()


def _run(store: FhirServer) -> RegistryReport:
    client = RegistryClient(store.base_url, HttpTransport(timeout=30), name="registry")
    return RegistryCheck(client, backend_services=False).run()


def _verdict(report: RegistryReport, name: str) -> Verdict:
    return next(o.verdict for o in report.outcomes if o.name == name)


def test_a_store_that_ignores_a_search_parameter_is_reported_not_supported(store: FhirServer) -> None:
    """FHIR R4 §3.1.1.4.2: a server may ignore a parameter it does not support: injected here for Observation's
    subject (the real store answers as if it had not been sent)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru(store.base_url)
        rsps.add_callback(responses.GET, re.compile(rf"{re.escape(store.base_url)}/Observation(\?.*)?$"),
                          callback=lambda r: _forward(r, drop_params={"subject"}))  # fmt: skip
        report = _run(store)
    assert _verdict(report, "search Observation?subject") is Verdict.NOT_SUPPORTED
    assert _verdict(report, "search Observation?subject (a list)") is Verdict.NOT_SUPPORTED
    assert _verdict(report, "search Task?patient") is Verdict.SUPPORTED  # the rest as the store answers
    assert not report.ok


def test_a_store_that_ignores_if_match_is_reported_not_supported(store: FhirServer) -> None:
    """FHIR R4 §3.1.0.4 (managing resource contention): a stale If-Match must be refused (409/412); injected
    here: the header never reaches the store."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru(store.base_url)
        rsps.add_callback(responses.PUT, re.compile(rf"{re.escape(store.base_url)}/Task/.*"),
                          callback=lambda r: _forward(r, drop_headers={"If-Match"}))  # fmt: skip
        report = _run(store)
    assert _verdict(report, "If-Match") is Verdict.NOT_SUPPORTED
    assert _verdict(report, "versioned read") is Verdict.SUPPORTED
    assert not report.ok


def test_next_links_on_another_origin_are_reported_not_followed(store: FhirServer) -> None:
    """A store behind a proxy that names its own host in `next` links (HAPI without server_address): Tandem never
    sends its token to another origin, so paging stops; injected here by renaming the host in the real answer."""

    def renamed(request: Any) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = _forward(request)
        return status, headers, body.replace(b"http://127.0.0.1:", b"http://localhost:")

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru(store.base_url)
        rsps.add_callback(responses.GET, re.compile(rf"{re.escape(store.base_url)}/Task\?.*_count=3.*"),
                          callback=renamed)  # fmt: skip
        report = _run(store)
    paging = next(o for o in report.outcomes if o.name.startswith("paging"))
    assert paging.verdict is Verdict.NOT_SUPPORTED and "another origin" in paging.detail
    assert "public base URL" in paging.advice
    assert not report.ok


def test_a_store_that_refuses_client_ids_is_reported_and_nothing_is_left_behind(store: FhirServer) -> None:
    """Update as create refused (FHIR R4 §3.1.0.4.2 lets a server refuse it; HAPI with client ids NOT_ALLOWED,
    Google without enableUpdateCreate): injected as HAPI's answer to a PUT of a new Patient. Nothing else can be
    written, so the rest is not checked and nothing is left to clean up."""
    refusal = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing",
               "diagnostics": "HAPI-0959: clients may not assign IDs to resources"}]}  # fmt: skip
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru(store.base_url)
        rsps.add(
            responses.PUT, re.compile(rf"{re.escape(store.base_url)}/Patient/.*"), json=refusal, status=400
        )
        report = _run(store)
    put = next(o for o in report.outcomes if o.name.startswith("update-as-create"))
    assert put.verdict is Verdict.NOT_SUPPORTED and "HTTP 400" in put.detail and "HAPI-0959" in put.detail
    assert "update as create" in put.advice  # sekmet is not a known store: the general advice
    later = [o for o in report.outcomes if o.name not in ("backend-services token", "metadata (CapabilityStatement)")
             and o is not put]  # fmt: skip
    assert later and {o.verdict for o in later} == {Verdict.NOT_CHECKED}
    assert not report.ok


def test_the_same_store_without_faults_is_ready(store: FhirServer) -> None:
    """The control for the two above: without the injected faults the same store passes those checks."""
    report = _run(store)
    assert _verdict(report, "If-Match") is Verdict.SUPPORTED
    assert _verdict(report, "search Observation?subject") is Verdict.SUPPORTED
    assert report.ok


# --- the command -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "give --iss"),
        (["--registry", "http://127.0.0.1:9/fhir", "--iss", "http://127.0.0.1:9/fhir", "--json"], "--json"),
        (["--iss", "http://127.0.0.1:9/fhir", "--json"], "--json"),
    ],
)
def test_check_needs_iss_or_registry_and_json_is_for_the_registry_alone(args: list[str], says: str) -> None:
    result = CliRunner().invoke(main, ["check", *args])
    assert result.exit_code == 2 and says in result.output


def test_check_registry_names_a_setting_that_is_wrong() -> None:
    result = CliRunner().invoke(main, ["check", "--registry", "http://127.0.0.1:9/fhir"],
                                env={"TANDEM_REGISTRY_AUTH": "backend-services"})  # fmt: skip
    assert result.exit_code == 2
    assert "TANDEM_REGISTRY_CLIENT_ID: required when TANDEM_REGISTRY_AUTH=backend-services" in result.output


def test_check_registry_json_is_the_report(store: FhirServer) -> None:
    result = CliRunner().invoke(main, ["check", "--registry", store.base_url, "--json"],
                                env={"TANDEM_REGISTRY_AUTH": "none"})  # fmt: skip
    report = json.loads(result.output)
    assert result.exit_code == 0 and report["ok"] is True
    assert {i["name"] for i in report["interactions"]} >= {"If-Match", "transaction Bundle", "versioned read"}


def test_a_refused_token_is_reported_and_nothing_else_is_tried(store: FhirServer) -> None:
    """SMART Backend Services: a client the store does not know gets no token (the real store refuses it); every
    request would carry one, so the rest is "not checked" rather than a list of the same refusal."""
    keys = KeyRing.ephemeral()
    kid = next(k for k in sorted(keys.kids) if "rs384" in k)
    auth = BackendServicesAuth(HttpTransport(timeout=30), token_url=store.token_url, client_id="not-registered",
                               signing_key=keys.get(kid), scopes=["system/*.cruds"])  # fmt: skip
    client = RegistryClient(store.base_url, HttpTransport(timeout=30), auth, name="registry")
    report = RegistryCheck(client, backend_services=True).run()
    assert report.outcomes[0].name == "backend-services token"
    assert report.outcomes[0].verdict is Verdict.NOT_SUPPORTED and report.outcomes[0].advice
    assert {o.verdict for o in report.outcomes[1:]} == {Verdict.NOT_CHECKED}
    assert not report.ok
    assert client.counter.total == 0  # not one FHIR request was sent


def test_each_sorted_type_has_a_real_change_to_make() -> None:
    """The _sort check changes one resource between two searches; a PUT of identical content may be no new
    version at all (so it would prove nothing)."""
    from smartapp.registry_check import _CHANGE

    assert {row.resource_type for row in SEARCHES if row.kind is Kind.SORT} <= set(_CHANGE)
