"""The FHIR gateway: one client class for the EHR's FHIR API and for the registry store."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlencode

import requests

from . import errors
from .transport import FHIR_JSON, HttpTransport, RequestCounter, fhir_error_for, same_origin

log = logging.getLogger(__name__)

_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

SearchParams = Mapping[str, str | Sequence[str]] | Sequence[tuple[str, str]]


class TokenSource(Protocol):
    """Supplies the bearer token for a client; `invalidate` after a 401 forces a refresh on the next call."""

    def token(self) -> str | None: ...

    def invalidate(self) -> None: ...


class StaticToken:
    def __init__(self, value: str | None) -> None:
        self.value = value

    def token(self) -> str | None:
        return self.value

    def invalidate(self) -> None:
        return None


def check_type(resource_type: str) -> str:
    if not _TYPE.match(resource_type or ""):
        raise errors.FHIRBadRequest(f"{resource_type!r} is not a FHIR resource type")
    return resource_type


def check_id(resource_id: str) -> str:
    if not _ID.match(resource_id or ""):
        raise errors.FHIRBadRequest("not a valid FHIR id")
    return resource_id


def etag_for(resource: Mapping[str, Any]) -> str | None:
    """The weak ETag for If-Match from a resource's meta.versionId."""
    version = (resource.get("meta") or {}).get("versionId")
    return f'W/"{version}"' if version else None


def _encode_params(params: SearchParams | None) -> str:
    if not params:
        return ""
    pairs: list[tuple[str, str]] = []
    items = params.items() if isinstance(params, Mapping) else params
    for key, value in items:
        if isinstance(value, str):
            pairs.append((key, value))
        else:
            pairs.extend((key, item) for item in value)
    return urlencode(pairs)


def _is_idempotent_transaction(bundle: Mapping[str, Any]) -> bool:
    """A transaction may be retried when replaying it cannot create anything twice."""
    for entry in bundle.get("entry") or []:
        request = entry.get("request") or {}
        method = str(request.get("method", "")).upper()
        if method in ("PUT", "GET", "DELETE", "HEAD"):
            continue
        if method == "POST" and request.get("ifNoneExist"):
            continue
        return False
    return True


class FHIRClient:
    """A FHIR R4 REST client bound to one base URL and one token source."""

    def __init__(
        self, base_url: str, transport: HttpTransport, auth: TokenSource | None = None, *, name: str = "FHIR"
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self.auth = auth or StaticToken(None)
        self.name = name
        #: Requests this client sent, retries included.
        self.counter = RequestCounter()

    # --- plumbing ----------------------------------------------------------------------------------

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"Accept": FHIR_JSON}
        token = self.auth.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        headers.update(extra or {})
        return headers

    def _send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        idempotent: bool | None = None,
        stream: bool = False,
    ) -> requests.Response:
        if not same_origin(url, self.base_url):
            # Never send a bearer token to a host other than the server's own.
            raise errors.UnsafeURL(f"{what}: refused to follow a URL on another origin")
        body = None
        if json_body is not None:
            body = json.dumps(json_body)
            headers = {"Content-Type": FHIR_JSON, **(headers or {})}
        for attempt in (1, 2):
            response = self.transport.send(
                method, url, what=what, headers=self._headers(headers), data=body,
                idempotent=idempotent, counter=self.counter, stream=stream,
            )  # fmt: skip
            if response.status_code == 401 and attempt == 1:
                self.auth.invalidate()  # the token may have expired mid-flight: refresh once and retry
                continue
            break
        if response.status_code >= 400:
            raise fhir_error_for(response, f"{self.name} {what}")
        return response

    @staticmethod
    def _resource(response: requests.Response, what: str, expected_type: str | None = None) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise errors.MalformedResource(f"{what}: the server did not answer FHIR JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            raise errors.MalformedResource(f"{what}: the answer is not a FHIR resource")
        if expected_type and body["resourceType"] != expected_type:
            raise errors.MalformedResource(f"{what}: expected {expected_type}, got {body['resourceType']}")
        return body

    def send(self, method: str, url: str, *, what: str, headers: Mapping[str, str] | None = None,
             stream: bool = False) -> requests.Response:  # fmt: skip
        """A raw interaction with this server (Bulk Data status and file URLs): the same origin, token, retry and
        error rules as every other; a 4xx/5xx raises the typed error."""
        return self._send(method, url, what=what, headers=headers, stream=stream)

    # --- interactions ------------------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        response = self._send("GET", f"{self.base_url}/metadata", what="read CapabilityStatement")
        return self._resource(response, "read CapabilityStatement", "CapabilityStatement")

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        url = f"{self.base_url}/{check_type(resource_type)}/{check_id(resource_id)}"
        response = self._send("GET", url, what=f"read {resource_type}")
        resource = self._resource(response, f"read {resource_type}", resource_type)
        if "ETag" in response.headers and not (resource.get("meta") or {}).get("versionId"):
            version = response.headers["ETag"].removeprefix("W/").strip('"')
            resource.setdefault("meta", {})["versionId"] = version
        return resource

    def read_reference(self, reference: str) -> dict[str, Any]:
        """Read `Type/id` (relative) or an absolute URL on this server."""
        if reference.startswith(("http://", "https://")):
            if not same_origin(reference, self.base_url):
                raise errors.UnsafeURL("refused to read a reference on another origin")
            reference = reference[len(self.base_url) :].lstrip("/")
        parts = reference.split("/")
        if len(parts) < 2:
            raise errors.FHIRBadRequest("not a FHIR reference")
        return self.read(parts[-2], parts[-1])

    def search(self, resource_type: str, params: SearchParams | None = None, *,
               headers: Mapping[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
        query = _encode_params(params)
        url = f"{self.base_url}/{check_type(resource_type)}" + (f"?{query}" if query else "")
        response = self._send("GET", url, what=f"search {resource_type}", headers=headers)
        return self._resource(response, f"search {resource_type}", "Bundle")

    def next_page(self, bundle: Mapping[str, Any]) -> dict[str, Any] | None:
        for link in bundle.get("link") or []:
            if link.get("relation") == "next" and link.get("url"):
                response = self._send("GET", link["url"], what="search next page")
                return self._resource(response, "search next page", "Bundle")
        return None

    def iter_pages(self, resource_type: str, params: SearchParams | None = None, *, max_pages: int = 100
                   ) -> Iterator[dict[str, Any]]:  # fmt: skip
        page: dict[str, Any] | None = self.search(resource_type, params)
        pages = 0
        while page is not None:
            yield page
            pages += 1
            if pages >= max_pages:
                log.warning("%s search %s stopped after %d pages", self.name, resource_type, max_pages)
                return
            page = self.next_page(page)

    def search_all(self, resource_type: str, params: SearchParams | None = None, *, max_pages: int = 100
                   ) -> list[dict[str, Any]]:  # fmt: skip
        """Every matching resource across pages (included resources too), following same-origin `next` links."""
        return [
            entry["resource"]
            for page in self.iter_pages(resource_type, params, max_pages=max_pages)
            for entry in page.get("entry") or []
            if isinstance(entry.get("resource"), dict)
        ]

    def create(
        self, resource: Mapping[str, Any], *, if_none_exist: str | None = None, retry_safe: bool | None = None
    ) -> dict[str, Any]:
        """POST a resource; with if_none_exist, a conditional create, replayed on transient failures unless
        `retry_safe` is False (a server that ignores If-None-Exist would store a replay twice)."""
        resource_type = check_type(str(resource.get("resourceType")))
        headers = {"Prefer": "return=representation"}
        if if_none_exist:
            headers["If-None-Exist"] = if_none_exist
        response = self._send(
            "POST", f"{self.base_url}/{resource_type}", what=f"create {resource_type}", headers=headers,
            json_body=resource, idempotent=bool(if_none_exist) if retry_safe is None else retry_safe and bool(if_none_exist),
        )  # fmt: skip
        return self._written(response, resource, f"create {resource_type}")

    def update(self, resource: Mapping[str, Any], *, if_match: str | None = None) -> dict[str, Any]:
        """PUT a resource by id; with if_match, fail with FHIRPreconditionFailed when it changed meanwhile."""
        resource_type = check_type(str(resource.get("resourceType")))
        url = f"{self.base_url}/{resource_type}/{check_id(str(resource.get('id')))}"
        headers = {"Prefer": "return=representation"}
        if if_match:
            headers["If-Match"] = if_match
        try:
            response = self._send(
                "PUT", url, what=f"update {resource_type}", headers=headers, json_body=resource
            )
        except errors.FHIRConflict as error:
            if not if_match or isinstance(error, errors.FHIRPreconditionFailed):
                raise
            # A stale If-Match is 412 in the specification; HAPI FHIR JPA answers 409 (HAPI-0989 "… but this is
            # not the current version"). Either way it is the version conflict the caller handles.
            raise errors.FHIRPreconditionFailed(error.message, http_status=error.http_status,
                                                issues=error.issues) from None  # fmt: skip
        return self._written(response, resource, f"update {resource_type}")

    def transaction(self, bundle: Mapping[str, Any]) -> dict[str, Any]:
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") not in ("transaction", "batch"):
            raise errors.FHIRBadRequest("a transaction needs a Bundle of type transaction or batch")
        response = self._send(
            "POST", self.base_url, what=f"{bundle['type']} Bundle", headers={"Prefer": "return=representation"},
            json_body=bundle, idempotent=_is_idempotent_transaction(bundle),
        )  # fmt: skip
        return self._resource(response, "transaction", "Bundle")

    def _written(self, response: requests.Response, sent: Mapping[str, Any], what: str) -> dict[str, Any]:
        """The stored resource; servers that answer an empty 201 (seen at Epic) get id/version from Location."""
        if response.content:
            return self._resource(response, what, str(sent.get("resourceType")))
        written = dict(sent)
        location = response.headers.get("Location") or response.headers.get("Content-Location") or ""
        parts = location.rstrip("/").split("/")
        if "_history" in parts:
            index = parts.index("_history")
            written["id"] = parts[index - 1]
            if index + 1 < len(parts):
                written["meta"] = {**(written.get("meta") or {}), "versionId": parts[index + 1]}
        elif len(parts) >= 2:
            written["id"] = parts[-1]
        return written
