"""Write the raw tables into a DuckDB file, chunk by chunk, with memory that does not grow with size."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from reverse_etl.datagen import render, vocab
from reverse_etl.datagen.schema import TABLES, create_table_sql, quoted
from reverse_etl.datagen.simulate import BLOCK, DAY, Block, Config, concat, kiosk_count
from reverse_etl.warehouse import Warehouse

DEFAULT_START = date(2026, 1, 1)
# Identifiers are bijections of the person index into fixed digit ranges (see render.People): past
# this many persons, phone numbers and CRM ids would start to repeat.
MAX_PERSONS = 50_000_000
# The generator's own cap on DuckDB memory: inserts only need a few chunks' worth of buffers.
DUCKDB_MEMORY_LIMIT = "1GB"


class GenerateError(ValueError):
    """Bad arguments or a warehouse the generator cannot write to; the message says how to fix it."""


@dataclass
class GenerationSummary:
    """What a run wrote."""

    database: Path
    customers: int
    seed: int
    first_person: int  # index of the first generated person (non-zero when appending)
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def generate(
    database: str | Path,
    customers: int,
    *,
    seed: int = 42,
    start: date | None = None,
    days: int = 365,
    chunk_size: int = 20_000,
    progress: bool = False,
    default_country: str = "US",
    append: bool = False,
    on_chunk: Callable[[int], None] | None = None,
) -> GenerationSummary:
    """Generate ``customers`` persons and everything they did into the raw schemas of ``database``.

    Same arguments, same tables, row for row. ``chunk_size`` (persons per insert, rounded to whole
    blocks of 1,000) only changes memory use, never the data. With ``append`` the new persons continue
    the numbering of those already in ``ground_truth.persons``; otherwise the raw tables are replaced.
    ``on_chunk`` is called with the number of persons written after each chunk (progress, benchmarks).
    """
    _validate(customers, seed, days, chunk_size, default_country)
    started = time.perf_counter()
    start = start or DEFAULT_START
    start_us = int(datetime(start.year, start.month, start.day, tzinfo=timezone.utc).timestamp()) * 1_000_000
    with Warehouse(database) as wh:
        con = wh.con
        con.execute(f"set memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        first = _prepare(con, wh.path, append)
        if first + customers > MAX_PERSONS:
            raise GenerateError(
                f"{wh.path} already holds {first:,} persons; adding {customers:,} would pass the "
                f"generator's limit of {MAX_PERSONS:,}. Generate into a new file or use --replace."
            )
        cfg = Config(
            seed=seed,
            customers=customers,
            first_index=first,
            start_us=start_us,
            end_us=start_us + days * DAY,
            default_country=vocab.COUNTRIES.index(default_country),
            n_kiosks=kiosk_count(customers),
        )
        summary = GenerationSummary(wh.path, customers, seed, first, {name: 0 for name in TABLES})
        kiosks = render.kiosk_ids(cfg)
        n_blocks = -(-customers // BLOCK)
        per_chunk = max(1, round(chunk_size / BLOCK))
        bar = _progress_bar(customers, progress)
        try:
            for b0 in range(0, n_blocks, per_chunk):
                blocks = [Block(cfg, b).run() for b in range(b0, min(b0 + per_chunk, n_blocks))]
                written = _write_chunk(con, cfg, kiosks, blocks, summary.rows)
                bar.update(written)
                if on_chunk:
                    on_chunk(written)
        finally:
            bar.close()
        con.execute("checkpoint")
    summary.seconds = time.perf_counter() - started
    return summary


def _validate(customers: int, seed: int, days: int, chunk_size: int, default_country: str) -> None:
    if not 1 <= customers <= MAX_PERSONS:
        raise GenerateError(f"customers must be between 1 and {MAX_PERSONS:,}, got {customers:,}.")
    if seed < 0:
        raise GenerateError(f"seed must be a non-negative integer, got {seed}.")
    if days < 1:
        raise GenerateError(f"days must be at least 1, got {days}.")
    if chunk_size < 1:
        raise GenerateError(f"chunk_size must be at least 1, got {chunk_size}.")
    if default_country not in vocab.COUNTRIES:
        raise GenerateError(f"default_country must be one of {', '.join(vocab.COUNTRIES)}, got {default_country!r}.")


def _prepare(con: duckdb.DuckDBPyConnection, path: Path, append: bool) -> int:
    """Create (or check, when appending) the raw tables; return the index of the first new person."""
    if not append:
        for schema in dict.fromkeys(name.split(".")[0] for name in TABLES):
            con.execute(f'create schema if not exists "{schema}"')
        for name in TABLES:
            con.execute(f"drop table if exists {quoted(name)}")
            con.execute(create_table_sql(name))
        return 0
    for name, columns in TABLES.items():
        schema, table = name.split(".")
        found = [
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
                "order by ordinal_position",
                [schema, table],
            ).fetchall()
        ]
        if found != [c for c, _ in columns]:
            what = "does not exist" if not found else f"has columns {found}"
            raise GenerateError(
                f"cannot append to {path}: {name} {what}, not the generator's layout. "
                "Run `cdp generate` without --append first to create the raw tables."
            )
    row = con.execute(
        "select coalesce(max(cast(substr(person_id, 2) as bigint)), 0) from ground_truth.persons"
    ).fetchone()
    return int(row[0]) if row else 0


def _write_chunk(
    con: duckdb.DuckDBPyConnection,
    cfg: Config,
    kiosks: tuple[pa.Array, pa.Array],
    blocks: list[dict[str, dict]],
    counts: dict[str, int],
) -> int:
    """Render and insert one chunk, one table at a time, in a single transaction."""
    merged = {name: concat([b[name] for b in blocks]) for name in blocks[0]}
    persons = merged.pop("persons")
    people = render.People(persons, cfg, kiosks)
    con.execute("begin transaction")
    try:
        for name, renderer in render.RENDERERS.items():
            frame = merged.get(name)
            if not frame or frame["p"].size == 0:
                continue
            for table_name, table in renderer(people, frame):
                _insert(con, table_name, table, counts)
        for table_name, table in render.ground_truth(people, persons):
            _insert(con, table_name, table, counts)
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")
    return people.n


def _insert(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table, counts: dict[str, int]) -> None:
    if table.num_rows == 0:
        return
    con.register("_cdp_generate_chunk", table)
    try:
        con.execute(f"insert into {quoted(name)} select * from _cdp_generate_chunk")
    finally:
        con.unregister("_cdp_generate_chunk")
    counts[name] += table.num_rows


def _progress_bar(total: int, enabled: bool):  # noqa: ANN202 - tqdm's type is not worth importing
    from tqdm import tqdm

    return tqdm(total=total, unit="persons", unit_scale=True, disable=not enabled, desc="generate")
