"""tests/integration/test_dyad.py with the registry store on HAPI FHIR JPA (see conftest.py)."""

from tests.integration.test_dyad import *  # noqa: F403
