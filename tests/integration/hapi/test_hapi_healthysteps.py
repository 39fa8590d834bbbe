"""tests/integration/test_healthysteps.py with the registry store on HAPI FHIR JPA (see conftest.py)."""

from tests.integration.test_healthysteps import *  # noqa: F403
