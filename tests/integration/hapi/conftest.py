"""The integration suite's registry paths against HAPI FHIR JPA (hapi/, default settings: referential integrity on
write and on delete, search results cached for 60 s), the registry store hospitals run.

Each module here re-runs one module of tests/integration with this `world`: the same sandbox (size 24, seed 11)
whose registry store is HAPI, with Redis database 2 of its own (its caseload snapshot and job queues apart).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis


@pytest.fixture(scope="session")
def world(redis_url: str) -> Iterator[Any]:
    from sandbox.world import SandboxWorld

    url = redis_url.rsplit("/", 1)[0] + "/2"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    with SandboxWorld(size=24, seed=11, redis_url=url, registry_server="hapi") as started:
        yield started
