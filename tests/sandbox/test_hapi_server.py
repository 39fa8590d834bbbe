"""Tandem's HAPI FHIR JPA server (hapi/, run by sandbox.processes.HapiServer) as a peer in the test tier: the
storage semantics Tandem's registry store relies on, checked against the real server.

Sources: FHIR R4 RESTful API (hl7.org/fhir/R4/http.html: update as create, If-Match and version-aware updates,
conditional create, transactions; search.html: _count and next links, _lastUpdated, _sort, _tag, token and
reference searches) and HAPI FHIR's JpaStorageSettings defaults (referential integrity on write and on delete,
client-assigned ids of the ALPHANUMERIC strategy)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from launch.fhir import FHIRClient
from launch.transport import HttpTransport
from sandbox.processes import HAPI_SCRIPT, HapiServer, HapiUnavailable, hapi_jar

pytestmark = pytest.mark.integration

FHIR_JSON = "application/fhir+json"
HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
TAG_SYSTEM = "https://tandem.test/fhir/tag"
ID_SYSTEM = "https://tandem.test/fhir/patient-id"


def _uid() -> str:
    return "t" + uuid.uuid4().hex[:12]  # a letter first: HAPI refuses client ids that are all digits


def _put(server: HapiServer, resource: dict[str, Any], **headers: str) -> requests.Response:
    url = f"{server.base_url}/{resource['resourceType']}/{resource['id']}"
    return requests.put(url, json=resource, headers={**HEADERS, **headers}, timeout=60)


def _post(server: HapiServer, resource: dict[str, Any], **headers: str) -> requests.Response:
    url = f"{server.base_url}/{resource['resourceType']}"
    return requests.post(url, json=resource, headers={**HEADERS, **headers}, timeout=60)


def _search(server: HapiServer, resource_type: str, params: dict[str, str] | list[tuple[str, str]]) -> Any:
    response = requests.get(f"{server.base_url}/{resource_type}", params=params, headers=HEADERS, timeout=60)
    assert response.status_code == 200, response.text[:300]
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    return bundle


def _ids(bundle: dict[str, Any]) -> list[str]:
    entries = bundle.get("entry") or []
    return [entry["resource"]["id"] for entry in entries if entry.get("search", {}).get("mode") != "include"]


def _patient(pid: str, identifier: str | None = None) -> dict[str, Any]:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": "Test", "given": [pid]}],
    }
    if identifier:
        patient["identifier"] = [{"system": ID_SYSTEM, "value": identifier}]
    return patient


def _observation(subject: str, tag: str, code: str = "44249-1") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "meta": {"tag": [{"system": TAG_SYSTEM, "code": tag}]},
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": subject},
        "valueInteger": 7,
    }


def _stored_patient(server: HapiServer) -> str:
    pid = _uid()
    assert _put(server, _patient(pid)).status_code == 201
    return pid


# --- the server itself -----------------------------------------------------------------------------------------


def test_it_answers_fhir_r4_on_loopback_only(hapi_server: HapiServer) -> None:
    # FHIR R4 capabilities (http.html#capabilities); HapiServer binds 127.0.0.1 (server.address), never 0.0.0.0.
    capabilities = FHIRClient(hapi_server.base_url, HttpTransport(timeout=60)).capabilities()
    assert capabilities["fhirVersion"] == "4.0.1"
    assert (
        hapi_server.base_url == f"http://127.0.0.1:{hapi_server.port}/fhir" and hapi_server.token_url is None
    )
    listening = _listening_addresses(hapi_server.port)
    assert listening and all(address in _LOOPBACK for address in listening), listening


_LOOPBACK = {
    "0100007F",
    "0000000000000000FFFF00000100007F",
}  # 127.0.0.1, ::ffff:127.0.0.1 as /proc/net shows them


def _listening_addresses(port: int) -> list[str]:
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


# --- referential integrity (HAPI's default, kept) ------------------------------------------------------------


def test_a_reference_to_a_missing_patient_is_refused_and_nothing_is_stored(hapi_server: HapiServer) -> None:
    # JpaStorageSettings.isEnforceReferentialIntegrityOnWrite() defaults to true (HAPI-1094).
    tag = _uid()
    refused = _post(hapi_server, _observation(f"Patient/does-not-exist-{tag}", tag))
    assert refused.status_code in (400, 404, 409, 422), refused.status_code
    assert refused.json()["resourceType"] == "OperationOutcome"
    assert (
        _search(hapi_server, "Observation", {"_tag": f"{TAG_SYSTEM}|{tag}", "_total": "accurate"})["total"]
        == 0
    )
    # The same Observation is stored once its patient exists: the refusal was the missing reference.
    pid = _stored_patient(hapi_server)
    assert _post(hapi_server, _observation(f"Patient/{pid}", tag)).status_code == 201
    assert len(_ids(_search(hapi_server, "Observation", {"_tag": f"{TAG_SYSTEM}|{tag}"}))) == 1


def test_a_referenced_patient_cannot_be_deleted(hapi_server: HapiServer) -> None:
    # JpaStorageSettings.isEnforceReferentialIntegrityOnDelete() defaults to true: 409 Conflict.
    pid, tag = _stored_patient(hapi_server), _uid()
    assert _post(hapi_server, _observation(f"Patient/{pid}", tag)).status_code == 201
    refused = requests.delete(f"{hapi_server.base_url}/Patient/{pid}", headers=HEADERS, timeout=60)
    assert refused.status_code == 409, refused.status_code
    assert (
        requests.get(f"{hapi_server.base_url}/Patient/{pid}", headers=HEADERS, timeout=60).status_code == 200
    )
    unreferenced = _stored_patient(hapi_server)
    deleted = requests.delete(f"{hapi_server.base_url}/Patient/{unreferenced}", headers=HEADERS, timeout=60)
    assert deleted.status_code in (200, 204)


# --- writes ----------------------------------------------------------------------------------------------------


def test_a_transaction_puts_a_patient_and_posts_an_observation_that_references_it(
    hapi_server: HapiServer,
) -> None:
    # R4 http.html#transaction: the entries succeed or fail together; PUT entries are update-as-create.
    pid, tag = f"tp-abc-{_uid()}", _uid()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _patient(pid), "request": {"method": "PUT", "url": f"Patient/{pid}"}},
            {
                "resource": _observation(f"Patient/{pid}", tag),
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    answer = FHIRClient(hapi_server.base_url, HttpTransport(timeout=60)).transaction(bundle)
    assert answer["type"] == "transaction-response"
    assert [entry["response"]["status"][:3] for entry in answer["entry"]] == ["201", "201"]
    stored = _search(hapi_server, "Observation", {"_tag": f"{TAG_SYSTEM}|{tag}"})
    assert [entry["resource"]["subject"]["reference"] for entry in stored["entry"]] == [f"Patient/{pid}"]


def test_a_transaction_with_a_missing_reference_stores_nothing(hapi_server: HapiServer) -> None:
    # R4 http.html#transaction: all or nothing; the Patient PUT is rolled back with the refused Observation.
    pid, tag = f"tp-{_uid()}", _uid()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _patient(pid), "request": {"method": "PUT", "url": f"Patient/{pid}"}},
            {
                "resource": _observation(f"Patient/missing-{tag}", tag),
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    refused = requests.post(hapi_server.base_url, json=bundle, headers=HEADERS, timeout=60)
    assert refused.status_code in (400, 404, 409, 422), refused.status_code
    assert (
        requests.get(f"{hapi_server.base_url}/Patient/{pid}", headers=HEADERS, timeout=60).status_code == 404
    )


@pytest.mark.parametrize(
    "form",
    [
        "urn:uuid",  # R4 bundle.html#references: a fullUrl of an entry POSTed in the same transaction
        "relative",  # Patient/<id> of a resource the same transaction PUTs
        # R4 http.html#trules: Patient?identifier=system|value, resolved by the server. HAPI resolves it against
        # what was stored before the transaction (a Patient the same transaction PUTs is not found: HAPI-1091).
        "conditional",
    ],
)
def test_a_transaction_resolves_each_form_of_reference_to_the_patient(
    hapi_server: HapiServer, form: str
) -> None:
    pid, tag, value = f"tp-{_uid()}", _uid(), _uid()
    full_url = f"urn:uuid:{uuid.uuid4()}"
    entries: list[dict[str, Any]] = []
    if form == "urn:uuid":
        patient = {key: val for key, val in _patient(pid).items() if key != "id"}
        entries.append(
            {"fullUrl": full_url, "resource": patient, "request": {"method": "POST", "url": "Patient"}}
        )
        reference = full_url
    elif form == "relative":
        entries.append({"resource": _patient(pid), "request": {"method": "PUT", "url": f"Patient/{pid}"}})
        reference = f"Patient/{pid}"
    else:
        assert _put(hapi_server, _patient(pid, identifier=value)).status_code == 201
        reference = f"Patient?identifier={ID_SYSTEM}|{value}"
    entries.append(
        {"resource": _observation(reference, tag), "request": {"method": "POST", "url": "Observation"}}
    )
    answer = requests.post(hapi_server.base_url, json={"resourceType": "Bundle", "type": "transaction",
                                                       "entry": entries}, headers=HEADERS, timeout=60)  # fmt: skip
    assert answer.status_code == 200, answer.text[:300]
    if form == "urn:uuid":
        pid = answer.json()["entry"][0]["response"]["location"].split("/")[
            1
        ]  # Patient/<server id>/_history/1
    stored = _search(hapi_server, "Observation", {"_tag": f"{TAG_SYSTEM}|{tag}"})
    assert [entry["resource"]["subject"]["reference"] for entry in stored["entry"]] == [f"Patient/{pid}"]


def test_put_to_a_new_id_creates_and_a_second_put_updates(hapi_server: HapiServer) -> None:
    # R4 http.html#upsert (update as create): 201 with version 1, then 200 with version 2.
    pid = _uid()
    created = _put(hapi_server, _patient(pid))
    assert created.status_code == 201 and created.json()["meta"]["versionId"] == "1"
    assert created.headers["ETag"] == 'W/"1"' and created.json()["id"] == pid
    updated = _put(hapi_server, {**_patient(pid), "gender": "female"})
    assert updated.status_code == 200 and updated.json()["meta"]["versionId"] == "2"
    assert updated.headers["ETag"] == 'W/"2"'


_CLIENT_IDS = {
    "letters and digits": lambda uid: f"tp-abc-{uid}",
    "dots and dashes": lambda uid: f"A1.b-2.{uid}",
    "all digits": lambda uid: str(int(uid[1:], 16))[:12],
}


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("letters and digits", 201),  # FHIR R4 id datatype: [A-Za-z0-9\-\.]{1,64}
        ("dots and dashes", 201),
        ("all digits", 400),  # HAPI's default client id strategy ALPHANUMERIC refuses these (HAPI-0960)
    ],
)
def test_client_assigned_ids_follow_hapis_default_strategy(
    hapi_server: HapiServer, kind: str, status: int
) -> None:
    response = _put(hapi_server, _patient(_CLIENT_IDS[kind](_uid())))
    assert response.status_code == status, response.text[:200]


def test_if_match_with_a_stale_version_is_refused_and_the_current_one_applies(
    hapi_server: HapiServer,
) -> None:
    # R4 http.html#concurrency: a version-aware update with a stale ETag fails with 409 or 412.
    pid = _uid()
    assert _put(hapi_server, _patient(pid)).status_code == 201
    assert _put(hapi_server, {**_patient(pid), "gender": "male"}).status_code == 200  # now version 2
    stale = _put(hapi_server, {**_patient(pid), "gender": "female"}, **{"If-Match": 'W/"1"'})
    assert stale.status_code in (409, 412), stale.status_code
    current = requests.get(f"{hapi_server.base_url}/Patient/{pid}", headers=HEADERS, timeout=60).json()
    assert current["meta"]["versionId"] == "2" and current["gender"] == "male"
    fresh = _put(hapi_server, {**_patient(pid), "gender": "female"}, **{"If-Match": 'W/"2"'})
    assert fresh.status_code == 200 and fresh.json()["meta"]["versionId"] == "3"


def test_conditional_create_returns_the_existing_resource(hapi_server: HapiServer) -> None:
    # R4 http.html#ccreate: If-None-Exist with one match answers 200 and creates nothing.
    value = _uid()
    resource = {key: val for key, val in _patient("unused", identifier=value).items() if key != "id"}
    condition = {"If-None-Exist": f"identifier={ID_SYSTEM}|{value}"}
    first = _post(hapi_server, resource, **condition)
    assert first.status_code == 201
    again = _post(hapi_server, resource, **condition)
    assert again.status_code == 200
    assert _location_id(again) == _location_id(first)
    assert len(_ids(_search(hapi_server, "Patient", {"identifier": f"{ID_SYSTEM}|{value}"}))) == 1


def _location_id(response: requests.Response) -> str:
    return urlsplit(response.headers["Location"]).path.split("/")[3]  # /fhir/Patient/<id>/_history/<version>


def _refused_request(server: HapiServer, case: str) -> requests.Response:
    pid = _stored_patient(server)
    observation = _observation(f"Patient/{pid}", _uid())
    if case == "unknown search parameter":
        return requests.get(
            f"{server.base_url}/Observation", params={"not-a-param": "x"}, headers=HEADERS, timeout=60
        )
    if case == "unknown _sort":
        return requests.get(f"{server.base_url}/Observation", params={"_sort": "not-a-param"}, headers=HEADERS,
                            timeout=60)  # fmt: skip
    if case == "reference to another server":
        observation["subject"] = {"reference": f"https://ehr.example.org/fhir/Patient/{pid}"}
    elif case == "absolute reference to this server":
        observation["subject"] = {"reference": f"{server.base_url}/Patient/{pid}"}
    elif case == "id of 65 characters":
        return _put(server, _patient("a" * 65))
    return _post(server, observation)


@pytest.mark.parametrize(
    "case",
    [
        "unknown search parameter",  # HAPI-0524: refused, not ignored (R4 search.html#errors allows either)
        "unknown _sort",  # HAPI-1194
        "reference to another server",  # HAPI-0507: JpaStorageSettings allowExternalReferences defaults to false
        "absolute reference to this server",  # HAPI-0507 too: treatBaseUrlsAsLocal is empty by default
        "id of 65 characters",  # R4 datatypes.html#id: at most 64 characters
    ],
)
def test_what_hapi_refuses_with_its_defaults(hapi_server: HapiServer, case: str) -> None:
    refused = _refused_request(hapi_server, case)
    assert refused.status_code == 400, (refused.status_code, refused.text[:200])
    assert refused.json()["resourceType"] == "OperationOutcome"


# --- searches --------------------------------------------------------------------------------------------------


def test_count_pages_to_the_end_through_next_links(hapi_server: HapiServer) -> None:
    # R4 search.html#count and http.html#paging: _count=2 over 5 matches gives pages of 2, 2 and 1, linked by
    # `next` on the address the client used (HAPI's IncomingRequestAddressStrategy).
    pid, tag = _stored_patient(hapi_server), _uid()
    created = {_post(hapi_server, _observation(f"Patient/{pid}", tag)).json()["id"] for _ in range(5)}
    client = FHIRClient(hapi_server.base_url, HttpTransport(timeout=60), name="registry")
    pages = list(client.iter_pages("Observation", {"_tag": f"{TAG_SYSTEM}|{tag}", "_count": "2"}))
    assert [len(page.get("entry") or []) for page in pages] == [2, 2, 1]
    assert {entry["resource"]["id"] for page in pages for entry in page["entry"]} == created
    next_links = [link["url"] for page in pages for link in page["link"] if link["relation"] == "next"]
    assert len(next_links) == 2 and all(url.startswith(hapi_server.base_url) for url in next_links)
    assert len(client.search_all("Observation", {"_tag": f"{TAG_SYSTEM}|{tag}", "_count": "2"})) == 5


def test_a_count_above_the_maximum_is_cut_to_200_and_paged(hapi_server: HapiServer) -> None:
    # hapi/src/main/resources/application.yaml registry.paging.max-page-size (200): Tandem asks _count=1000 for
    # registry scores (smartapp/measures/service.py) and gets them in pages of 200 through `next` links.
    pid, tag = _stored_patient(hapi_server), _uid()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": _observation(f"Patient/{pid}", tag),
                "request": {"method": "POST", "url": "Observation"},
            }
            for _ in range(205)
        ],
    }
    assert requests.post(hapi_server.base_url, json=bundle, headers=HEADERS, timeout=120).status_code == 200
    client = FHIRClient(hapi_server.base_url, HttpTransport(timeout=60), name="registry")
    pages = list(client.iter_pages("Observation", {"_tag": f"{TAG_SYSTEM}|{tag}", "_count": "1000"}))
    assert [len(page["entry"]) for page in pages] == [200, 5]


def test_last_updated_ge_finds_what_changed_since(hapi_server: HapiServer) -> None:
    # R4 search.html#lastUpdated with the ge prefix (search.html#prefix), at the server's millisecond precision.
    pid, tag = _stored_patient(hapi_server), _uid()
    older = _post(hapi_server, _observation(f"Patient/{pid}", tag)).json()
    time.sleep(0.05)  # two writes in one millisecond would share a lastUpdated
    newer = _post(hapi_server, _observation(f"Patient/{pid}", tag)).json()
    assert older["meta"]["lastUpdated"] < newer["meta"]["lastUpdated"]
    since = _search(hapi_server, "Observation",
                    {"_tag": f"{TAG_SYSTEM}|{tag}", "_lastUpdated": f"ge{newer['meta']['lastUpdated']}"})  # fmt: skip
    assert _ids(since) == [newer["id"]]
    everything = _search(hapi_server, "Observation",
                         {"_tag": f"{TAG_SYSTEM}|{tag}", "_lastUpdated": f"ge{older['meta']['lastUpdated']}"})  # fmt: skip
    assert sorted(_ids(everything)) == sorted([older["id"], newer["id"]])


def test_sort_by_last_updated_descending(hapi_server: HapiServer) -> None:
    # R4 search.html#sort: _sort=-_lastUpdated puts the latest first.
    pid, tag = _stored_patient(hapi_server), _uid()
    written = []
    for _ in range(3):
        written.append(_post(hapi_server, _observation(f"Patient/{pid}", tag)).json()["id"])
        time.sleep(0.05)
    newest_first = _search(
        hapi_server, "Observation", {"_tag": f"{TAG_SYSTEM}|{tag}", "_sort": "-_lastUpdated"}
    )
    assert _ids(newest_first) == list(reversed(written))
    oldest_first = _search(
        hapi_server, "Observation", {"_tag": f"{TAG_SYSTEM}|{tag}", "_sort": "_lastUpdated"}
    )
    assert _ids(oldest_first) == written


def test_subject_search_finds_one_patients_observations(hapi_server: HapiServer) -> None:
    # R4 search.html#reference: subject=Patient/x (and patient=x) match that patient's resources only.
    tag = _uid()
    mine, theirs = _stored_patient(hapi_server), _stored_patient(hapi_server)
    own = {_post(hapi_server, _observation(f"Patient/{mine}", tag)).json()["id"] for _ in range(2)}
    _post(hapi_server, _observation(f"Patient/{theirs}", tag))
    assert set(_ids(_search(hapi_server, "Observation", {"subject": f"Patient/{mine}"}))) == own
    assert (
        set(_ids(_search(hapi_server, "Observation", {"patient": mine, "_tag": f"{TAG_SYSTEM}|{tag}"})))
        == own
    )


def test_identifier_search_by_system_and_value(hapi_server: HapiServer) -> None:
    # R4 search.html#token: identifier=system|value matches both parts.
    value = _uid()
    wanted, other = _uid(), _uid()
    assert _put(hapi_server, _patient(wanted, identifier=value)).status_code == 201
    assert _put(hapi_server, _patient(other, identifier=value + "x")).status_code == 201
    assert _ids(_search(hapi_server, "Patient", {"identifier": f"{ID_SYSTEM}|{value}"})) == [wanted]
    assert _ids(_search(hapi_server, "Patient", {"identifier": f"https://elsewhere.test|{value}"})) == []


def test_tag_search_by_system_and_code(hapi_server: HapiServer) -> None:
    # R4 search.html#tag: _tag=system|code matches Resource.meta.tag.
    pid, tag = _stored_patient(hapi_server), _uid()
    tagged = _post(hapi_server, _observation(f"Patient/{pid}", tag)).json()["id"]
    untagged = _observation(f"Patient/{pid}", tag)
    del untagged["meta"]
    assert _post(hapi_server, untagged).status_code == 201
    assert _ids(_search(hapi_server, "Observation", {"_tag": f"{TAG_SYSTEM}|{tag}"})) == [tagged]
    assert _ids(_search(hapi_server, "Observation", {"_tag": f"https://elsewhere.test|{tag}"})) == []


# --- the jar -----------------------------------------------------------------------------------------------------


def test_a_jar_that_is_not_there_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TANDEM_HAPI_JAR", str(tmp_path / "missing.jar"))
    with pytest.raises(HapiUnavailable, match="TANDEM_HAPI_JAR"):
        hapi_jar()


def test_the_build_script_reuses_the_jar_cached_for_these_sources(tmp_path: Path) -> None:
    # scripts/hapi.sh: the cache names the jar by a hash of hapi/pom.xml and hapi/src, and skips Maven when it exists.
    module = HAPI_SCRIPT.parent.parent / "hapi"
    files = sorted(
        [module / "pom.xml", *(p for p in (module / "src").rglob("*") if p.is_file())],
        key=lambda p: os.fsencode(p.relative_to(module)),
    )
    listing = "".join(
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(module)}\n" for p in files
    )
    digest = hashlib.sha256(listing.encode()).hexdigest()[:16]
    expected = tmp_path / "tandem" / "hapi" / f"registry-server-{digest}.jar"
    expected.parent.mkdir(parents=True)
    expected.write_bytes(b"cached")
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [str(HAPI_SCRIPT), "path"], capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path), "PATH": os.environ["PATH"]},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(expected) and "cached" in result.stderr


def test_a_failed_build_says_what_failed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The fixture's message when Maven Central cannot be reached: hapi.sh's own diagnosis comes first.
    script = tmp_path / "hapi.sh"
    script.write_text(
        "#!/usr/bin/env bash\n"
        "echo 'hapi.sh: ERROR: Maven could not download HAPI FHIR' >&2\n"
        'for i in $(seq 1 30); do echo "[ERROR] maven line $i" >&2; done\n'
        "exit 1\n"
    )
    script.chmod(0o755)
    monkeypatch.delenv("TANDEM_HAPI_JAR", raising=False)
    monkeypatch.setattr("sandbox.processes.HAPI_SCRIPT", script)
    with pytest.raises(HapiUnavailable) as raised:
        hapi_jar()
    assert "Maven could not download HAPI FHIR" in str(raised.value) and "maven line 30" in str(raised.value)


def test_a_server_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "not-a.jar"
    bogus.write_bytes(b"not a jar")
    server = HapiServer(tmp_path / "hapi", jar=bogus)
    with pytest.raises(RuntimeError, match=r"did not start .*exited with code .*server\.log"):
        server.start()
    assert server.process is not None and server.process.poll() is not None
    assert "jarfile" in server.log_path.read_text()  # java's own words are in the log
