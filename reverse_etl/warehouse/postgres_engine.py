"""PostgreSQL, through psycopg2 (which dbt-postgres brings): the project's dbt target on PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from reverse_etl.warehouse.base import Warehouse, WarehouseError, WarehouseTarget
from reverse_etl.warehouse.dialect import relation, translate


class PostgresWarehouse(Warehouse):
    """A PostgreSQL database. DuckDB-dialect SQL is translated once per statement text and cached."""

    dialect = "postgres"

    def __init__(
        self, target: WarehouseTarget, *, read_only: bool = False, lock_timeout: float = 30.0
    ) -> None:
        try:
            import psycopg2
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise WarehouseError("PostgreSQL needs psycopg2: pip install -e '.[postgres]'") from exc
        self.target = target
        self.read_only = read_only
        self.path = target.lock_anchor
        self._psycopg2 = psycopg2
        self._lock = threading.RLock()  # one connection, used from the delivery threads in turn
        self.con = self._connect()

    def _connect(self) -> Any:
        s = self.target.settings
        try:
            con = self._psycopg2.connect(
                host=s.get("host", "127.0.0.1"),
                port=int(s.get("port", 5432)),
                user=s.get("user"),
                password=s.get("password") or None,
                dbname=s.get("dbname") or s.get("database"),
                connect_timeout=int(s.get("connect_timeout", 10)),
            )
        except self._psycopg2.OperationalError as exc:
            raise WarehouseError(
                f"cannot connect to {self.target.description}: {str(exc).strip()}. Check the host, port, "
                "user and password of the dbt target (CDP_PROFILES_DIR, --target)."
            ) from exc
        con.autocommit = True
        if self.read_only:
            con.set_session(readonly=True, autocommit=True)
        return con

    @property
    def location(self) -> str:
        return self.target.description

    @staticmethod
    def _bound(text: str, params: Sequence[Any] | None, what: str) -> tuple[str, list[Any] | None]:
        """A translated statement and its arguments as psycopg2 takes them: without arguments it does
        not interpret ``%``, so the doubled ``%%`` of the translation goes back to ``%``."""
        args = list(params) if params and text.count("%s") else None
        if args is None:
            return text.replace("%%", "%"), None
        if text.count("%s") != len(args):
            raise WarehouseError(f"{what} has {text.count('%s')} parameters, {len(args)} given")
        return text, args

    def _run(self, cur: Any, sql: str, params: Sequence[Any] | None) -> None:
        # Parameters belong to the statement that has placeholders (callers pass one per call).
        for i, statement in enumerate(translate(sql, "postgres")):
            cur.execute(*self._bound(statement.sql, params, f"statement {i + 1} of:\n{sql}\n"))

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self._lock, self.con.cursor() as cur:
            self._run(cur, sql, params)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        with self._lock, self.con.cursor() as cur:
            self._run(cur, sql, params)
            names = [d[0] for d in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def stream(
        self, sql: str, params: Sequence[Any] | None = None, batch_size: int = 10_000
    ) -> Iterator[list[dict[str, Any]]]:
        # A server-side cursor on a connection of its own: rows arrive batch by batch while this
        # connection keeps committing state.
        (statement,) = translate(sql, "postgres")
        con = self._connect()
        try:
            con.autocommit = False
            with con.cursor(name="cdp_stream") as cur:
                cur.itersize = batch_size
                cur.execute(*self._bound(statement.sql, params, f"the query\n{sql}\n"))
                names: list[str] | None = None
                while True:
                    rows = cur.fetchmany(batch_size)
                    if names is None:
                        names = [d[0] for d in cur.description or []]
                    if not rows:
                        break
                    yield [dict(zip(names, row, strict=True)) for row in rows]
            con.rollback()
        finally:
            con.close()

    def append(
        self, table: str, data: Mapping[str, Sequence[Any]], types: Mapping[str, Any] | None = None
    ) -> None:
        from psycopg2.extras import execute_values

        columns = list(data)
        if not columns or not len(data[columns[0]]):
            return
        rows = list(zip(*(data[c] for c in columns), strict=True))
        names = ", ".join(f'"{c}"' for c in columns)
        with self._lock, self.con.cursor() as cur:
            execute_values(
                cur, f"insert into {relation(table, 'postgres')} ({names}) values %s", rows, page_size=5_000
            )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Warehouse]:
        with self._lock:
            with self.con.cursor() as cur:
                cur.execute("begin")
            try:
                yield self
            except BaseException:
                with self.con.cursor() as cur:
                    cur.execute("rollback")
                raise
            else:
                with self.con.cursor() as cur:
                    cur.execute("commit")

    def close(self) -> None:
        self.con.close()
