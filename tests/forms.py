"""Tandem's forms as a browser sees them: each form's target, method and hidden fields (the CSRF token, the
server-minted ids and their signatures). The action helpers of both tiers fill forms through this."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Form:
    #: The form's action attribute; None when it posts back to the page's own address.
    action: str | None
    method: str
    hidden: dict[str, str] = field(default_factory=dict)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._open: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "form":
            self._open = Form(named.get("action"), (named.get("method") or "get").lower())
            self.forms.append(self._open)
        elif (
            tag == "input" and self._open is not None and named.get("type") == "hidden" and named.get("name")
        ):
            self._open.hidden[str(named["name"])] = named.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def forms_in(html: str) -> list[Form]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def form_in(html: str, action: str, *, page: str | None = None) -> Form:
    """The POST form whose target ends with `action`; a form without an action attribute targets `page`."""
    posts = [form for form in forms_in(html) if form.method == "post"]
    found = [form for form in posts if (form.action or page or "").split("?")[0].endswith(action)]
    assert found, f"no POST form for {action} among {[form.action or page for form in posts]}"
    return found[0]


#: What a clinician reads on a page: never these (technical detail only inside a collapsed "Details for IT").
FORBIDDEN_ON_PAGES = (
    "HTTP 4",
    "HTTP 5",
    "DocumentReference",
    "Observation",
    "QuestionnaireResponse",
    "OperationOutcome",
)
