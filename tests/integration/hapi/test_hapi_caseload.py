"""tests/integration/test_caseload.py with the registry store on HAPI FHIR JPA (see conftest.py)."""

from tests.integration.test_caseload import *  # noqa: F403
