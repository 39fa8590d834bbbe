"""tests/integration/test_two_issuers.py with the registry store on HAPI FHIR JPA (see conftest.py)."""

from tests.integration.test_two_issuers import *  # noqa: F403
