"""tests/integration/test_smi.py with the registry store on HAPI FHIR JPA (see conftest.py)."""

from tests.integration.test_smi import *  # noqa: F403
