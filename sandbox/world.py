"""The whole sandbox on one machine: EHR FHIR server, registry store, sandbox EHR and Tandem."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from launch.keys import KeyRing, generate_key_set, write_key_set
from sandbox import SITE_INSTRUMENTS, SITE_VALUESETS

from .app import SandboxConfig, backend_client_id, create_sandbox_app
from .data import BH_GROUP_ID, generate
from .healthysteps_seed import EHR_GESTATION_CODE
from .processes import FhirServer, ThreadedApp, free_port, load_cohort, wait_until_up

log = logging.getLogger(__name__)

TANDEM_CLIENT_ID = "tandem-sandbox"
REGISTRY_CLIENT_ID = "tandem-registry"
#: The demo's population for the quality measures (beside the registry's patients, in the EHR's Group).
DEMO_MEASURE_PATIENTS = 400


@dataclass
class SandboxWorld:
    size: int = 50
    seed: int = 7
    tandem_port: int = field(default_factory=free_port)
    sandbox_port: int = field(default_factory=free_port)
    ehr_port: int | None = None
    registry_port: int | None = None
    redis_url: str | None = None
    workdir: Path | None = None
    lifetimes: dict[str, int] | None = None
    start_tandem: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    #: Seed a running program in the registry (the demo): enrolments, contacts, reviews, safety Tasks.
    seed_caseload: bool = False
    #: Patients the seeding leaves un-enrolled (tests enrol them themselves).
    seed_skip: frozenset[str] = frozenset()
    #: No per-request lines on the console (the demo: a person needs the URLs, not the traffic).
    quiet: bool = False
    #: The registry store: "sekmet" (the light peer, SQLite, backend-services tokens) or "hapi" (HAPI FHIR JPA
    #: with its default settings, referential integrity on; no authentication of its own, as behind a proxy).
    registry_server: str = "sekmet"

    def __post_init__(self) -> None:
        self._own_workdir = self.workdir is None
        self.workdir = (
            Path(tempfile.mkdtemp(prefix="tandem-sandbox-")) if self.workdir is None else self.workdir
        )
        self.tandem_url = f"http://localhost:{self.tandem_port}"  # another site than the sandbox's 127.0.0.1
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.components: list[Any] = []
        self.environ: dict[str, str] = {}
        self.sandbox_app: Any = None
        self.tandem_app: Any = None

    def iss(self, mode: str) -> str:
        return f"{self.sandbox_url}/{mode}/fhir"

    def registrations_toml(self, backend_key_id: str | None = None) -> str:
        """Every sandbox EHR, each with a backend services client when a key is given (the generic EHR exports
        its registry Group in bulk; the Epic-like and Oracle-like ones are read per patient)."""
        blocks = []
        for mode in ("generic", "epic", "oracle"):
            block = (
                f'[[issuer]]\niss = "{self.iss(mode)}"\nname = "Sandbox EHR ({mode})"\n'
                f'client_id = "{TANDEM_CLIENT_ID}"\nvendor = "{mode}"\nauth = "public"\n'
            )
            if backend_key_id:
                block += f'[issuer.backend]\nclient_id = "{backend_client_id(mode)}"\nkey_id = "{backend_key_id}"\n'
                if mode == "generic":
                    block += f'group_id = "{BH_GROUP_ID}"\n'
            # Each sandbox EHR calls Tandem's CDS service, signing as its FHIR base URL with the sandbox's key.
            block += f'[issuer.cds]\njwks_urls = ["{self.sandbox_url}/cds/jwks.json"]\n'
            blocks.append(block)
        return "\n".join(blocks)

    def start(self) -> SandboxWorld:
        from smartapp import create_app
        from smartapp.config import Settings
        from smartapp.services import publish_questionnaires

        if self.workdir is None:  # set in __post_init__
            raise RuntimeError("no work directory")
        try:
            keys_path = self.workdir / "tandem-keys.json"
            if not keys_path.exists():
                write_key_set(keys_path, generate_key_set())
            ring = KeyRing.load(keys_path)
            rs384 = next(kid for kid in sorted(ring.kids) if "rs384" in kid)

            self.ehr = FhirServer(self.workdir / "ehr-fhir", self.ehr_port).start()
            self.components.append(self.ehr)
            self.cohort = generate(self.size, self.seed)
            if self.seed_caseload:  # the demo: HealthySteps families with set ages and histories
                from .healthysteps_seed import add_families
                from .smi_seed import add_smi_patients

                add_families(self.cohort, date.today())
                add_smi_patients(self.cohort, date.today())
                from .review_medications import add_psychotropics

                add_psychotropics(self.cohort, date.today())
                from .measure_population import add_to_cohort

                add_to_cohort(self.cohort, DEMO_MEASURE_PATIENTS, date.today().year)
            loaded = load_cohort(self.ehr.base_url, self.cohort.transaction_bundles())
            log.info("loaded %d synthetic resources into the EHR's FHIR server", loaded)

            if self.registry_server == "hapi":
                from .processes import HapiServer

                self.registry = HapiServer(self.workdir / "registry-hapi", self.registry_port).start()
                registry_env = {"TANDEM_REGISTRY_URL": self.registry.base_url, "TANDEM_REGISTRY_AUTH": "none"}
            else:
                self.registry = FhirServer(
                    self.workdir / "registry-fhir",
                    self.registry_port,
                    smart_clients=[
                        {
                            "client_id": REGISTRY_CLIENT_ID,
                            "jwks": ring.public_jwks(),
                            "scopes": "system/*.cruds",
                        }
                    ],
                ).start()
                registry_env = {
                    "TANDEM_REGISTRY_URL": self.registry.base_url,
                    "TANDEM_REGISTRY_AUTH": "backend-services",
                    "TANDEM_REGISTRY_CLIENT_ID": REGISTRY_CLIENT_ID,
                    "TANDEM_REGISTRY_TOKEN_URL": self.registry.token_url,
                    "TANDEM_REGISTRY_KEY_ID": rs384,
                    "TANDEM_REGISTRY_SCOPES": "system/*.cruds",
                }
            self.components.append(self.registry)

            sandbox_config = SandboxConfig(public_url=self.sandbox_url, fhir_url=self.ehr.base_url,
                                           tandem_url=self.tandem_url, client_id=TANDEM_CLIENT_ID,
                                           backend_jwks=ring.public_jwks())  # fmt: skip
            if self.lifetimes:
                sandbox_config.lifetimes.update(self.lifetimes)
            self.sandbox_app = create_sandbox_app(sandbox_config)
            self.components.append(ThreadedApp(self.sandbox_app, self.sandbox_port, quiet=True).start())

            registrations = self.workdir / "registrations.toml"
            registrations.write_text(self.registrations_toml(rs384), encoding="utf-8")
            self.environ = {
                "TANDEM_REGISTRATIONS": str(registrations),
                "TANDEM_KEYS_FILE": str(keys_path),
                "TANDEM_BASE_URL": self.tandem_url,
                **registry_env,
                # The demo's placeholder stands in for the practice's licensed EPDS (no EPDS wording in it).
                "TANDEM_SITE_INSTRUMENTS": str(SITE_INSTRUMENTS),
                # Where the sandbox EHR records a gestational age at birth (prematurity correction).
                "TANDEM_GESTATIONAL_AGE_CODES": "|".join(EHR_GESTATION_CODE),
                # The sandbox EHR's delivery code (postpartum screening per delivery).
                "TANDEM_MEASURE_VALUESETS": str(SITE_VALUESETS),
                **({"TANDEM_REDIS_URL": self.redis_url} if self.redis_url else {}),
                **self.extra_env,
            }
            if self.start_tandem:
                self.tandem_app = create_app(Settings.from_env(self.environ), environ=self.environ)
                publish_questionnaires(self.tandem_app.extensions["tandem"])
                self.components.append(
                    ThreadedApp(self.tandem_app, self.tandem_port, quiet=self.quiet).start()
                )
                wait_until_up(f"{self.tandem_url}/healthz")
                if self.seed_caseload:
                    from .caseload_seed import seed_caseload
                    from .smi_seed import seed_smi

                    sandbox_config.labels.update(seed_smi(
                        self.cohort, self.tandem_app.extensions["tandem"], self.iss("generic"), today=date.today()))  # fmt: skip

                    sandbox_config.labels.update(seed_caseload(
                        self.cohort, self.tandem_app.extensions["tandem"], self.iss("generic"), today=date.today(),
                        seed=self.seed, skip=self.seed_skip))  # fmt: skip
                    from .healthysteps_seed import seed_healthysteps

                    sandbox_config.labels.update(seed_healthysteps(
                        self.cohort, self.tandem_app.extensions["tandem"], self.iss("generic"), today=date.today()))  # fmt: skip
                    from .measure_population import seed_measures

                    seed_measures(self.tandem_app.extensions["tandem"], self.iss("generic"), self.workdir / "measures",
                                  date.today().year)  # fmt: skip
            wait_until_up(f"{self.sandbox_url}/generic/fhir/.well-known/smart-configuration")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for component in reversed(self.components):
            try:
                component.stop()
            except Exception:  # noqa: BLE001 - keep stopping the others
                log.exception("stopping %s failed", type(component).__name__)
        self.components.clear()
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SandboxWorld:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def summary(self) -> str:
        return json.dumps({"launcher": self.sandbox_url, "tandem": self.tandem_url}, indent=2)
