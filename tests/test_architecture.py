"""Three rooms, arrows one way: launch/ (the SMART client) imports nothing of ours; fhir_mappings/ (the pure
domain) imports neither the app nor any I/O library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("launch", {"smartapp", "fhir_mappings", "sandbox"}),
        ("fhir_mappings", {"smartapp", "launch", "sandbox", "flask", "requests", "redis", "rq"}),
        # The sandbox is a development tool: the demo finds it through the `tandem.demo` entry point.
        ("smartapp", {"sandbox"}),
    ],
)
def test_arrows_point_one_way(package: str, forbidden: set[str]) -> None:
    offenders = {path: sorted(names & forbidden) for path, names in imported_modules(package).items()
                 if names & forbidden}  # fmt: skip
    assert offenders == {}


def test_the_docker_image_leaves_the_sandbox_out() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    copies = [
        line.split()[1]
        for line in dockerfile.splitlines()
        if line.startswith("COPY") and "--from" not in line
    ]
    assert "sandbox" not in " ".join(copies) and {"smartapp", "launch", "fhir_mappings"} <= set(copies)


def test_demo_without_the_sandbox_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from click.testing import CliRunner

    from smartapp.cli import main

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [])
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 2 and "pip install -e '.[sandbox]'" in result.output
