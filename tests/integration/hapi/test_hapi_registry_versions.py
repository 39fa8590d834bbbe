"""tests/integration/test_registry_versions.py with the registry store on HAPI FHIR JPA (see conftest.py)."""

from tests.integration.test_registry_versions import *  # noqa: F403
