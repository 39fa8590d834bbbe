"""tests/integration/test_self_report.py with the registry store on HAPI FHIR JPA (see conftest.py)."""

from tests.integration.test_self_report import *  # noqa: F403
