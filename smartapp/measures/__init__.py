"""Quality measures: extraction (Bulk Data + registry) into Parquet, the engines, the page, MeasureReports."""
