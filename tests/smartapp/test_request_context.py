"""The request context: every launch page is wrapped by @launch_required, and the layout keeps features apart."""

from __future__ import annotations

from pathlib import Path

from smartapp import create_app
from smartapp.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_launch_page_requires_the_launch() -> None:
    app = create_app(Settings())
    launch_pages = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/app/<launch_id>")]
    assert len(launch_pages) >= 15
    unguarded = [rule.rule for rule in launch_pages
                 if not getattr(app.view_functions[rule.endpoint], "launch_required", False)]  # fmt: skip
    assert unguarded == []


def test_features_are_folders_with_their_views_and_templates() -> None:
    for feature in ("chart", "caseload", "safety", "signin"):
        folder = ROOT / "smartapp" / feature
        assert (folder / "views.py").is_file() and any((folder / "templates").glob("*.html")), feature
    assert not (ROOT / "launch" / "registry.py").exists() and not (ROOT / "launch" / "screenings.py").exists()
