"""When Redis is down, pages answer 503 with a page that says what happened and what still works, a screening
form keeps what was entered, and /readyz says so."""

from __future__ import annotations

import re
import socket

from smartapp import create_app

from ..conftest import APP_BASE


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends: nothing listens there


def test_pages_answer_503_and_the_screening_form_keeps_the_answers(environ: dict[str, str]) -> None:
    app = create_app(environ={**environ, "TANDEM_REDIS_URL": f"redis://127.0.0.1:{_closed_port()}/0"})
    client = app.test_client()
    ready = client.get("/readyz", base_url=APP_BASE)
    assert ready.status_code == 503 and ready.get_json()["checks"]["store"] == "unreachable"

    page = client.get("/app/" + "A" * 32 + "/", base_url=APP_BASE)
    assert page.status_code == 503
    assert "Tandem is temporarily unavailable" in page.get_data(as_text=True)

    answers = {f"phq9-{n}": "LA6570-1" for n in range(1, 9)} | {"phq9-9": "LA6569-3"}
    kept = client.post("/app/" + "A" * 32 + "/screen/phq9", base_url=APP_BASE,
                       data={"csrf_token": "t", "submission_id": "0" * 32, **answers})  # fmt: skip
    html = kept.get_data(as_text=True)
    assert kept.status_code == 503
    assert "your PHQ-9 answers are kept below" in html and "not saved yet" in html
    assert all(f'name="{k}" value="{v}"' in html for k, v in answers.items())  # Save again re-posts them
    assert re.search(r"9\. Thoughts that you would be better off dead.*?Several days", html, re.S)
    assert "act on it now" in html  # a positive safety answer is not left waiting for Tandem
