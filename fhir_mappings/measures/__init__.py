"""Quality measures: FHIR resources flattened into columnar rows, value sets as data, measure logic as Ibis
expressions that run on DuckDB or Spark."""
