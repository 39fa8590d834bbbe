"""Pure functions between FHIR JSON and Tandem's domain. No I/O: never imports flask, requests or redis."""
