"""Each user's worklist columns, and the deployment's time zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from werkzeug.datastructures import MultiDict

from fhir_mappings.registry.programs import PROGRAMS
from launch.errors import ConfigurationError
from launch.store import EmbeddedStore
from smartapp.caseload.columns import DEFAULT_COLUMNS, PrefsStore, WorklistPrefs, available_columns
from smartapp.config import Settings

ISS = "https://ehr.example.org/fhir"


def test_columns_are_ordered_by_position_and_a_changed_number_wins_a_tie() -> None:
    form = MultiDict({"pos-flags": "2", "was-flags": "2", "pos-care_manager": "2", "was-care_manager": "",
                      "pos-weeks": "3", "was-weeks": "3", "density": "comfortable", "page_size": "25"})  # fmt: skip
    prefs = WorklistPrefs.from_form(form, ["flags", "care_manager", "weeks", "no-such-column"])
    assert prefs.columns == ("care_manager", "flags", "weeks")
    assert (prefs.density, prefs.page_size) == ("comfortable", 25)
    odd = WorklistPrefs.from_form(MultiDict({"density": "huge", "page_size": "9999"}), [])
    assert odd == WorklistPrefs()  # nothing usable: the defaults
    shown = [c.key for c in prefs.shown(["care_manager", "flags"])]
    assert shown == ["patient", "care_manager", "flags"]  # patient always first; weeks not offered


def test_preferences_are_kept_per_user_and_ehr() -> None:
    store = PrefsStore(EmbeddedStore())
    mine = WorklistPrefs(("flags", "minutes"), "comfortable", 100)
    store.save(ISS, "Practitioner/cm-1", mine)
    assert store.load(ISS, "Practitioner/cm-1") == mine
    assert store.load(ISS, "Practitioner/cm-2").chosen == DEFAULT_COLUMNS
    assert store.load("https://other.example.org/fhir", "Practitioner/cm-1") == WorklistPrefs()
    assert store.load(ISS, None) == WorklistPrefs()
    store.reset(ISS, "Practitioner/cm-1")
    assert store.load(ISS, "Practitioner/cm-1") == WorklistPrefs()


def test_available_columns_follow_the_programs() -> None:
    assert "phq9" in available_columns(["phq9_latest"]) and "gad7" not in available_columns(["phq9_latest"])


def test_time_zone_is_validated_and_used(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="TANDEM_TIME_ZONE"):
        Settings.from_env({"TANDEM_TIME_ZONE": "Mars/Olympus"})
    assert Settings.from_env({"TANDEM_TIME_ZONE": "America/Chicago"}).time_zone == "America/Chicago"
    from flask import Flask

    from smartapp.clock import day_element, local_time, nowrap_parts, time_element

    app = Flask(__name__)
    app.config["TANDEM_TIME_ZONE"] = "America/Chicago"
    with app.app_context():
        assert local_time("2026-11-24T02:30:00+00:00") == "2026-11-23 20:30 CST"
        assert local_time(datetime(2026, 7, 1, 12, 0, tzinfo=UTC)) == "2026-07-01 07:00 CDT"
        assert local_time("2026-11-24") == "2026-11-24" and local_time(None) == ""
        assert local_time("not a time at all") == "not a time at all"
        # In a page: a <time> that never wraps, the instant kept for machines, the text escaped.
        assert str(time_element("2026-11-24T02:30:00+00:00")) == (
            '<time class="nowrap" datetime="2026-11-24T02:30:00+00:00">2026-11-23 20:30 CST</time>'
        )
        assert str(time_element("<b>")) == '<time class="nowrap" datetime="&lt;b&gt;">&lt;b&gt;</time>'
        assert str(time_element(None)) == ""
        # An identity line wraps between its parts, never inside a date or an MRN; its text escaped.
        assert str(nowrap_parts("DOB 1980-05-02 · 46 y · MRN <1>")) == (
            '<span class="nowrap">DOB 1980-05-02</span> · <span class="nowrap">46 y</span> · '
            '<span class="nowrap">MRN &lt;1&gt;</span>'
        )
        # A day alone (a recommendation's status): the local day, 02:30 UTC is still the 23rd in Chicago.
        assert str(day_element("2026-11-24T02:30:00+00:00")) == (
            '<time class="nowrap" datetime="2026-11-24T02:30:00+00:00">2026-11-23</time>'
        )


def test_the_default_consultant_must_be_a_practitioner_reference() -> None:
    assert Settings.from_env({"TANDEM_DEFAULT_CONSULTANT": "Practitioner/pr-psy-1"}).default_consultant
    with pytest.raises(ConfigurationError, match="TANDEM_DEFAULT_CONSULTANT"):
        Settings.from_env({"TANDEM_DEFAULT_CONSULTANT": "Irene"})


def test_a_user_who_chose_no_columns_sees_the_programs_defaults_and_a_choice_wins() -> None:
    offered = available_columns(PROGRAMS["cocm-smi"].worklist_columns)
    smi_defaults = PROGRAMS["cocm-smi"].default_columns
    assert [c.key for c in WorklistPrefs().shown(offered, smi_defaults)] == list(smi_defaults)
    assert [c.key for c in WorklistPrefs().shown(offered)] == [k for k in DEFAULT_COLUMNS if k in offered]
    chosen = WorklistPrefs(("medical", "flags"))
    assert [c.key for c in chosen.shown(offered, smi_defaults)] == ["patient", "medical", "flags"]
    # The whole-person columns are offered only by a program that tracks them.
    assert "medical" not in available_columns(PROGRAMS["cocm-depression"].worklist_columns)
