"""The words a person reads for each error, kept in the application and resolved along the error's ancestry."""

from __future__ import annotations

import inspect

import pytest

from launch import errors
from smartapp import errors as app_errors
from smartapp.error_pages import COPY, page_for


def _all_error_classes() -> list[type[errors.TandemError]]:
    found = []
    for module in (errors, app_errors):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, errors.TandemError):
                found.append(cls)
    return found


@pytest.mark.parametrize(
    ("error", "status", "title", "advice"),
    [
        (
            errors.RegistrationProblem("invalid_client"),
            502,
            "registration at this EHR",
            "Relaunching will not help",
        ),
        (errors.SessionExpired("x"), 401, "session has ended", "Launch Tandem again"),
        (errors.StateMismatch("x"), 400, "expired or was already used", "launch Tandem again"),
        (errors.FHIRTimeout("x"), 504, "took too long", "Try again in a minute"),
        (errors.FHIRPreconditionFailed("x"), 409, "Someone else changed", "Reload the page"),
        (errors.StoreUnavailable("x"), 503, "temporarily unavailable", "Nothing you already saved is lost"),
        (app_errors.NotCareTeam("x"), 403, "for the care team", "Your care team can tell you"),
        (app_errors.NotPermitted("x"), 403, "does not give access", "worklist"),
        (app_errors.FormExpired("x"), 403, "form has expired", "submit the form again"),
        (errors.MalformedResource("x"), 502, "could not read", "contact your IT help desk"),
    ],
)
def test_each_error_reads_as_its_cause(
    error: errors.TandemError, status: int, title: str, advice: str
) -> None:
    page = page_for(error)
    assert page.status == status and title in page.title and advice in page.advice


def test_every_error_class_has_a_page_and_launch_holds_no_page_copy() -> None:
    for cls in _all_error_classes():
        page = page_for(cls("x"))
        assert 400 <= page.status < 600 and page.title and page.advice, cls
        assert not {"title", "advice", "status_code"} & set(vars(cls)), f"{cls.__name__} carries page copy"
    assert set(COPY) <= set(_all_error_classes())
