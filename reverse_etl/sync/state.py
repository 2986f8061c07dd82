"""Sync bookkeeping in the warehouse's ``cdp_sync`` schema.

Tables:

* ``sync_records``: the journal. One row per record per run with what happened to it (synced, rejected,
  failed, invalid). A batch's rows are inserted in one transaction as soon as the destination has
  acknowledged the batch, so a killed run loses at most the batches that were in flight.
* ``sync_state``: per sync and record key, the hash of what the destination last acknowledged, its
  status (``synced`` or ``rejected``/``failed``: pending, retried next run) and ``in_destination``, the
  ownership ledger: true when this sync added the record and has not removed it. Mirror and audience
  syncs only ever remove keys on the ledger, so a record someone else put in the destination is safe.
  The state is folded from the journal in one set-based statement at the end of a run, and at the start
  of the next run when a run was killed before it got there.
  Invalid records (duplicate key, missing consent, no valid identifier) are tracked there too
  (``invalid_reason``, ``invalid_hash``): the journal records a record when it first becomes invalid or
  its reason or content changes, not on every run; each run still counts them in ``sync_runs.invalid``.
* ``sync_invalid_unkeyed``: the same for rows without a primary key, by content hash.
* ``sync_runs``: one row per run with counts, duration, status and error.
* ``sync_destination_state``: what a destination keeps between runs (e.g. the audience id it created).
* ``sync_ledger``: a view of the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from reverse_etl.warehouse import SYNC_SCHEMA, Warehouse

S = SYNC_SCHEMA

DDL = [
    f"create schema if not exists {S}",
    f"create sequence if not exists {S}.sync_records_seq",
    f"""create table if not exists {S}.sync_runs (
        run_id varchar primary key,
        sync_name varchar not null,
        mode varchar,
        destination varchar,
        started_at timestamp not null,
        finished_at timestamp,
        status varchar not null,        -- running | success | partial | failed | interrupted
        source_rows bigint,
        added bigint default 0,
        changed bigint default 0,
        removed bigint default 0,
        invalid bigint default 0,
        rejected bigint default 0,
        failed bigint default 0,
        delivered bigint default 0,
        retried bigint default 0,
        requests bigint default 0,
        duration_s double,
        error varchar,
        alerts varchar,
        folded boolean not null default false
    )""",
    f"""create table if not exists {S}.sync_records (
        seq bigint default nextval('{S}.sync_records_seq'),
        run_id varchar not null,
        sync_name varchar not null,
        record_key varchar,
        operation varchar not null,     -- upsert | update | insert | append | add | remove | forget | invalid
        status varchar not null,        -- synced | rejected | failed | invalid | skipped
        http_status integer,
        reason varchar,
        row_hash ubigint,
        payload varchar,                -- delivered fields (mirror/audience only), so removals carry identifiers
        "at" timestamp not null
    )""",
    f"""create table if not exists {S}.sync_state (
        sync_name varchar not null,
        record_key varchar not null,
        row_hash ubigint,
        status varchar not null,        -- synced | rejected | failed | pending
        in_destination boolean not null,
        payload varchar,
        attempts integer not null default 0,
        last_error varchar,
        acked_at timestamp,
        last_run_id varchar,
        updated_at timestamp,
        invalid_reason varchar,         -- why the record is invalid now (null: valid), recorded once
        invalid_hash ubigint            -- hash of the invalid content, so a change is recorded again
    )""",
    f"""create table if not exists {S}.sync_invalid_unkeyed (
        sync_name varchar not null,
        row_hash ubigint,
        reason varchar not null,
        run_id varchar,
        "at" timestamp
    )""",
    f"""create table if not exists {S}.sync_destination_state (
        sync_name varchar primary key,
        state varchar not null,
        updated_at timestamp not null
    )""",
    f"""create or replace view {S}.sync_ledger as
        select sync_name, record_key, acked_at as added_or_updated_at, last_run_id
        from {S}.sync_state where in_destination""",
]

# Journal entries folded at once; a larger journal is folded in parts of about this size.
FOLD_PART_ROWS = 250_000

RECORD_TYPES = {"row_hash": pa.uint64(), "http_status": pa.int32(), "at": pa.timestamp("us")}
SEND_OPERATIONS = ("upsert", "update", "insert", "append", "add")
OWNING_OPERATIONS = ("upsert", "insert", "append", "add")


def utcnow() -> datetime:
    """Naive UTC, as the warehouse stores timestamps."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


# Columns added after the first release: (table, column, type), added to older warehouses on open.
MIGRATIONS = (
    ("sync_state", "invalid_reason", "varchar"),
    ("sync_state", "invalid_hash", "ubigint"),
)


def ensure_schema(wh: Warehouse) -> None:
    with wh.transaction():
        for statement in DDL:
            wh.execute(statement)
    for table, column, kind in MIGRATIONS:
        if column not in wh.columns(S, table):
            wh.execute(f"alter table {S}.{table} add column {column} {kind}")


@dataclass
class JournalEntry:
    record_key: str | None
    operation: str
    status: str
    http_status: int | None = None
    reason: str | None = None
    row_hash: int | None = None
    payload: str | None = None


def write_journal(wh: Warehouse, run_id: str, sync_name: str, entries: Sequence[JournalEntry]) -> None:
    """Record one acknowledged batch (or a chunk of invalid records) in one transaction."""
    write_journal_columns(
        wh,
        run_id,
        sync_name,
        {
            "record_key": [e.record_key for e in entries],
            "operation": [e.operation for e in entries],
            "status": [e.status for e in entries],
            "http_status": [e.http_status for e in entries],
            "reason": [e.reason for e in entries],
            "row_hash": [e.row_hash for e in entries],
            "payload": [e.payload for e in entries],
        },
    )


def write_journal_columns(wh: Warehouse, run_id: str, sync_name: str, columns: dict[str, list[Any]]) -> None:
    """The same, column-wise: a batch of thousands of records is one Arrow insert."""
    n = len(columns["record_key"])
    if not n:
        return
    data = {"run_id": [run_id] * n, "sync_name": [sync_name] * n, **columns, "at": [utcnow()] * n}
    with wh.transaction():
        wh.append(f"{S}.sync_records", data, RECORD_TYPES)


def unfolded_runs(wh: Warehouse, sync_name: str) -> list[str]:
    rows = wh.query(
        f"select run_id from {S}.sync_runs where sync_name = ? and not folded order by started_at",
        [sync_name],
    )
    return [r["run_id"] for r in rows]


def fold(wh: Warehouse, sync_name: str, run_ids: Sequence[str]) -> int:
    """Apply the journal of ``run_ids`` to ``sync_state`` and mark those runs folded; one transaction.

    A large journal is folded in parts (by a hash of the key, so every entry of a key is in the same
    part), so the memory a fold needs does not grow with the run. Idempotent: a folded run is never
    folded again. Returns the number of keys touched."""
    if not run_ids:
        return 0
    placeholders = ", ".join("?" for _ in run_ids)
    entries = int(
        wh.scalar(
            f"select count(*) from {S}.sync_records where sync_name = ? and run_id in ({placeholders})",
            [sync_name, *run_ids],
        )
        or 0
    )
    parts = max(1, -(-entries // FOLD_PART_ROWS))
    touched = 0
    with wh.transaction():
        for part in range(parts):
            only = f"and abs(hash(record_key) % {parts}) = {part}" if parts > 1 else ""
            touched += _fold_part(wh, sync_name, run_ids, only)
        wh.execute(
            f"update {S}.sync_runs set folded = true, "
            "status = case when status = 'running' then 'interrupted' else status end "
            f"where sync_name = ? and run_id in ({placeholders})",
            [sync_name, *run_ids],
        )
    return touched


def _fold_part(wh: Warehouse, sync_name: str, run_ids: Sequence[str], only: str) -> int:
    """Fold the keys ``only`` selects (all when empty), inside the caller's transaction."""
    placeholders = ", ".join("?" for _ in run_ids)
    send_ops = ", ".join(f"'{o}'" for o in SEND_OPERATIONS)
    owning_ops = ", ".join(f"'{o}'" for o in OWNING_OPERATIONS)
    wh.execute("drop table if exists __cdp_sync_fold")
    wh.execute(
        f"""
        create temp table __cdp_sync_fold as
        with acks as (
            select *
            from {S}.sync_records
            where sync_name = ? and run_id in ({placeholders})
              and record_key is not null {only}
            qualify row_number() over (partition by record_key order by seq desc) = 1
        ),
        old as (select * from {S}.sync_state where sync_name = ?)
        select
            a.record_key,
            a.operation,
            a.status,
            case
                when a.operation in ('remove', 'forget') and a.status in ('synced', 'skipped') then 'delete'
                else 'keep'
            end as action,
            case when a.operation in ({send_ops}) and a.status <> 'invalid' then a.row_hash
                 else o.row_hash end as row_hash,
            case when a.status = 'synced' and a.operation in ({send_ops}) then 'synced'
                 when a.status = 'synced' then coalesce(o.status, 'synced')
                 when a.status = 'invalid' then coalesce(o.status, 'invalid')
                 else a.status end as new_status,
            case when a.status = 'synced' and a.operation in ({owning_ops}) then true
                 else coalesce(o.in_destination, false) end as in_destination,
            case when a.status = 'synced' and a.operation in ({send_ops}) then a.payload
                 else o.payload end as payload,
            case when a.status = 'synced' then 0
                 when a.status = 'invalid' then coalesce(o.attempts, 0)
                 else coalesce(o.attempts, 0) + 1 end as attempts,
            case when a.status = 'synced' then null
                 when a.status = 'invalid' then o.last_error
                 else a.reason end as last_error,
            case when a.status = 'synced' and a.operation in ({send_ops}) then a."at"
                 else o.acked_at end as acked_at,
            a.run_id,
            case when a.status = 'invalid' then a.reason end as invalid_reason,
            case when a.status = 'invalid' then a.row_hash end as invalid_hash
        from acks a
        left join old o using (record_key)
        """,
        [sync_name, *run_ids, sync_name],
    )
    wh.execute(
        f"delete from {S}.sync_state where sync_name = ? "
        "and record_key in (select record_key from __cdp_sync_fold)",
        [sync_name],
    )
    wh.execute(
        f"""
        insert into {S}.sync_state
            (sync_name, record_key, row_hash, status, in_destination, payload, attempts,
             last_error, acked_at, last_run_id, updated_at, invalid_reason, invalid_hash)
        select ?, record_key, row_hash, new_status, in_destination, payload, attempts,
               last_error, acked_at, run_id, ?, invalid_reason, invalid_hash
        from __cdp_sync_fold where action = 'keep'
        """,
        [sync_name, utcnow()],
    )
    touched = wh.scalar("select count(*) from __cdp_sync_fold")
    wh.execute("drop table __cdp_sync_fold")
    return int(touched or 0)


def recover(wh: Warehouse, sync_name: str) -> list[str]:
    """Fold runs that were killed before they could fold their own journal."""
    runs = unfolded_runs(wh, sync_name)
    fold(wh, sync_name, runs)
    return runs


def reset(wh: Warehouse, sync_name: str) -> int:
    """Forget what was sent so the next run resends every record, keeping the ledger so that run
    still removes what this sync added and is no longer in the source."""
    recover(wh, sync_name)
    with wh.transaction():
        wh.execute(f"delete from {S}.sync_state where sync_name = ? and not in_destination", [sync_name])
        wh.execute(
            f"update {S}.sync_state set row_hash = null, status = 'pending', invalid_reason = null, "
            "invalid_hash = null, updated_at = ? where sync_name = ?",
            [utcnow(), sync_name],
        )
        wh.execute(f"delete from {S}.sync_invalid_unkeyed where sync_name = ?", [sync_name])
        return int(wh.scalar(f"select count(*) from {S}.sync_state where sync_name = ?", [sync_name]) or 0)


def start_run(wh: Warehouse, run_id: str, sync_name: str, mode: str, destination: str) -> datetime:
    started = utcnow()
    wh.execute(
        f"insert into {S}.sync_runs (run_id, sync_name, mode, destination, started_at, status) "
        "values (?, ?, ?, ?, ?, 'running')",
        [run_id, sync_name, mode, destination, started],
    )
    return started


def finish_run(wh: Warehouse, run_id: str, sync_name: str, values: dict[str, Any]) -> None:
    """Write the run's summary row, then fold its journal (a kill in between is folded next run)."""
    sets = ", ".join(f"{k} = ?" for k in values)
    wh.execute(f"update {S}.sync_runs set {sets} where run_id = ?", [*values.values(), run_id])
    fold(wh, sync_name, [run_id])


def previous_run(wh: Warehouse, sync_name: str, run_id: str) -> dict[str, Any] | None:
    rows = wh.query(
        f"select * from {S}.sync_runs where sync_name = ? and run_id <> ? "
        "and status in ('success', 'partial') order by started_at desc limit 1",
        [sync_name, run_id],
    )
    return rows[0] if rows else None


def load_destination_state(wh: Warehouse, sync_name: str) -> dict[str, Any]:
    raw = wh.scalar(f"select state from {S}.sync_destination_state where sync_name = ?", [sync_name])
    return json.loads(raw) if raw else {}


def save_destination_state(wh: Warehouse, sync_name: str, state: dict[str, Any]) -> None:
    with wh.transaction():
        wh.execute(f"delete from {S}.sync_destination_state where sync_name = ?", [sync_name])
        wh.execute(
            f"insert into {S}.sync_destination_state values (?, ?, ?)",
            [sync_name, json.dumps(state, sort_keys=True, default=str), utcnow()],
        )


def replace_unkeyed(
    wh: Warehouse, sync_name: str, run_id: str, hashes_sql: str, params: Sequence[Any]
) -> None:
    """Remember the content hashes of this run's rows without a primary key (``hashes_sql`` selects
    them as ``row_hash``), so the next run records only new ones. Called once the run has journaled
    them all; a run killed before this records them once more, never fewer."""
    with wh.transaction():
        wh.execute(f"delete from {S}.sync_invalid_unkeyed where sync_name = ?", [sync_name])
        wh.execute(
            f"""insert into {S}.sync_invalid_unkeyed (sync_name, row_hash, reason, run_id, "at")
                select ?, row_hash, 'null primary key', ?, ? from ({hashes_sql}) as h""",
            [sync_name, run_id, utcnow(), *params],
        )


def _tracks_invalid(wh: Warehouse) -> bool:
    """Whether the state has the invalid-record columns (a warehouse opened read-only before its first
    run with this version has not been migrated yet)."""
    return "invalid_reason" in wh.columns(S, "sync_state")


def invalid_records(wh: Warehouse, sync_name: str, limit: int = 50) -> list[dict[str, Any]]:
    """Records invalid now, with the reason they were recorded with (the journal holds each once)."""
    if not _tracks_invalid(wh):
        return []
    return wh.query(
        f"""select record_key, invalid_reason as reason, last_run_id
            from {S}.sync_state where sync_name = ? and invalid_reason is not null
            order by record_key limit ?""",
        [sync_name, limit],
    )


def pending_counts(wh: Warehouse) -> dict[str, dict[str, int]]:
    """Per sync: records waiting for a retry (rejected/failed), records on the ledger, and records
    invalid now."""
    invalid = "invalid_reason is not null" if _tracks_invalid(wh) else "false"
    rows = wh.query(
        f"""select sync_name,
                   count(*) filter (where status in ('rejected', 'failed')) as pending,
                   count(*) filter (where in_destination) as owned,
                   count(*) filter (where {invalid}) as invalid
            from {S}.sync_state group by sync_name"""
    )
    return {
        r["sync_name"]: {"pending": int(r["pending"]), "owned": int(r["owned"]), "invalid": int(r["invalid"])}
        for r in rows
    }


def schema_exists(wh: Warehouse) -> bool:
    return wh.relation_exists(S, "sync_runs")
