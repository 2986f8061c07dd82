"""The embedded default: a DuckDB file, opened in this process."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from reverse_etl.project import ProjectError
from reverse_etl.warehouse.base import Warehouse, WarehouseError


class DuckDBWarehouse(Warehouse):
    """A connection to the embedded DuckDB warehouse."""

    dialect = "duckdb"

    def __init__(self, path: str | Path, *, read_only: bool = False, lock_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if read_only and not self.path.exists():
            raise ProjectError(
                f"warehouse file {self.path} does not exist yet: run `cdp demo` or `cdp generate` and "
                "`cdp build` first, or set CDP_DUCKDB_PATH to your warehouse file."
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = self._open(lock_timeout)

    def _open(self, lock_timeout: float) -> duckdb.DuckDBPyConnection:
        # Another process (a dbt build, a sync) may hold the file's write lock for a moment: wait for it.
        deadline = time.monotonic() + lock_timeout
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=self.read_only)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise WarehouseError(
                        f"cannot open warehouse {self.path}: {exc}. Another process holds it; "
                        "wait for it to finish."
                    ) from exc
                time.sleep(0.2)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.con.execute(sql, params or [])

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        cur = self.con.execute(sql, params or [])
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        rows = self.con.execute(sql, params or []).fetchall()
        return rows[0][0] if rows else None

    def stream(
        self, sql: str, params: Sequence[Any] | None = None, batch_size: int = 10_000
    ) -> Iterator[list[dict[str, Any]]]:
        cur = self.con.cursor()
        try:
            # A relation's reader streams; an executed result's reader would first copy every row
            # (DuckDB 2.x), so memory would grow with the result.
            relation = cur.sql(sql, params=list(params or []))
            reader = relation.to_arrow_reader(batch_size) if relation is not None else iter(())
            for batch in reader:
                yield batch.to_pylist()
        finally:
            cur.close()

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        placeholders = ", ".join("?" for _ in columns)
        self.con.executemany(
            f"insert into {table} ({', '.join(columns)}) values ({placeholders})", [list(r) for r in rows]
        )

    def append(
        self, table: str, data: Mapping[str, Sequence[Any]], types: Mapping[str, Any] | None = None
    ) -> None:
        # One Arrow scan: executemany is row by row and slow.
        import pyarrow as pa

        columns = list(data)
        if not columns or not len(data[columns[0]]):
            return
        types = types or {}
        arrow = pa.table({c: pa.array(list(data[c]), type=types.get(c)) for c in columns})
        names = ", ".join(f'"{c}"' for c in columns)
        view = f"__append_{id(arrow)}"
        self.con.register(view, arrow)
        try:
            self.con.execute(f"insert into {table} ({names}) select {names} from {view}")
        finally:
            self.con.unregister(view)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Warehouse]:
        self.con.execute("begin transaction")
        try:
            yield self
        except BaseException:
            self.con.execute("rollback")
            raise
        else:
            self.con.execute("commit")

    def columns(self, schema: str, name: str) -> list[str]:
        rows = self.con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, name],
        ).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        self.con.close()
