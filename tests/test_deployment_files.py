"""docker/Dockerfile and docker/compose.yaml, checked statically (no Docker engine runs here)."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import yaml

from smartapp.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text(encoding="utf-8"))


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_dockerfile_copies_only_what_exists() -> None:
    for instruction, args in _instructions():
        if instruction == "COPY" and "--from" not in args:
            *sources, _ = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_dockerfile_runs_gunicorn_as_a_non_root_user() -> None:
    instructions = _instructions()
    users = [args for instruction, args in instructions if instruction == "USER"]
    assert users and users[-1] not in ("root", "0")
    final_stage = instructions[max(i for i, (ins, _) in enumerate(instructions) if ins == "FROM") :]
    assert any(ins == "USER" for ins, _ in final_stage)
    cmd = next(args for ins, args in reversed(instructions) if ins == "CMD")
    assert '"gunicorn"' in cmd and '"smartapp.wsgi:app"' in cmd and "0.0.0.0:8000" in cmd
    assert "%(U)s" in cmd and "%(r)s" not in cmd  # no query strings in the access log
    assert any(ins == "EXPOSE" and args.strip() == "8000" for ins, args in instructions)
    assert any(ins == "HEALTHCHECK" and "/healthz" in args for ins, args in instructions)


def test_dockerfile_installs_the_server_extra_that_pyproject_defines() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(dep.startswith("gunicorn") for dep in extras["server"])
    assert '".[server]"' in DOCKERFILE


def test_wsgi_module_builds_the_app(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import importlib
    import sys

    for name in list(__import__("os").environ):
        if name.startswith("TANDEM_"):
            monkeypatch.delenv(name)
    sys.modules.pop("smartapp.wsgi", None)
    module = importlib.import_module("smartapp.wsgi")
    assert module.app.test_client().get("/healthz").status_code == 200


def test_compose_services_and_dependencies() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"tandem", "worker", "redis", "hapi", "postgres"}
    worker = services["worker"]  # drains write-backs with the web service's image and configuration
    assert worker["command"] == ["tandem", "worker"] and worker["image"] == services["tandem"]["image"]
    assert worker["environment"] == services["tandem"]["environment"]
    tandem = services["tandem"]
    assert (
        tandem["build"]["dockerfile"] == "docker/Dockerfile"
        and (ROOT / tandem["build"]["context"].replace("..", ".")).exists()
    )
    assert set(tandem["depends_on"]) == {"redis", "hapi"}
    for name, service in services.items():
        image = service.get("image", "")
        if name not in ("tandem", "worker"):
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image version"
    assert services["redis"]["healthcheck"]["test"][-1] == "ping"
    assert services["hapi"]["build"]["dockerfile"] == "docker/hapi/Dockerfile"


HAPI_DOCKERFILE = (ROOT / "docker" / "hapi" / "Dockerfile").read_text(encoding="utf-8")


def test_compose_runs_tandems_hapi_on_postgres_behind_no_published_port() -> None:
    services = COMPOSE["services"]
    hapi, postgres = services["hapi"], services["postgres"]
    # HAPI has no authentication of its own: nothing outside the compose network reaches it.
    assert "ports" not in hapi
    assert hapi["environment"]["SPRING_DATASOURCE_URL"] == "jdbc:postgresql://postgres:5432/hapi"
    assert hapi["environment"]["SPRING_DATASOURCE_USERNAME"] == postgres["environment"]["POSTGRES_USER"]
    assert hapi["environment"]["SPRING_DATASOURCE_PASSWORD"] == postgres["environment"]["POSTGRES_PASSWORD"]
    assert "${HAPI_DB_PASSWORD:?" in hapi["environment"]["SPRING_DATASOURCE_PASSWORD"]  # no default password
    assert hapi["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    # Health: HAPI answers /fhir/metadata; PostgreSQL answers pg_isready; the registry's rows live in a volume.
    assert (
        "/fhir/metadata" in " ".join(hapi["healthcheck"]["test"])
        and " 200 " in hapi["healthcheck"]["test"][-1]
    )
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(v.split(":")[0] in COMPOSE["volumes"] and v.endswith(":/var/lib/postgresql/data")
               for v in postgres["volumes"])  # fmt: skip
    assert postgres["image"].startswith("postgres:16")
    # Tandem and the worker start once HAPI answers, not merely once its container started.
    for name in ("tandem", "worker"):
        assert services[name]["depends_on"]["hapi"] == {"condition": "service_healthy"}, name
    comments = (ROOT / "docker" / "compose.yaml").read_text(encoding="utf-8")
    assert "authenticating proxy" in comments and "no authentication" in comments


def test_the_hapi_image_builds_hapi_and_runs_it_on_a_jre_as_a_non_root_user() -> None:
    joined = re.sub(r"\\\n\s*", " ", HAPI_DOCKERFILE)
    lines = [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    froms = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert len(froms) == 2 and froms[0].startswith("maven:") and "temurin-17" in froms[0]
    assert froms[1].startswith("eclipse-temurin:17") and "-jre" in froms[1]
    assert all(":" in image and not image.endswith(":latest") for image in froms)
    for line in lines:
        if line.startswith("COPY ") and "--from" not in line:
            source = line.split()[1]
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    assert "mvn -q -B package -DskipTests" in joined
    final_stage = joined[joined.rindex("\nFROM ") :]
    assert "USER hapi" in final_stage and "HEALTHCHECK" in final_stage and "/fhir/metadata" in final_stage


def test_compose_environment_is_a_valid_production_configuration() -> None:
    env = {k: str(v) for k, v in COMPOSE["services"]["tandem"]["environment"].items()}
    resolved = {
        k: re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: {"TANDEM_BASE_URL": "https://tandem.example.org",
                                                     "TANDEM_SECRET_KEY": "s" * 40,
                                                     "TANDEM_PROXY_IPS": "10.0.0.5"}[m.group(1)], v)
        for k, v in env.items()
    }  # fmt: skip
    settings = Settings.from_env(resolved)  # raises on an unknown or invalid variable
    assert settings.production
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.registry_url == "http://hapi:8080/fhir"
    mounts = COMPOSE["services"]["tandem"]["volumes"]
    assert any(m.endswith(":/config:ro") for m in mounts)
    assert settings.registrations and settings.registrations.startswith("/config/")
    # gunicorn trusts the TLS proxy's X-Forwarded-Proto: Tandem sees HTTPS, and Flask-WTF checks the Referer.
    assert resolved["FORWARDED_ALLOW_IPS"] == "10.0.0.5"


def test_gunicorn_accepts_the_request_lines_tandem_accepts() -> None:
    from launch.flow import MAX_LAUNCH_QUERY

    text = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert '"--limit-request-line", "8190"' in text  # gunicorn's largest; its default (4094) gave 414
    # "GET /launch?<query> HTTP/1.1" fits in it with Tandem's own limit; a 7,000-character Epic launch token too.
    assert len("GET /launch?") + MAX_LAUNCH_QUERY + len(" HTTP/1.1") <= 8190
    assert len(
        "iss=https%3A%2F%2Ffhir.epic.com%2Finterconnect-fhir-oauth%2Fapi%2FFHIR%2FR4&launch="
    ) + 7000 < (MAX_LAUNCH_QUERY)
