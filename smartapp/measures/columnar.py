"""Flattened rows → Parquet files, one per table, written in row groups as they come (memory holds one batch per
table, never the whole export)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq

from fhir_mappings.measures.flatten import SCHEMAS, rows

TYPES = {"str": pa.string(), "bool": pa.bool_(), "int": pa.int64(), "date": pa.date32(),
         "timestamp": pa.timestamp("us", tz="UTC")}  # fmt: skip
BATCH_ROWS = 50_000


def arrow_schema(table: str) -> pa.Schema:
    return pa.schema([(name, TYPES[kind]) for name, kind in SCHEMAS[table].items()])


class ParquetTables:
    """Write resources into `<folder>/<table>.parquet`; every table has a file, an empty one if nothing came."""

    def __init__(self, folder: Path, zone: ZoneInfo, batch_rows: int = BATCH_ROWS) -> None:
        self.folder = folder
        self.zone = zone
        self.batch_rows = batch_rows
        self.buffers: dict[str, list[dict[str, Any]]] = {name: [] for name in SCHEMAS}
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.counts: dict[str, int] = dict.fromkeys(SCHEMAS, 0)
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, resources: Iterable[Any]) -> None:
        for resource in resources:
            for table, row in rows(resource, self.zone):
                buffer = self.buffers[table]
                buffer.append(row)
                if len(buffer) >= self.batch_rows:
                    self._flush(table)

    def _flush(self, table: str) -> None:
        buffer = self.buffers[table]
        if not buffer:
            return
        schema = arrow_schema(table)
        batch = pa.Table.from_pylist(buffer, schema=schema)
        writer = self.writers.get(table)
        if writer is None:
            writer = self.writers[table] = pq.ParquetWriter(self.folder / f"{table}.parquet", schema)
        writer.write_table(batch)
        self.counts[table] += len(buffer)
        buffer.clear()

    def close(self) -> dict[str, int]:
        """Flush and close every file; rows written per table."""
        for table in SCHEMAS:
            self._flush(table)
            writer = self.writers.pop(table, None)
            if writer is not None:
                writer.close()
            else:
                pq.write_table(
                    pa.Table.from_pylist([], schema=arrow_schema(table)), self.folder / f"{table}.parquet"
                )
        return dict(self.counts)

    def __enter__(self) -> ParquetTables:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:  # fmt: skip
        self.close()
