"""FHIR Bulk Data export as a Backend Services client: kick-off, status polling with `Retry-After`, NDJSON
download. Resumable: the status URL is all a caller needs to keep to pick an export up again after a restart.
https://hl7.org/fhir/uv/bulkdata/export.html
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

import requests

from . import errors
from .fhir import FHIRClient, check_id, check_type
from .transport import fhir_error_for, parse_retry_after, same_origin

log = logging.getLogger(__name__)

NDJSON = "application/fhir+ndjson"
#: Waits between status polls: the server's Retry-After, kept within these bounds.
MIN_POLL_SECONDS = 1.0
MAX_POLL_SECONDS = 120.0


@dataclass(frozen=True)
class ExportFile:
    type: str
    url: str
    count: int | None = None


@dataclass(frozen=True)
class Manifest:
    transaction_time: str
    requires_access_token: bool
    output: tuple[ExportFile, ...]
    error: tuple[ExportFile, ...]

    def files(self, resource_type: str) -> list[ExportFile]:
        return [f for f in self.output if f.type == resource_type]


@dataclass(frozen=True)
class ExportStatus:
    """One status poll: the manifest when complete, else the server's progress text and suggested wait."""

    manifest: Manifest | None
    progress: str | None = None
    retry_after: float | None = None


def parse_manifest(body: object) -> Manifest:
    """The completed export's manifest. Total: odd JSON gives a MalformedResource (no transactionTime) or skips
    the odd entries, never another exception."""
    if not isinstance(body, Mapping) or not isinstance(body.get("transactionTime"), str):
        raise errors.MalformedResource("bulk export manifest: no transactionTime")

    def files(key: str) -> tuple[ExportFile, ...]:
        found = []
        listed = body.get(key)
        for item in listed if isinstance(listed, list) else []:
            if (
                isinstance(item, Mapping)
                and isinstance(item.get("type"), str)
                and isinstance(item.get("url"), str)
            ):
                count = item.get("count")
                found.append(ExportFile(item["type"], item["url"], count if isinstance(count, int) else None))
        return tuple(found)

    return Manifest(
        body["transactionTime"], body.get("requiresAccessToken") is True, files("output"), files("error")
    )


class BulkExport:
    """Bulk Data export over one FHIRClient (whose token source is backend services)."""

    def __init__(self, client: FHIRClient, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.client = client
        self.sleep = sleep
        self.clock = clock

    def kick_off_group(self, group_id: str, *, types: Sequence[str], type_filters: Sequence[str] = (),
                       since: str | None = None) -> str:  # fmt: skip
        """Start `Group/<id>/$export`; returns the status URL (Content-Location)."""
        params = [("_type", ",".join(check_type(t) for t in types)), ("_outputFormat", NDJSON)]
        params += [("_typeFilter", f) for f in type_filters]
        if since:
            params.append(("_since", since))
        url = f"{self.client.base_url}/Group/{check_id(group_id)}/$export?{urlencode(params)}"
        response = self.client.send("GET", url, what="bulk export kick-off",
                                    headers={"Accept": "application/fhir+json", "Prefer": "respond-async"})  # fmt: skip
        location = response.headers.get("Content-Location")
        if response.status_code != 202 or not location:
            raise errors.FHIRError(
                f"bulk export kick-off: expected 202 with Content-Location, got HTTP {response.status_code}"
            )
        if not same_origin(location, self.client.base_url):
            raise errors.UnsafeURL("bulk export kick-off: the status URL is on another origin")
        return location

    def status(self, status_url: str) -> ExportStatus:
        response = self.client.send("GET", status_url, what="bulk export status")
        if response.status_code == 202:
            return ExportStatus(None, response.headers.get("X-Progress"),
                                parse_retry_after(response.headers.get("Retry-After")))  # fmt: skip
        if response.status_code != 200:
            raise errors.FHIRError(f"bulk export status: unexpected HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise errors.MalformedResource("bulk export status: the manifest is not JSON") from None
        return ExportStatus(parse_manifest(body))

    def wait(self, status_url: str, *, timeout: float = 3600.0,
             on_progress: Callable[[str | None], None] | None = None) -> Manifest:  # fmt: skip
        """Poll until the export completes, waiting as long as the server asks (within bounds)."""
        deadline = self.clock() + timeout
        while True:
            status = self.status(status_url)
            if status.manifest is not None:
                return status.manifest
            if on_progress is not None:
                on_progress(status.progress)
            wait = min(MAX_POLL_SECONDS, max(MIN_POLL_SECONDS, status.retry_after or MIN_POLL_SECONDS))
            if self.clock() + wait > deadline:
                raise errors.FHIRTimeout(f"bulk export did not complete within {timeout:.0f} s")
            self.sleep(wait)

    def resources(self, manifest: Manifest, resource_type: str) -> Iterator[dict[str, object]]:
        """Every resource of one type in the export, file by file, line by line (never a whole file in memory)."""
        for item in manifest.files(resource_type):
            response = self._download(manifest, item)
            try:
                for number, line in enumerate(response.iter_lines(), start=1):
                    if not line.strip():
                        continue
                    try:
                        resource = json.loads(line)
                    except ValueError:
                        log.warning(
                            "bulk export: skipped line %d of a %s file (not JSON)", number, resource_type
                        )
                        continue
                    if isinstance(resource, dict) and resource.get("resourceType") == resource_type:
                        yield resource
            finally:
                response.close()

    def _download(self, manifest: Manifest, item: ExportFile) -> requests.Response:
        if same_origin(item.url, self.client.base_url):
            return self.client.send("GET", item.url, what="bulk export download", headers={"Accept": NDJSON},
                                    stream=True)  # fmt: skip
        if manifest.requires_access_token:
            # The token is never sent to another origin (a storage bucket must then not need it).
            raise errors.UnsafeURL("bulk export: an output file that needs the token is on another origin")
        response = self.client.transport.send("GET", item.url, what="bulk export download",
                                              headers={"Accept": NDJSON}, stream=True)  # fmt: skip
        if response.status_code >= 400:
            raise fhir_error_for(response, "bulk export download")
        return response

    def cancel(self, status_url: str) -> None:
        try:
            self.client.send("DELETE", status_url, what="bulk export cancel")
        except errors.FHIRNotFound:
            pass
