"""A requests session that waits before every request: a server across a network, for the benchmarks."""

from __future__ import annotations

import time
from typing import Any

import requests


class DelayedSession(requests.Session):
    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        time.sleep(self.delay)
        return super().send(request, **kwargs)
