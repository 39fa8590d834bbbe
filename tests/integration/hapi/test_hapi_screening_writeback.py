"""tests/integration/test_screening_writeback.py with the registry store on HAPI FHIR JPA (see conftest.py)."""

from tests.integration.test_screening_writeback import *  # noqa: F403
