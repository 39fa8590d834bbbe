"""The `tandem` command: serve, check an EHR before registration, manage signing keys."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from launch.errors import ConfigurationError, TandemError
from launch.keys import KeyRing, generate_key_set, write_key_set
from launch.registrations import load_registrations
from launch.scopes import Vendor
from smartapp.check import inspect_server
from smartapp.config import Settings
from smartapp.services import publish_questionnaires
from smartapp.serving import PathOnlyLogHandler, install_log_redaction


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group()
def main() -> None:
    """Tandem: an EHR-embedded behavioral health registry."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run Tandem (development server; use gunicorn in production)."""
    from werkzeug.serving import run_simple

    from . import create_app

    try:
        settings = Settings.from_env()
        _configure_logging(settings.log_level)
        app = create_app(settings)
        publish_questionnaires(app.extensions["tandem"])
    except ConfigurationError as error:
        click.echo(f"tandem: {error.message}", err=True)
        sys.exit(2)
    click.echo(f"Tandem on http://{host}:{port}/  (launch URL http://{host}:{port}/launch)")
    install_log_redaction()
    run_simple(host, port, app, threaded=True, use_reloader=False, request_handler=PathOnlyLogHandler)


def _services_or_exit() -> object:
    from smartapp.services import build_services

    try:
        settings = Settings.from_env()
        _configure_logging(settings.log_level)
        return build_services(settings)
    except ConfigurationError as error:
        click.echo(f"tandem: {error.message}", err=True)
        sys.exit(2)


@main.command()
@click.option("--burst", is_flag=True, help="Run what is queued and due now, then stop.")
def worker(burst: bool) -> None:
    """Drain write-backs and refresh EHR scores: the RQ worker (with its scheduler) on TANDEM_REDIS_URL, plus a
    sweeper that queues pending write-backs whose wait is over and the score refreshes that are due
    (TANDEM_EHR_REFRESH_MINUTES)."""
    from smartapp.services import Services
    from smartapp.worker import run_worker

    services = _services_or_exit()
    assert isinstance(services, Services)  # noqa: S101
    try:
        click.echo(
            "Tandem worker: write-backs and EHR score refreshes"
            + (" (burst)" if burst else "; Ctrl-C stops it")
        )
        run_worker(services, burst=burst)
    except ConfigurationError as error:
        click.echo(f"tandem: {error.message}", err=True)
        sys.exit(2)


@main.group("ehr-scores")
def ehr_scores() -> None:
    """Enrolled patients' scores read from the EHR with backend services."""


@ehr_scores.command("refresh")
@click.option(
    "--iss", default=None, help="Only this issuer (default: every issuer with an [issuer.backend])."
)
@click.option("--full", is_flag=True, help="A full export even where `_since` would do.")
def refresh_ehr_scores(iss: str | None, full: bool) -> None:
    """Refresh now, in this process, and print what was read."""
    from smartapp.caseload.ehr_refresh import ScoreRefresh, refreshable
    from smartapp.services import Services

    services = _services_or_exit()
    assert isinstance(services, Services)  # noqa: S101
    chosen = services.registrations.get(iss) if iss else None
    regs = list(refreshable(services, chosen.iss if chosen else iss))
    if not regs:
        click.echo(
            "tandem: no issuer " + (f"{iss} " if iss else "") + "has an [issuer.backend] registration",
            err=True,
        )
        sys.exit(2)
    failed = False
    for reg in regs:
        try:
            report = ScoreRefresh(services, reg).run(full=full)
        except TandemError as error:
            click.echo(f"{reg.label}: failed: {error.message}", err=True)
            failed = True
            continue
        click.echo(f"{reg.label}: " + (report.summary() if report else "a refresh is already running"))
    sys.exit(1 if failed else 0)


@main.group()
def measures() -> None:
    """Quality measures over the EHR's population (Bulk Data) and the registry."""


@measures.command("extract")
@click.option("--iss", default=None, help="The EHR (default: the only issuer with a Group for Bulk Data).")
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the Parquet files."
)
@click.option("--time-zone", default="UTC", show_default=True, help="The time zone days are compared in.")
@click.option(
    "--from",
    "from_dir",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="Read FHIR NDJSON files or Bundles from this folder instead of exporting from the EHR.",
)
def measures_extract(iss: str | None, out_dir: str, time_zone: str, from_dir: str | None) -> None:
    """Export the EHR's Group with backend services (or read FHIR files with --from) and write one Parquet file
    per resource type."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from smartapp.measures.service import extract
    from smartapp.services import Services

    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        click.echo(f"tandem: unknown time zone {time_zone!r} (e.g. America/Chicago)", err=True)
        sys.exit(2)
    if from_dir is not None:
        from smartapp.measures.files import extract_files

        found = extract_files(Path(from_dir), Path(out_dir), zone)
        click.echo(f"{from_dir}: {found.summary()}")
        sys.exit(0 if found.resources else 1)
    services = _services_or_exit()
    assert isinstance(services, Services)  # noqa: S101
    regs = [r for r in services.registrations if r.backend and r.backend.group_id and iss in (None, r.iss)]
    if len(regs) != 1:
        click.echo("tandem: name the EHR with --iss (one with [issuer.backend] group_id)", err=True)
        sys.exit(2)
    try:
        report = extract(services, regs[0], Path(out_dir), zone, on_progress=click.echo)
    except TandemError as error:
        click.echo(f"tandem: the export failed: {error.message}", err=True)
        sys.exit(1)
    click.echo(f"{regs[0].label}: {report.summary()}")


@measures.command("run")
@click.option("--period", "year", type=int, required=True, help="The measurement year, e.g. 2026.")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True)
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="A folder written by `tandem measures extract`.",
)
@click.option("--iss", default=None, help="Keep the result for this EHR's quality page and registry reports.")
@click.option(
    "--store", is_flag=True, help="Also write MeasureReports (summary and subject lists) to the registry."
)
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Also write the MeasureReports and their subject Lists as JSON files in this folder (needs --iss: the "
    "EHR the patients belong to; without --store nothing is kept in the deployment).",
)
def measures_run(
    year: int, engine: str, data_dir: str, iss: str | None, store: bool, out_dir: str | None
) -> None:
    """Run every measure and print each one's populations, rate and time."""
    from fhir_mappings.measures.logic import Period
    from fhir_mappings.measures.valuesets import ValueSetError, load_valuesets, site_library
    from smartapp.measures.files import write_resources
    from smartapp.measures.service import keep, registry_groups, report_resources, run, write_reports
    from smartapp.measures.valueset_load import valuesets_dir
    from smartapp.services import Services

    site = os.environ.get("TANDEM_MEASURE_VALUESETS", "").strip()
    folder = valuesets_dir(os.environ.get("TANDEM_VALUESETS_DIR", "").strip() or None)
    services: Services | None = None
    if out_dir is not None and not iss:
        click.echo(
            "tandem: --out needs --iss (the EHR the patients belong to: each is named by EHR and id)",
            err=True,
        )
        sys.exit(2)
    if iss and (out_dir is None or store):
        started = _services_or_exit()
        assert isinstance(started, Services)  # noqa: S101
        services = started
    try:
        library = site_library(folder)
    except ValueSetError as error:
        click.echo(f"tandem: TANDEM_VALUESETS_DIR: {error}", err=True)
        sys.exit(2)
    try:
        valuesets = load_valuesets(Path(site) if site else None, library=library)
        groups = registry_groups(services, iss) if services is not None and iss else None
        result = run(Path(data_dir), Period(year), engine, valuesets=valuesets, groups=groups)
    except ValueSetError as error:
        click.echo(f"tandem: TANDEM_MEASURE_VALUESETS: {error}", err=True)
        sys.exit(2)
    except TandemError as error:
        click.echo(f"tandem: {error.message}", err=True)
        sys.exit(2)
    for key, summary in result.summaries.items():
        t = summary.total
        rate = f"{t.rate:.1%}" if t.rate is not None else "no denominator"
        click.echo(f"{key}: initial population {t.initial_population}, denominator {t.denominator}, exclusions "
                   f"{t.exclusions}, exceptions {t.exceptions}, numerator {t.numerator}: {rate} "
                   f"({result.seconds[key]:.2f} s on {engine})")  # fmt: skip
        if summary.incomplete_valuesets:
            click.echo(f"  value sets not complete: {'; '.join(summary.incomplete_valuesets)}")
        if summary.valueset_versions:
            click.echo(
                f"  value sets used: {', '.join(v.rsplit('/', 1)[-1] for v in summary.valueset_versions)}"
            )
    # Not computed rather than computed from a partial list; the other measures' results stand (exit status 0).
    for key, sets in result.refused.items():
        click.echo(f"{key}: not computed, value sets missing or empty: {'; '.join(sets)}. Load a set with an OID "
                   f"with `tandem measures valuesets load FILE_OR_FOLDER` (into {folder}); a site's own codes with "
                   "TANDEM_MEASURE_VALUESETS.", err=True)  # fmt: skip
    if out_dir is not None and iss:
        try:
            written = write_resources(Path(out_dir), report_resources(iss, result))
        except (OSError, TandemError) as error:
            click.echo(f"tandem: the MeasureReports could not be written to {out_dir}: {error}", err=True)
            sys.exit(1)
        click.echo(f"{written} resources (MeasureReports and subject Lists) written to {out_dir}")
    if services is not None and iss:
        keep(services, iss, result)
        if store and services.registry is not None:
            click.echo(
                f"{write_reports(services.registry, iss, result)} resources written to the registry store"
            )


@measures.group("valuesets")
def measures_valuesets() -> None:
    """The measures' value sets: load newer expansions (VSAC, eCQI Resource Center), list what is used."""


@measures_valuesets.command("load")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--dir", "folder", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Where the measures read loaded sets (default: TANDEM_VALUESETS_DIR, else ./valuesets).")  # fmt: skip
def measures_valuesets_load(source: Path, folder: Path | None) -> None:
    """Load FHIR ValueSets with expansions: a Bundle, a folder of ValueSet JSON files, or NDJSON.

    Each set is kept by OID and version; the newest version is the one the measures use and older ones stay, so
    a past rate can be reproduced. The whole input is checked first: on any problem nothing is written."""
    from fhir_mappings.measures.valuesets import ValueSetError
    from smartapp.measures.valueset_load import load, valuesets_dir

    target = folder or valuesets_dir(os.environ.get("TANDEM_VALUESETS_DIR", "").strip() or None)
    try:
        report = load(source, target)
    except ValueSetError as error:
        click.echo(f"tandem: {error}", err=True)
        sys.exit(2)
    except OSError as error:
        click.echo(f"tandem: cannot write to {target}: {error.strerror or error}", err=True)
        sys.exit(2)
    for vs, what in report.loaded:
        click.echo(f"{vs.title or vs.name} ({vs.oid}) version {vs.version}, {vs.size} codes: {what}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{len(report.loaded)} value set(s) loaded into {target}")


@measures_valuesets.command("list")
@click.option("--dir", "folder", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="The loaded sets' folder (default: TANDEM_VALUESETS_DIR, else ./valuesets).")  # fmt: skip
def measures_valuesets_list(folder: Path | None) -> None:
    """Each set the measures require, with the version used and the older versions kept."""
    from fhir_mappings.measures.valuesets import ValueSetError, site_library
    from smartapp.measures.valueset_load import valuesets_dir

    target = folder or valuesets_dir(os.environ.get("TANDEM_VALUESETS_DIR", "").strip() or None)
    try:
        library = site_library(target)
    except ValueSetError as error:
        click.echo(f"tandem: {error}", err=True)
        sys.exit(2)
    missing = False
    for measure, oids in library.required.items():
        click.echo(f"{measure}:")
        for oid in oids:
            current = library.current(oid)
            if current is None or not current.size:
                missing = True
                click.echo(f"  {oid}: MISSING (load it with `tandem measures valuesets load`)")
                continue
            older = [v.version for v in library.versions(oid)[:-1]]
            where = f"loaded {current.loaded}" if current.loaded else "shipped with Tandem"
            click.echo(f"  {current.title} ({oid}) version {current.version}, {current.size} codes, {where}"
                       + (f"; older kept: {', '.join(older)}" if older else ""))  # fmt: skip
    if missing:
        sys.exit(3)


@main.group()
def registry() -> None:
    """Maintenance of the registry store."""


@registry.command("migrate-patients")
@click.option("--apply", is_flag=True, help="Write the changes (without it: a dry run that only counts).")
def migrate_patients(apply: bool) -> None:
    """Make registry references hold in a store with referential integrity (HAPI FHIR JPA, Google Cloud).

    Registry resources written before this release name the patient as `Patient/<EHR id>` and EHR
    practitioners and encounters as literal references, which such a store refuses. This writes one minimal
    registry Patient per (EHR issuer, patient id) and points every resource at it; EHR practitioners and
    encounters become logical references (identifier with the issuer). A dry run first; safe to run again."""
    from smartapp.registry_store import RegistryClient, migrate_references
    from smartapp.services import Services

    services = _services_or_exit()
    assert isinstance(services, Services)  # noqa: S101
    if not isinstance(services.registry, RegistryClient):
        click.echo("tandem: TANDEM_REGISTRY_URL is not set: there is no registry store to migrate", err=True)
        sys.exit(2)
    try:
        report = migrate_references(services.registry, apply=apply)
    except TandemError as error:
        click.echo(f"tandem: {error.message}", err=True)
        sys.exit(1)
    if apply:
        services.caseload.invalidate()
    total = sum(report.changed.values())
    detail = ", ".join(f"{n} {t}" for t, n in sorted(report.changed.items())) or "nothing to migrate"
    verb = "rewrote" if apply else "would rewrite"
    click.echo(f"{verb} {total} resource(s) for {report.patients} patient(s): {detail}")
    if report.without_issuer:
        waiting = ", ".join(f"{n} {t}" for t, n in sorted(report.without_issuer.items()))
        click.echo(
            f"not touched, no EHR issuer recorded ({waiting}): run `tandem registry migrate-issuer` first"
        )
    if report.conflicts:
        click.echo(f"{report.conflicts} resource(s) changed while migrating: run the command again")
        sys.exit(1)
    if not apply and total:
        click.echo("dry run: nothing was written; run again with --apply to write these changes")


@registry.command("migrate-issuer")
@click.option(
    "--iss", required=True, help="The registered issuer that resources without an issuer belong to."
)
@click.option("--dry-run", is_flag=True, help="Count what would change; write nothing.")
def migrate_issuer(iss: str, dry_run: bool) -> None:
    """Assign registry resources written before issuers were recorded (subject `Patient/<id>` only) to one EHR.

    Until this runs, such resources are shown to nobody: ids are unique only within one EHR, so a bare id cannot
    be trusted to name the right patient. Run it once per deployment that had a single EHR."""
    from smartapp.services import Services

    services = _services_or_exit()
    assert isinstance(services, Services)  # noqa: S101
    reg = services.registrations.get(iss)
    if reg is None:
        click.echo(f"tandem: {iss} is not in the registration file", err=True)
        sys.exit(2)
    try:
        counts = services.caseload.migrate_issuer(reg.iss, dry_run=dry_run)
    except TandemError as error:
        click.echo(f"tandem: {error.message}", err=True)
        sys.exit(1)
    verb = "would assign" if dry_run else "assigned"
    total = sum(counts.values())
    detail = ", ".join(f"{n} {t}" for t, n in sorted(counts.items())) or "nothing to migrate"
    click.echo(f"{verb} {total} resource(s) to {reg.label}: {detail}")


#: The settings `tandem check --registry` reads from the environment (the rest of Tandem's are not needed).
REGISTRY_CHECK_SETTINGS = ("TANDEM_REGISTRY_AUTH", "TANDEM_REGISTRY_TOKEN_URL", "TANDEM_REGISTRY_CLIENT_ID",
                           "TANDEM_REGISTRY_KEY_ID", "TANDEM_KEYS_FILE", "TANDEM_REGISTRY_SCOPES")  # fmt: skip


@main.command()
@click.option("--iss", default=None, help="The EHR's FHIR base URL (the iss it will launch with).")
@click.option(
    "--registry",
    "registry_url",
    default=None,
    help="A registry store's FHIR base URL: try every interaction Tandem relies on (writes throwaway resources "
    "tagged contract-check, then deletes them). Authentication from TANDEM_REGISTRY_AUTH and its settings.",
)
@click.option(
    "--vendor",
    type=click.Choice([v.value for v in Vendor]),
    default=None,
    help="Vendor profile for the scopes (default: from the registration file, else generic).",
)
@click.option(
    "--registrations",
    "registrations_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Registration file (default: TANDEM_REGISTRATIONS).",
)
@click.option("--timeout", default=15.0, show_default=True, type=float)
@click.option("--json", "as_json", is_flag=True, help="With --registry: the registry report as JSON.")
def check(iss: str | None, registry_url: str | None, vendor: str | None, registrations_path: str | None,
          timeout: float, as_json: bool) -> None:  # fmt: skip
    """Show what an EHR's FHIR server (--iss) or a registry store (--registry) supports that Tandem uses."""
    _configure_logging("ERROR")
    if not iss and not registry_url:
        raise click.UsageError("give --iss (an EHR) or --registry (a registry store), or both")
    if as_json and (iss or not registry_url):
        raise click.UsageError("--json is for --registry alone")
    failed = False
    if iss:
        failed = not _check_ehr(iss, vendor, registrations_path, timeout)
    if registry_url:
        if iss:
            click.echo("")
        failed = not _check_registry(registry_url, as_json, timeout) or failed
    if failed:
        sys.exit(1)


def _check_ehr(iss: str, vendor: str | None, registrations_path: str | None, timeout: float) -> bool:
    registration = None
    path = registrations_path or os.environ.get("TANDEM_REGISTRATIONS")
    try:
        if path:
            registration = load_registrations(path).get(iss)
        report = inspect_server(
            iss,
            registration=registration,
            vendor=Vendor(vendor) if vendor else (registration.vendor if registration else Vendor.GENERIC),
            timeout=timeout,
        )
    except TandemError as error:
        click.echo(f"tandem check: {iss}: {error.message}", err=True)
        return False
    if registration is not None:
        click.echo(
            f"Registration:       {registration.label} (client {registration.client_id}, {registration.auth})"
        )
    for line in report.lines():
        click.echo(line)
    return report.ok


def _check_registry(url: str, as_json: bool, timeout: float) -> bool:
    """`tandem check --registry`: the registry client exactly as Tandem builds it, from the registry settings."""
    from smartapp.config import RegistryAuth
    from smartapp.registry_check import run_registry_check
    from smartapp.services import registry_client

    environ = {name: os.environ[name] for name in REGISTRY_CHECK_SETTINGS if name in os.environ}
    try:
        settings = Settings.from_env(
            {**environ, "TANDEM_REGISTRY_URL": url, "TANDEM_HTTP_TIMEOUT": str(timeout)}
        )
        keys = KeyRing.load(settings.keys_file) if settings.keys_file else KeyRing.ephemeral()
        client = registry_client(settings, keys)
    except ConfigurationError as error:
        click.echo(f"tandem check: {error.message}", err=True)
        sys.exit(2)
    assert client is not None  # noqa: S101 - the URL is set above
    report = run_registry_check(
        client, backend_services=settings.registry_auth is RegistryAuth.BACKEND_SERVICES
    )
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        for line in report.lines():
            click.echo(line)
    return report.ok


@main.command()
@click.option("--site-folder", default=None, type=click.Path(file_okay=False),
              help="The licensed copies to check. Default: TANDEM_SITE_INSTRUMENTS.")  # fmt: skip
def instruments(site_folder: str | None) -> None:
    """List the instruments: licence class, and whether a site-supplied one has the practice's copy loaded."""
    from fhir_mappings.screening.instruments import InstrumentError, load_catalogue

    try:
        folder = site_folder or Settings.from_env().site_instruments
        catalogue = load_catalogue(Path(folder) if folder else None)
    except (InstrumentError, ConfigurationError) as error:
        click.echo(f"tandem: {error}", err=True)
        sys.exit(2)
    click.echo(f"{'key':18} {'name':18} {'licence':14} form")
    for instrument in catalogue:
        if instrument.licence_class == "site-supplied":
            form = ("site copy loaded: item by item" if instrument.site_copy_loaded
                    else "no site copy: total and safety items entered")  # fmt: skip
        elif instrument.licence_class == "score-only":
            form = "scores entered (no items)"
        else:
            form = "item by item (shipped)"
        click.echo(f"{instrument.key:18} {instrument.name:18} {instrument.licence_class:14} {form}")
    click.echo(f"\nSite copies from: {folder or '(none: TANDEM_SITE_INSTRUMENTS is not set)'}")


@main.group()
def keys() -> None:
    """Tandem's signing keys (private_key_jwt and backend services)."""


@keys.command("generate")
@click.option(
    "--out", "out_path", default="tandem-keys.json", show_default=True, type=click.Path(dir_okay=False)
)
def keys_generate(out_path: str) -> None:
    """Create an RS384 and an ES384 key pair in a new private JWKS file (mode 600)."""
    path = Path(out_path)
    if path.exists():
        click.echo(
            f"tandem keys: {path} exists; refusing to overwrite keys (rotate by writing a new file)", err=True
        )
        sys.exit(1)
    key_set = generate_key_set()
    write_key_set(path, key_set)
    click.echo(f"Wrote {path} with keys: " + ", ".join(f"{k['kid']} ({k['alg']})" for k in key_set["keys"]))
    click.echo("Set TANDEM_KEYS_FILE to this path. Public keys are served at /.well-known/jwks.json.")


@keys.command("public")
@click.option("--keys-file", default=None, type=click.Path(dir_okay=False), help="Default: TANDEM_KEYS_FILE.")
def keys_public(keys_file: str | None) -> None:
    """Print the public JWKS (what EHRs fetch from /.well-known/jwks.json)."""
    path = keys_file or os.environ.get("TANDEM_KEYS_FILE")
    if not path:
        click.echo("tandem keys: give --keys-file or set TANDEM_KEYS_FILE", err=True)
        sys.exit(2)
    try:
        ring = KeyRing.load(path)
    except ConfigurationError as error:
        click.echo(f"tandem keys: {error.message}", err=True)
        sys.exit(1)
    click.echo(json.dumps(ring.public_jwks(), indent=2))


DEMO_ENTRY_POINTS = "tandem.demo"
INSTALL_SANDBOX = "python3 -m pip install -e '.[sandbox]' (from a clone of the Tandem repository)"


def _demo_world() -> Any:
    """The sandbox's world, found through its entry point: smartapp never imports the sandbox."""
    from importlib.metadata import entry_points

    found = entry_points(group=DEMO_ENTRY_POINTS)
    if not found:
        click.echo(f"tandem demo needs the sandbox, which is not installed: {INSTALL_SANDBOX}", err=True)
        sys.exit(2)
    try:
        return next(iter(found)).load()
    except ImportError as error:  # the entry point is declared but the sandbox or its extra is missing
        click.echo(
            f"tandem demo needs the sandbox extra ({error.name or error}): {INSTALL_SANDBOX}", err=True
        )
        sys.exit(2)


#: What `tandem demo` keeps off its console: warnings that are the demo working as designed, not problems (the
#: README: "the console shows only the URLs and real problems"). (logger, start of the message), as data.
DEMO_NOISE: tuple[tuple[str, str], ...] = (
    ("smartapp.services", "TANDEM_REDIS_URL is not set"),  # the demo runs on the embedded store by design
    ("smartapp.services", "TANDEM_SECRET_KEY is not set"),  # and on throwaway keys
    # The demo's scenario patients (and anyone trying item 9) raise safety follow-ups: shown on Tandem's pages,
    # where the care team works them; on the console they only alarm whoever started the demo.
    ("smartapp.screening.service", "screening recorded with a safety flag"),
    ("smartapp.selfreport.service", "patient-reported screening with a safety flag"),
)


class DemoNoise(logging.Filter):
    """Drops the demo's own noise (DEMO_NOISE); every other warning and error still reaches the console."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(
            record.name == name and str(record.msg).startswith(start) for name, start in DEMO_NOISE
        )


def quiet_demo_console() -> None:
    """The demo's console: no access lines (the development server logs each request to `werkzeug` at INFO),
    none of DEMO_NOISE; warnings and errors that are real problems as before."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(DemoNoise())


@main.command()
@click.option(
    "--size", default=50, show_default=True, type=click.IntRange(1, 5000), help="Synthetic patients."
)
@click.option("--seed", default=7, show_default=True, type=int)
@click.option(
    "--port", default=8000, show_default=True, type=int, help="Tandem's port (http://localhost:PORT)."
)
@click.option("--sandbox-port", default=9000, show_default=True, type=int, help="The sandbox EHR's port.")
@click.option(
    "--registry-server",
    type=click.Choice(["sekmet", "hapi"]),
    default="sekmet",
    show_default=True,
    help="The registry store: sekmet-fhir (light, no Java) or Tandem's HAPI FHIR JPA server "
    "(needs `scripts/hapi.sh build` first: a JDK 17 and Maven).",
)
def demo(size: int, seed: int, port: int, sandbox_port: int, registry_server: str) -> None:
    """Start the whole demo: local FHIR servers, the sandbox EHR with synthetic patients, and Tandem."""
    _configure_logging("WARNING")
    quiet_demo_console()
    SandboxWorld = _demo_world()  # noqa: N806 - a class found through an entry point
    import signal
    import threading

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, or a supervisor stopping the demo
        signal.signal(signum, lambda *_: stop.set())
    world = SandboxWorld(
        size=size, seed=seed, tandem_port=port, sandbox_port=sandbox_port, seed_caseload=True,
        registry_server=registry_server, quiet=True,  # no line per request: the URLs and real problems only
    )  # fmt: skip
    click.echo(f"Starting the sandbox ({size} synthetic patients)…")
    try:
        world.start()
    except (RuntimeError, OSError, TandemError) as error:
        click.echo(f"tandem demo: could not start: {error}", err=True)
        sys.exit(1)
    click.echo(
        f"\nOpen the sandbox EHR's launcher: {world.sandbox_url}/\n"
        "  Care manager's week: sign in as Teresa Lindqvist, press 'Open worklist'.\n"
        "  Case review: sign in as Irene Castellanos, open the worklist, then 'Psychiatric case review'.\n"
        "  HealthySteps: sign in as Amara Diallo, press 'Open HealthySteps worklist'.\n"
        "  Serious mental illness: sign in as Rosa Delgado, press 'Open worklist', choose that program.\n"
        "  Quality measures: from any worklist, 'Quality measures' (the EHR's population, measured at start-up).\n"
        "  A chart: pick a patient (the scenario patients are listed first); Tandem's CDS cards show beside it.\n"
        "  The patient portal: pick a patient, press 'Open as the patient' (they answer their own PHQ-9).\n"
        f"Tandem itself runs at {world.tandem_url}/ (it is opened through the launcher).\n"
    )
    click.echo("Press Ctrl-C to stop everything.")
    try:
        while not stop.wait(0.5):
            pass
    finally:
        click.echo("Stopping…")
        world.stop()


if __name__ == "__main__":
    main()
