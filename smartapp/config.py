"""Settings from `TANDEM_*` environment variables, validated at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fhir_mappings.common.gestation import parse_codes
from fhir_mappings.measures.valuesets import ValueSetError, load_valuesets, site_library
from launch.errors import ConfigurationError

PREFIX = "TANDEM_"
#: The orders of a typed date (TANDEM_DATE_ORDER): month, day, year as a deployment's patients write them.
DATE_ORDERS = ("MDY", "DMY", "YMD")


class RegistryAuth(StrEnum):
    NONE = "none"
    BACKEND_SERVICES = "backend-services"


#: Without TANDEM_VALUESETS_DIR: a `valuesets` folder in the directory Tandem runs from.
DEFAULT_VALUESETS_DIR = "valuesets"


@dataclass(frozen=True)
class Settings:
    """Every setting, with its environment variable `TANDEM_<NAME>` (see the README's reference)."""

    env: str = "development"
    secret_key: str | None = None
    redis_url: str | None = None
    registrations: str | None = None
    keys_file: str | None = None
    base_url: str | None = None
    registry_url: str | None = None
    registry_auth: RegistryAuth = RegistryAuth.NONE
    registry_client_id: str | None = None
    registry_token_url: str | None = None
    registry_key_id: str | None = None
    registry_scopes: str = "system/*.cruds"
    http_timeout: float = 15.0
    discovery_ttl: int = 3600
    session_ttl: int = 12 * 3600
    log_level: str = "INFO"
    #: Worklist flag "no recent contact" after this many weeks without a contact.
    no_contact_weeks: int = 4
    #: First wait before a failed write-back is retried (doubling up to an hour).
    retry_seconds: int = 30
    #: A folder of the practice's licensed copies of site-supplied instruments (`<key>.json`, e.g. epds.json).
    site_instruments: str | None = None
    #: The site's psychiatric consultant, preselected at enrolment (a reference such as Practitioner/123).
    default_consultant: str | None = None
    #: The time zone dates and times are shown in, and what "today" means (an IANA name).
    time_zone: str = "UTC"
    #: How often the worker refreshes enrolled patients' EHR scores per issuer with backend services (0: never).
    ehr_refresh_minutes: int = 60
    #: The site's own HealthySteps visit schedule (a JSON file like fhir_mappings/data/schedules/healthysteps.json).
    schedule: str | None = None
    #: Codes (`system|code,…`) under which the site's EHR records a child's gestational age at birth, for
    #: prematurity correction; none is shipped (no code is confirmed). Tandem's own record is always read.
    gestational_age_codes: str | None = None
    #: The site's value-set expansions for the quality measures (VSAC, UMLS licence): a JSON file shaped like
    #: fhir_mappings/data/measures/valuesets.json; the sets it names replace the shipped ones (for a site's own
    #: codes, such as deliveries; sets with an OID load with `tandem measures valuesets load`).
    measure_valuesets: str | None = None
    #: The folder of value-set expansions loaded with `tandem measures valuesets load` (every version kept; the
    #: newest is used). Default: `valuesets` in the directory Tandem runs from; without it, the shipped official
    #: expansions of CMS2 and CMS159.
    valuesets_dir: str | None = None
    #: The Spark master for `--engine spark` (default local mode, `local[2]`); read by smartapp/measures/engines.py.
    spark_master: str | None = None
    #: The address Spark's driver listens on (default in local mode: 127.0.0.1, never the network).
    spark_bind_address: str | None = None
    #: How long a launch form's signed binding lets a form posted after its launch ended be kept (parked), in
    #: hours (a working day by default).
    form_binding_hours: int = 12
    #: How long a parked form (posted after its launch ended) waits for the next launch, in days. A parked
    #: screening with a safety flag has its safety Task in the registry (or queued) whatever this says.
    parked_days: int = 14
    #: The order a patient types their date of birth in on a questionnaire link: MDY (the US: month / day / year,
    #: the default), DMY or YMD.
    date_order: str = "MDY"

    @property
    def production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, allowed_extra: set[str] | None = None
                 ) -> Settings:  # fmt: skip
        environ = os.environ if environ is None else environ
        known = {PREFIX + f.name.upper(): f for f in fields(cls)}
        values: dict[str, object] = {}
        problems = []
        for name, value in environ.items():
            if not name.startswith(PREFIX):
                continue
            spec = known.get(name)
            if spec is None:
                if name not in (allowed_extra or set()) and not name.startswith(PREFIX + "SECRET_"):
                    problems.append(f"{name}: unknown setting (check the spelling; see the README)")
                continue
            value = value.strip()
            if value == "":
                continue
            try:
                if spec.type in ("float",):
                    values[spec.name] = float(value)
                elif spec.type in ("int",):
                    values[spec.name] = int(value)
                elif spec.name == "registry_auth":
                    values[spec.name] = RegistryAuth(value)
                else:
                    values[spec.name] = value
            except ValueError:
                expected = {"float": "a number", "int": "a whole number"}.get(str(spec.type), "")
                if spec.name == "registry_auth":
                    expected = "one of " + ", ".join(a.value for a in RegistryAuth)
                problems.append(f"{name}: must be {expected}, got {value!r}")
        if problems:
            raise ConfigurationError("invalid environment:\n  " + "\n  ".join(problems))
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        problems = []
        if self.env not in ("development", "production"):
            problems.append("TANDEM_ENV: must be 'development' or 'production'")
        if self.base_url:
            parts = urlsplit(self.base_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                problems.append("TANDEM_BASE_URL: must be an absolute URL such as https://tandem.example.org")
        if self.registry_url and urlsplit(self.registry_url).scheme not in ("http", "https"):
            problems.append("TANDEM_REGISTRY_URL: must be an absolute http(s) URL")
        if self.registry_auth is RegistryAuth.BACKEND_SERVICES:
            for name in ("registry_client_id", "registry_token_url", "registry_key_id"):
                if not getattr(self, name):
                    problems.append(
                        f"TANDEM_{name.upper()}: required when TANDEM_REGISTRY_AUTH=backend-services"
                    )
        if not 1 <= self.no_contact_weeks <= 52:
            problems.append("TANDEM_NO_CONTACT_WEEKS: must be between 1 and 52")
        if not 0 <= self.ehr_refresh_minutes <= 7 * 24 * 60:
            problems.append("TANDEM_EHR_REFRESH_MINUTES: must be between 0 (never) and 10080 (a week)")
        if not 1 <= self.retry_seconds <= 3600:
            problems.append("TANDEM_RETRY_SECONDS: must be between 1 and 3600")
        if not 1 <= self.form_binding_hours <= 7 * 24:
            problems.append("TANDEM_FORM_BINDING_HOURS: must be between 1 and 168 (a week)")
        if not 1 <= self.parked_days <= 90:
            problems.append("TANDEM_PARKED_DAYS: must be between 1 and 90")
        if self.date_order not in DATE_ORDERS:
            problems.append("TANDEM_DATE_ORDER: must be one of " + ", ".join(DATE_ORDERS))
        if self.default_consultant and not re.fullmatch(
            r"Practitioner/[A-Za-z0-9\-.]{1,64}", self.default_consultant
        ):
            problems.append(
                "TANDEM_DEFAULT_CONSULTANT: must be a Practitioner reference such as Practitioner/123"
            )
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(
                f"TANDEM_TIME_ZONE: unknown time zone {self.time_zone!r} (use an IANA name such as America/Chicago)"
            )
        if parse_codes(self.gestational_age_codes) is None:
            problems.append("TANDEM_GESTATIONAL_AGE_CODES: must be system|code pairs separated by commas, such as "
                            "https://ehr.example.org/codes|GA-AT-BIRTH")  # fmt: skip
        if self.measure_valuesets:
            try:
                load_valuesets(Path(self.measure_valuesets))
            except (ValueSetError, OSError) as exc:
                problems.append(f"TANDEM_MEASURE_VALUESETS: {exc}")
        try:
            site_library(Path(self.valuesets_dir or DEFAULT_VALUESETS_DIR))
        except (ValueSetError, OSError) as exc:
            problems.append(f"TANDEM_VALUESETS_DIR: {exc}")
        if self.http_timeout <= 0:
            problems.append("TANDEM_HTTP_TIMEOUT: must be positive")
        if self.production:
            required = ("secret_key", "redis_url", "registrations", "base_url", "registry_url", "keys_file")
            problems += [
                f"TANDEM_{name.upper()}: required in production"
                for name in required
                if not getattr(self, name)
            ]
            if self.secret_key and len(self.secret_key) < 32:
                problems.append("TANDEM_SECRET_KEY: must be at least 32 characters")
            if self.base_url and urlsplit(self.base_url).scheme != "https":
                problems.append("TANDEM_BASE_URL: must use https in production")
        if problems:
            raise ConfigurationError("invalid configuration:\n  " + "\n  ".join(problems))
