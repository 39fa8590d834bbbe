"""Wires the framework-neutral pieces (store, transport, discovery, OAuth, sessions, FHIR clients) together."""

from __future__ import annotations

import functools
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fhir_mappings.common.gestation import parse_codes
from fhir_mappings.healthysteps.program import HEALTHYSTEPS_PROGRAM
from fhir_mappings.measures.valuesets import ValueSet, load_valuesets, site_library
from fhir_mappings.screening.instruments import CATALOGUE, Catalogue, InstrumentError, load_catalogue
from fhir_mappings.screening.schedule import HEALTHYSTEPS, Schedule, ScheduleError, load_schedule
from launch.backend import BackendServicesAuth
from launch.discovery import Discovery
from launch.errors import ConfigurationError, TandemError
from launch.fhir import FHIRClient
from launch.flow import LaunchFlow
from launch.keys import KeyRing
from launch.oauth import OAuthClient
from launch.registrations import Registrations, load_registrations
from launch.sessions import LaunchSession, SessionStore, SessionTokens
from launch.store import EmbeddedStore, KeyValueStore, RedisStore
from launch.transport import HttpTransport
from smartapp.caseload.ehr_scores import EhrScores
from smartapp.caseload.ready import ReadyRows
from smartapp.caseload.refresh_jobs import ThreadRefresher
from smartapp.caseload.service import CaseloadService
from smartapp.config import DEFAULT_VALUESETS_DIR, RegistryAuth, Settings
from smartapp.dyad.service import CaregiverService
from smartapp.healthysteps.gestation import GestationService
from smartapp.healthysteps.ready import HealthyStepsReady
from smartapp.healthysteps.service import HealthyStepsService
from smartapp.registry_store import RegistryClient
from smartapp.screening.service import ScreeningService
from smartapp.screening.writebacks import RQWritebacks, ThreadWritebacks, WritebackQueue
from smartapp.smi.medical import EhrMedical

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    secret_key: str
    catalogue: Catalogue
    store: KeyValueStore
    keys: KeyRing
    registrations: Registrations
    transport: HttpTransport
    discovery: Discovery
    oauth: OAuthClient
    sessions: SessionStore
    registry: FHIRClient | None
    screenings: ScreeningService
    caseload: CaseloadService
    ehr_scores: EhrScores
    writebacks: WritebackQueue
    caregivers: CaregiverService
    schedule: Schedule
    healthysteps: HealthyStepsService
    gestation: GestationService
    #: The EHR's medical data of SMI patients (vitals, labs, antipsychotics), read at chart opens and by the worker.
    ehr_medical: EhrMedical
    #: The quality measures' value sets: the shipped ones with the site's expansions (TANDEM_MEASURE_VALUESETS).
    measure_valuesets: dict[str, ValueSet]

    @functools.cached_property
    def ready(self) -> ReadyRows:
        """The worklist's ready rows (kept per patient in the store, read per page), one per process."""
        return ReadyRows(self.store, self.caseload, self.ehr_scores, self.ehr_medical,
                         no_contact_weeks=self.settings.no_contact_weeks)  # fmt: skip

    @functools.cached_property
    def hs_ready(self) -> HealthyStepsReady:
        """The HealthySteps worklist's ready rows, one per process."""
        return HealthyStepsReady(self.store, self.healthysteps, self.caseload, self.ehr_scores, self.schedule)

    @property
    def launch_flow(self) -> LaunchFlow:
        """The SMART launch's two steps over this deployment's registrations, discovery, tokens and sessions."""
        return LaunchFlow(self.registrations, self.discovery, self.oauth, self.sessions)

    def ehr_client(self, session: LaunchSession) -> FHIRClient:
        """A FHIR client for the EHR with the launch's token (refreshed as needed)."""
        tokens = SessionTokens(self.sessions, session, self.oauth, self.discovery, self.registrations)
        return FHIRClient(session.iss, self.transport, tokens, name="EHR")


def measure_valuesets(settings: Settings) -> dict[str, ValueSet]:
    """The measures' value sets: the shipped official expansions with the site's loaded versions
    (TANDEM_VALUESETS_DIR, the newest of each set used), and a hand-made site file (TANDEM_MEASURE_VALUESETS) on
    top."""
    library = site_library(Path(settings.valuesets_dir or DEFAULT_VALUESETS_DIR))
    site_file = Path(settings.measure_valuesets) if settings.measure_valuesets else None
    return load_valuesets(site_file, library=library)


def publish_questionnaires(services: Services) -> None:
    """Publish the instrument Questionnaires to the registry store at start-up; if it cannot be reached now,
    the same happens before the first screening is saved."""
    try:
        services.screenings.publish_questionnaires()
    except TandemError as error:
        log.warning(
            "could not publish the Questionnaires yet (%s); will retry on the first screening", error.message
        )


def registry_client(settings: Settings, keys: KeyRing) -> RegistryClient | None:
    """The registry store's client from the settings (backend services when TANDEM_REGISTRY_AUTH asks for it);
    None without TANDEM_REGISTRY_URL. Used by the app and by `tandem check --registry`."""
    if not settings.registry_url:
        return None
    auth = None
    if settings.registry_auth is RegistryAuth.BACKEND_SERVICES:
        assert settings.registry_token_url and settings.registry_client_id and settings.registry_key_id  # noqa: S101
        auth = BackendServicesAuth(
            HttpTransport(timeout=settings.http_timeout),
            token_url=settings.registry_token_url,
            client_id=settings.registry_client_id,
            signing_key=keys.get(settings.registry_key_id),
            scopes=settings.registry_scopes.split(),
        )
    return RegistryClient(
        settings.registry_url, HttpTransport(timeout=settings.http_timeout), auth, name="registry"
    )


def build_services(settings: Settings, environ: Mapping[str, str] | None = None) -> Services:
    """Everything the app needs, or a ConfigurationError that names what is wrong."""
    environ = os.environ if environ is None else environ
    try:
        # Without site copies the catalogue is the shipped one, already read and checked at import.
        catalogue = (
            load_catalogue(Path(settings.site_instruments)) if settings.site_instruments else CATALOGUE
        )
    except InstrumentError as error:
        raise ConfigurationError(f"TANDEM_SITE_INSTRUMENTS: {error}") from None
    try:
        schedule = load_schedule(Path(settings.schedule), catalogue) if settings.schedule else HEALTHYSTEPS
    except ScheduleError as error:
        raise ConfigurationError(f"TANDEM_SCHEDULE: {error}") from None
    if settings.redis_url:
        store: KeyValueStore = RedisStore(settings.redis_url)
    else:
        store = EmbeddedStore()
        log.warning(
            "TANDEM_REDIS_URL is not set: using the embedded in-process store (single-process development only)"
        )

    if settings.keys_file:
        keys = KeyRing.load(settings.keys_file)
    else:
        keys = KeyRing.ephemeral()
        log.warning("TANDEM_KEYS_FILE is not set: generated throwaway signing keys (development only)")

    if settings.registrations:
        registrations = load_registrations(settings.registrations, key_ids=keys.kids, environ=environ)
    else:
        registrations = Registrations([])
        log.warning("TANDEM_REGISTRATIONS is not set: no EHR is trusted, every launch will be refused")

    secret_key = settings.secret_key or secrets.token_urlsafe(32)
    if not settings.secret_key:
        log.warning("TANDEM_SECRET_KEY is not set: generated one for this process (development only)")

    transport = HttpTransport(timeout=settings.http_timeout)
    discovery = Discovery(transport, store, ttl_seconds=settings.discovery_ttl)
    registry = registry_client(settings, keys)
    if registry is None:
        log.warning("TANDEM_REGISTRY_URL is not set: no registry store (development only)")

    writebacks: WritebackQueue = (
        RQWritebacks(settings.redis_url) if settings.redis_url else ThreadWritebacks()
    )
    caseload = CaseloadService(store, registry)
    services = Services(
        settings=settings,
        secret_key=secret_key,
        catalogue=catalogue,
        store=store,
        keys=keys,
        registrations=registrations,
        transport=transport,
        discovery=discovery,
        oauth=OAuthClient(transport, keys, discovery, environ),
        sessions=SessionStore(store, session_ttl=settings.session_ttl),
        registry=registry,
        screenings=ScreeningService(store, registry, catalogue, retry_seconds=settings.retry_seconds),
        caseload=caseload,
        ehr_scores=EhrScores(store),
        writebacks=writebacks,
        caregivers=CaregiverService(registry),
        schedule=schedule,
        healthysteps=HealthyStepsService(HEALTHYSTEPS_PROGRAM, registry, caseload, catalogue),
        gestation=GestationService(registry, parse_codes(settings.gestational_age_codes) or ()),
        ehr_medical=EhrMedical(store),
        measure_valuesets=measure_valuesets(settings),
    )
    if isinstance(writebacks, ThreadWritebacks):
        writebacks.start(services)
        ThreadRefresher(services).start()
    return services
