"""tests/integration/test_measures.py with the registry store on HAPI FHIR JPA (see conftest.py)."""

from tests.integration.test_measures import *  # noqa: F403
