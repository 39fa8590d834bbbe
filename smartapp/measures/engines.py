"""Where the measures run: DuckDB (embedded, the default) or Apache Spark (local mode here; a cluster where a
health system outgrows one machine). The same Ibis expressions run on both."""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
from ibis.expr.types import Table

from fhir_mappings.measures.flatten import SCHEMAS
from launch import errors

ENGINES = ("duckdb", "spark")
_spark: Any = None


#: Where a local Spark driver listens: loopback only, unless the deployment names a master or a bind address.
LOOPBACK = "127.0.0.1"


def spark_conf(environ: Mapping[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """The Spark master and configuration. In local mode (the default, `local[2]`) the driver and its block
    manager listen on 127.0.0.1 only: Spark otherwise binds to the machine's outward address, opening ports to the
    network for a job that never leaves the machine. TANDEM_SPARK_MASTER names a cluster (then Spark's own
    address choice stands), TANDEM_SPARK_BIND_ADDRESS the address to listen on."""
    env = os.environ if environ is None else environ
    master = env.get("TANDEM_SPARK_MASTER", "").strip() or "local[2]"
    bind = env.get("TANDEM_SPARK_BIND_ADDRESS", "").strip()
    conf = {
        "spark.ui.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "4",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }
    if bind:
        conf["spark.driver.bindAddress"] = bind
    elif master.startswith("local"):
        conf["spark.driver.bindAddress"] = LOOPBACK
        conf["spark.driver.host"] = LOOPBACK
    return master, conf


def spark_session() -> Any:
    """One Spark session per process (UTC, no UI; local mode on loopback unless configured: `spark_conf`); needs
    pyspark and a Java runtime."""
    global _spark  # noqa: PLW0603 - a JVM per process is expensive: start it once
    if _spark is None:
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise errors.ConfigurationError(
                "the Spark engine needs pyspark: pip install -e '.[spark]'"
            ) from None
        master, conf = spark_conf()
        builder = SparkSession.builder.master(master).appName("tandem-measures")
        for name, value in conf.items():
            builder = builder.config(name, value)
        _spark = builder.getOrCreate()
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
