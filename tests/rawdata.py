"""Hand-made raw data for tests: every raw table of docs/raw_data.md, empty, plus rows you add.

Tests that need precise graphs (a chain, a kiosk, a merge) write a few rows here and run the real
`dbt build` on them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from reverse_etl.datagen.schema import SCHEMAS, TABLES, create_table_sql

BASE_TIME = datetime(2026, 3, 1, 12, 0, 0)
_ids = itertools.count(1)


def at(minutes: float) -> datetime:
    """A timestamp `minutes` after the tests' base time."""
    return BASE_TIME + timedelta(minutes=minutes)


def order_row(
    order_id: str,
    user_id: str,
    status: str,
    total: float,
    minute: float,
    refunded: float = 0.0,
    updated: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A shop.orders row of `user_id` (email <user_id>@mail.org), placed `minute` after the base time."""
    return {
        "order_id": order_id,
        "customer_id": user_id,
        "email": f"{user_id}@mail.org",
        "status": status,
        "currency": "EUR",
        "subtotal": total,
        "tax": 0,
        "shipping": 0,
        "total": total,
        "refunded_amount": refunded,
        "created_at": at(minute),
        "updated_at": at(updated if updated is not None else minute),
        **extra,
    }


class RawData:
    """Creates the raw schemas in a DuckDB file and inserts rows given as dicts of some columns."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self._pending: dict[str, list[dict[str, Any]]] = {}
        con = duckdb.connect(str(database))
        try:
            for schema in SCHEMAS:
                if schema == "ground_truth":
                    continue
                con.execute(f'create schema if not exists "{schema}"')
            for name in TABLES:
                if name.startswith("ground_truth."):
                    continue
                schema, table = name.split(".")
                exists = con.execute(
                    "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                    [schema, table],
                ).fetchone()[0]
                if not exists:
                    con.execute(create_table_sql(name))
        finally:
            con.close()

    def insert(self, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Queue rows; they are written on flush() (or leaving the `with` block), in one go per table."""
        known = {col for col, _ in TABLES[table]}
        for row in rows:
            unknown = set(row) - known
            if unknown:
                raise KeyError(f"{table} has no column(s) {sorted(unknown)}")
            self._pending.setdefault(table, []).append(dict(row))

    def flush(self) -> None:
        if not self._pending:
            return
        con = duckdb.connect(str(self.database))
        try:
            for table, rows in self._pending.items():
                columns = [col for col, _ in TABLES[table]]
                schema, name = table.split(".")
                quoted = ", ".join(f'"{c}"' for c in columns)
                con.executemany(
                    f'insert into "{schema}"."{name}" ({quoted}) values ({", ".join("?" for _ in columns)})',
                    [[row.get(c) for c in columns] for row in rows],
                )
        finally:
            con.close()
        self._pending = {}

    def __enter__(self) -> RawData:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        self.flush()
        con = duckdb.connect(str(self.database))
        try:
            con.execute(sql, params or [])
        finally:
            con.close()

    # -- shorthands for the common events ---------------------------------------------------------

    def identify(
        self,
        minutes: float,
        anonymous_id: str | None = None,
        user_id: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        **traits: Any,
    ) -> str:
        event_id = f"idf-{next(_ids)}"
        self.insert(
            "segment.identifies",
            [
                {
                    "id": event_id,
                    "anonymous_id": anonymous_id,
                    "user_id": user_id,
                    "email": email,
                    "phone": phone,
                    "timestamp": at(minutes),
                    "received_at": at(minutes),
                    "sent_at": at(minutes),
                    **traits,
                }
            ],
        )
        return event_id

    def page(
        self,
        minutes: float,
        anonymous_id: str | None = None,
        user_id: str | None = None,
        url: str = "https://shop.example.org/",
        **extra: Any,
    ) -> str:
        event_id = f"pg-{next(_ids)}"
        self.insert(
            "segment.pages",
            [
                {
                    "id": event_id,
                    "anonymous_id": anonymous_id,
                    "user_id": user_id,
                    "url": url,
                    "context_page_url": url,
                    "timestamp": at(minutes),
                    "received_at": at(minutes),
                    **extra,
                }
            ],
        )
        return event_id

    def track(
        self,
        minutes: float,
        event: str,
        anonymous_id: str | None = None,
        user_id: str | None = None,
        **extra: Any,
    ) -> str:
        event_id = f"tr-{next(_ids)}"
        self.insert(
            "segment.tracks",
            [
                {
                    "id": event_id,
                    "anonymous_id": anonymous_id,
                    "user_id": user_id,
                    "event": event,
                    "event_text": event,
                    "timestamp": at(minutes),
                    "received_at": at(minutes),
                    **extra,
                }
            ],
        )
        return event_id
