"""Spark, through a SparkSession: the project's dbt target on Spark (dbt-spark's session method).

Spark's Parquet tables have no transactions, no UPDATE or DELETE and no sequences, so:

* ``update`` and ``delete`` rewrite the table: its new content is computed, checkpointed, and written
  over the old in one job;
* a column created with ``default nextval(...)`` is numbered here, increasing across the process;
* ``transaction()`` groups statements without atomicity. The sync state stays safe because each
  acknowledged batch is one appended journal insert (one Spark job) and the fold into ``sync_state``
  is idempotent: a run killed during the fold is folded again by the next run.

On Databricks (Delta tables) the same statements run natively; see docs/engines.md.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from reverse_etl.warehouse.base import Warehouse, WarehouseError, WarehouseTarget
from reverse_etl.warehouse.dialect import SEQUENCE_PROPERTY, Statement, inline_parameters, relation, translate

# Numbers for sequence columns: increasing in this process, and above any earlier process's numbers.
_sequence = itertools.count(time.time_ns() // 1_000)
_sequence_guard = threading.Lock()


def _next_numbers(n: int) -> list[int]:
    with _sequence_guard:
        return [next(_sequence) for _ in range(n)]


class SparkWarehouse(Warehouse):
    """Spark SQL over the session's catalog (Hive metastore or in-memory)."""

    dialect = "spark"

    def __init__(
        self,
        target: WarehouseTarget,
        *,
        read_only: bool = False,
        lock_timeout: float = 30.0,
        session: Any = None,
    ) -> None:
        self.target = target
        self.read_only = read_only
        self.path = target.lock_anchor
        self.spark = session or self._session()
        self._lock = threading.RLock()
        self._sequence_columns: dict[str, tuple[str, ...]] = {}

    def _session(self) -> Any:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise WarehouseError("Spark needs pyspark: pip install -e '.[spark]'") from exc
        settings = self.target.settings
        if settings.get("method", "session") != "session":
            raise WarehouseError(
                f"spark target '{self.target.name}': method {settings.get('method')!r} is not supported by "
                "the sync layer; use method: session (a local or cluster SparkSession), or run the syncs "
                "from a Databricks job with a session."
            )
        builder = SparkSession.builder
        for key, value in (settings.get("server_side_parameters") or {}).items():
            if key == "spark.sql.warehouse.dir":
                value = str(Path(value).resolve())
            builder = builder.config(key, str(value))
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
        return session

    @property
    def location(self) -> str:
        return self.target.description

    # -- statements ------------------------------------------------------------------------------

    def _sql(self, statement: Statement, params: Sequence[Any] | None) -> Any:
        args = list(params) if params and "?" in statement.sql else None
        return self.spark.sql(statement.sql, args=args) if args else self.spark.sql(statement.sql)

    def _rewrite(self, statement: Statement, params: Sequence[Any] | None) -> None:
        """UPDATE / DELETE as a rewrite of the table's content."""
        columns = self.columns(*statement.table.replace("`", "").split(".", 1))
        cond = f"coalesce(({statement.condition}), false)" if statement.condition else "true"
        if statement.kind == "delete":
            select = f"select * from {statement.table} where not {cond}"
        else:
            assigned = dict(statement.assignments)
            select = (
                "select "
                + ", ".join(
                    f"case when {cond} then {assigned[c]} else `{c}` end as `{c}`"
                    if c in assigned
                    else f"`{c}`"
                    for c in columns
                )
                + f" from {statement.table}"
            )
        args = list(params) if params else None
        frame = self.spark.sql(select, args=args) if args else self.spark.sql(select)
        frame.localCheckpoint(eager=True).write.insertInto(statement.table, overwrite=True)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        if self.read_only:
            first = sql.lstrip().split(None, 1)[0].lower() if sql.strip() else ""
            if first in ("insert", "update", "delete", "create", "drop", "alter"):
                raise WarehouseError(f"this warehouse connection is read-only: {first} refused")
        with self._lock:
            for statement in translate(sql, "spark"):
                if statement.kind == "skip":
                    continue
                if statement.kind in ("update", "delete"):
                    # A rewrite repeats the condition per column: bind parameters as literals first.
                    inlined = (
                        translate(inline_parameters(sql, list(params or [])), "spark")
                        if params
                        else (statement,)
                    )
                    for rewrite in inlined:
                        self._rewrite(rewrite, None)
                    continue
                if statement.sequence_columns:
                    table = statement.sql.split("(", 1)[0].split()[-1].replace("`", "").lower()
                    self._sequence_columns[table] = statement.sequence_columns
                self._sql(statement, params)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            (statement,) = translate(sql, "spark")
            return [row.asDict() for row in self._sql(statement, params).collect()]

    def stream(
        self, sql: str, params: Sequence[Any] | None = None, batch_size: int = 10_000
    ) -> Iterator[list[dict[str, Any]]]:
        (statement,) = translate(sql, "spark")
        with self._lock:
            frame = self._sql(statement, params)
        batch: list[dict[str, Any]] = []
        # toLocalIterator pulls one partition at a time to the driver.
        for row in frame.toLocalIterator(prefetchPartitions=False):
            batch.append(row.asDict())
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def append(
        self, table: str, data: Mapping[str, Sequence[Any]], types: Mapping[str, Any] | None = None
    ) -> None:
        import pyarrow as pa

        columns = list(data)
        if not columns or not len(data[columns[0]]):
            return
        n = len(data[columns[0]])
        key = table.replace('"', "").replace("`", "").lower()
        # Looked up once per table (an empty tuple is a cached answer too).
        if key not in self._sequence_columns:
            self._sequence_columns[key] = self._known_sequence_columns(key)
        sequence_columns = self._sequence_columns[key]
        data = dict(data)
        for column in sequence_columns:
            if column not in data:
                data[column] = _next_numbers(n)
        # Spark has no unsigned types: hints of uint64 become int64.
        hints = {c: (pa.int64() if t == pa.uint64() else t) for c, t in (types or {}).items()}
        arrow = pa.table({c: pa.array(list(v), type=hints.get(c)) for c, v in data.items()})
        view = f"__cdp_append_{id(arrow)}"
        names = ", ".join(f"`{c}`" for c in data)
        with self._lock:
            self.spark.createDataFrame(arrow).createOrReplaceTempView(view)
            try:
                self.spark.sql(f"insert into {relation(table, 'spark')} ({names}) select {names} from {view}")
            finally:
                self.spark.catalog.dropTempView(view)

    def _known_sequence_columns(self, table: str) -> tuple[str, ...]:
        """Sequence columns of a table created by an earlier process (kept in a table property)."""
        with self._lock:
            rows = self.spark.sql(f"show tblproperties {table} ('{SEQUENCE_PROPERTY}')").collect()
        value = str(rows[0]["value"]) if rows else ""
        return tuple(c for c in value.split(",") if c and " " not in c)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Warehouse]:
        # No transactions on Parquet tables: statements run in order under the connection's lock.
        with self._lock:
            yield self

    # -- catalogue -------------------------------------------------------------------------------

    def relation_exists(self, schema: str, name: str) -> bool:
        with self._lock:
            if not self.spark.catalog.databaseExists(schema):
                return False
            return bool(self.spark.catalog.tableExists(f"{schema}.{name}"))

    def columns(self, schema: str, name: str) -> list[str]:
        with self._lock:
            return [c.name for c in self.spark.catalog.listColumns(f"{schema}.{name}")]

    def close(self) -> None:
        # The session belongs to the process (dbt-spark shares it): leave it running.
        return None
