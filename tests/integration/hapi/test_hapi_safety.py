"""tests/integration/test_safety.py with the registry store on HAPI FHIR JPA (see conftest.py)."""

from tests.integration.test_safety import *  # noqa: F403
