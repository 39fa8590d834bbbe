"""SMART App Launch client, FHIR gateway and server-side state: framework-neutral, no Flask imports."""
