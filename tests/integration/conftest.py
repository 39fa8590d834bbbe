"""The real-component tier: sekmet-fhir servers, the sandbox EHR over HTTP, redis-server, Tandem over HTTP."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from sandbox.world import SandboxWorld

from ..forms import Form, form_in


class Browser(requests.Session):
    """A cookie-keeping client that, like browsers, sends Secure cookies to http://localhost."""

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        for cookie in self.cookies:
            cookie.secure = False
        return super().prepare_request(request)

    def follow(self, url: str, *, limit: int = 8, **kwargs: Any) -> requests.Response:
        """GET and follow redirects across origins, as a browser would."""
        response = self.get(url, allow_redirects=False, **kwargs)
        for _ in range(limit):
            if response.status_code not in (301, 302, 303, 307):
                return response
            location = response.headers["Location"]
            if location.startswith("/"):
                location = re.match(r"https?://[^/]+", response.url).group(0) + location  # type: ignore[union-attr]
            response = self.get(location, allow_redirects=False)
        raise AssertionError("too many redirects")

    def form(self, page: str, action: str | None = None) -> tuple[Form, str]:
        """Open `page`; its POST form that targets `action` (by default the page itself), and that form's URL."""
        shown = self.get(page)
        assert shown.status_code == 200, (page, shown.status_code, shown.text[-500:])
        path = urlsplit(page).path
        form = form_in(shown.text, action or path, page=path)
        return form, urljoin(page, form.action or path)

    def submit(self, page: str, data: dict[str, str] | None = None, *, action: str | None = None,
               **kwargs: Any) -> requests.Response:  # fmt: skip
        """Open `page`, fill its form with `data` beside the form's hidden fields, and submit it."""
        form, target = self.form(page, action)
        return self.post_from(page, target, {**form.hidden, **(data or {})}, **kwargs)

    def post_from(self, page: str, target: str, data: dict[str, str], **kwargs: Any) -> requests.Response:
        """POST as a form on `page` does (with the page as Referer); redirects are not followed."""
        kwargs.setdefault("allow_redirects", False)
        return self.post(target, data=data, headers={"Referer": page}, **kwargs)


@pytest.fixture
def browser() -> Browser:
    return Browser()


@pytest.fixture
def sandbox_state(world: SandboxWorld) -> Any:
    return world.sandbox_app.extensions["sandbox"]


def launch_url(world: SandboxWorld, mode: str, patient: str | None = "pt-0001", target: str = "chart",
               practitioner: str = "pr-pcp-1", banner: bool = True) -> str:  # fmt: skip
    params = f"mode={mode}&practitioner={practitioner}&target={target}&banner={'1' if banner else '0'}"
    if patient:
        params += f"&patient={patient}"
    return f"{world.sandbox_url}/launch-app?{params}"


def launch_id_of(response: requests.Response) -> str:
    match = re.search(r"/app/([^/]+)/", response.url)
    assert match, response.url
    return match.group(1)
