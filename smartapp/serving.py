"""Serving helpers shared by `tandem serve` and the sandbox demo."""

from __future__ import annotations

from werkzeug.serving import WSGIRequestHandler


class PathOnlyLogHandler(WSGIRequestHandler):
    """Access log lines without query strings: /launch and /callback carry launch tokens and codes."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.path = self.path.split("?", 1)[0]
        super().log_request(code, size)
