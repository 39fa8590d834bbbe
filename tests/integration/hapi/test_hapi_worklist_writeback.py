"""tests/integration/test_worklist_writeback.py with the registry store on HAPI FHIR JPA (see conftest.py)."""

from tests.integration.test_worklist_writeback import *  # noqa: F403
