"""Where the measures run: DuckDB (embedded, the default) or Apache Spark (local mode here; a cluster where a
health system outgrows one machine). The same Ibis expressions run on both."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
from ibis.expr.types import Table

from fhir_mappings.measures.flatten import SCHEMAS
from launch import errors

ENGINES = ("duckdb", "spark")
_spark: Any = None


def spark_session() -> Any:
    """One local Spark session per process (UTC, no UI); needs pyspark and a Java runtime."""
    global _spark  # noqa: PLW0603 - a JVM per process is expensive: start it once
    if _spark is None:
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise errors.ConfigurationError(
                "the Spark engine needs pyspark: pip install -e '.[spark]'"
            ) from None
        _spark = (SparkSession.builder.master("local[2]").appName("tandem-measures")
                  .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
                  .config("spark.sql.shuffle.partitions", "4").config("spark.ui.showConsoleProgress", "false")
                  .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate())  # fmt: skip
        _spark.sparkContext.setLogLevel("ERROR")
    return _spark


def connect(engine: str) -> Any:
    if engine == "duckdb":
        return ibis.duckdb.connect()
    if engine == "spark":
        return ibis.pyspark.connect(spark_session())
    raise errors.ConfigurationError(f"unknown measure engine {engine!r} (one of {', '.join(ENGINES)})")


def tables(con: Any, folder: Path) -> dict[str, Table]:
    """The flattened tables of one extraction, read from their Parquet files."""
    missing = [name for name in SCHEMAS if not (folder / f"{name}.parquet").exists()]
    if missing:
        raise errors.ConfigurationError(f"{folder}: no extraction here (missing {', '.join(missing)})")
    return {
        name: con.read_parquet(str(folder / f"{name}.parquet"), table_name=f"m_{name}") for name in SCHEMAS
    }


def to_arrow(expr: Any) -> pa.Table:
    """Run an expression on its engine. pyspark 4.0's result socket is dropped without being closed
    (`pyspark.util._create_local_socket`), which raises a ResourceWarning when it is collected: it is collected
    here, where that one warning is expected and ignored, and nowhere else."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="unclosed <socket.socket", category=ResourceWarning)
        result = expr.to_pyarrow()
        gc.collect()
    return result
