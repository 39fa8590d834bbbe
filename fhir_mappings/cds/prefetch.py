"""A CDS Hooks request's prefetch, read as the specification means it (../shared/reference/cds_hooks.md §3, §10):

- a key the client left out (would not, or could not, fetch it) is **missing**: fetch it from the FHIR server;
- `null` for a read is **none**: done, and there is nothing;
- a searchset Bundle is **found** (an empty one: found, no results);
- an OperationOutcome is an **error** on the client's side: treated like missing.

Total: any value gives a state, never an exception."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class State(StrEnum):
    MISSING = "missing"
    NONE = "none"
    FOUND = "found"
    ERROR = "error"


@dataclass(frozen=True)
class Prefetched:
    state: State
    #: The resource of a read, or the resources of a search (first page), when found.
    resources: list[dict[str, Any]] = field(default_factory=list)
    #: A paginated search's `next` link (the rest must be fetched from the FHIR server).
    next_url: str | None = None

    @property
    def usable(self) -> bool:
        """The client answered for this key: what it sent is the data (none or found)."""
        return self.state in (State.NONE, State.FOUND)


def read_prefetch(prefetch: Any, key: str, *, resource_type: str | None = None) -> Prefetched:
    """The state of one prefetch key. `resource_type`: what a read must return (else the value is an error)."""
    if not isinstance(prefetch, Mapping) or key not in prefetch:
        return Prefetched(State.MISSING)
    value = prefetch[key]
    if value is None:
        return Prefetched(State.NONE)
    if not isinstance(value, Mapping):
        return Prefetched(State.ERROR)
    kind = value.get("resourceType")
    if kind == "OperationOutcome":
        return Prefetched(State.ERROR)
    if kind == "Bundle":
        entries = value.get("entry")
        resources = [
            dict(entry["resource"])
            for entry in (entries if isinstance(entries, list) else [])
            if isinstance(entry, Mapping) and isinstance(entry.get("resource"), Mapping)
            and (entry.get("search") or {}).get("mode", "match") == "match"
        ]  # fmt: skip
        if any(r.get("resourceType") == "OperationOutcome" for r in resources) and len(resources) == 1:
            return Prefetched(State.ERROR)
        links = value.get("link")
        next_url = next((str(link["url"]) for link in (links if isinstance(links, list) else [])
                         if isinstance(link, Mapping) and link.get("relation") == "next"
                         and isinstance(link.get("url"), str)), None)  # fmt: skip
        return Prefetched(State.FOUND, [r for r in resources if r.get("resourceType") != "OperationOutcome"],
                          next_url)  # fmt: skip
    if resource_type is not None and kind != resource_type:
        return Prefetched(State.ERROR)
    return Prefetched(State.FOUND, [dict(value)])


def fill_template(template: str, context: Mapping[str, Any]) -> str | None:
    """A prefetch template with `{{context.x}}` replaced (root-level primitives only); None if a token is unknown.
    The sandbox EHR uses this to honour Tandem's templates as a real client does."""
    out, rest = [], template
    while "{{" in rest:
        before, _, after = rest.partition("{{")
        token, closed, rest = after.partition("}}")
        if not closed:
            return None
        name = token.strip()
        if not name.startswith("context."):
            return None
        value = context.get(name.removeprefix("context."))
        if not isinstance(value, str | int) or isinstance(value, bool):
            return None
        out += [before, str(value)]
    return "".join(out) + rest
