"""tests/integration/test_cds_hooks.py with the registry store on HAPI FHIR JPA (see conftest.py)."""

from tests.integration.test_cds_hooks import *  # noqa: F403
