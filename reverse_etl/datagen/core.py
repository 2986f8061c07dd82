"""Write the raw tables into a DuckDB file, chunk by chunk, with memory that does not grow with size."""

from __future__ import annotations

import queue
import threading
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
DUCKDB_MEMORY_LIMIT = "512MB"
# Rows buffered per table before an insert (see _Writer): at least this many, more for large chunks
# (12 rows per person in the chunk, about the size of a chunk's largest table).
FLUSH_ROWS = 50_000


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
        con.execute("set enable_progress_bar = false")
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
        writer = _Writer(con.cursor(), summary.rows, flush_rows=max(FLUSH_ROWS, 12 * per_chunk * BLOCK))
        writer.start()
        bar = _progress_bar(customers, progress)
        try:
            for b0 in range(0, n_blocks, per_chunk):
                blocks = [Block(cfg, b).run() for b in range(b0, min(b0 + per_chunk, n_blocks))]
                done = _render_chunk(writer, cfg, kiosks, blocks)
                bar.update(done)
                if on_chunk:
                    on_chunk(done)
            writer.finish()
        except BaseException:
            writer.abort()
            raise
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
        raise GenerateError(
            f"default_country must be one of {', '.join(vocab.COUNTRIES)}, got {default_country!r}."
        )


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
    rows = con.execute(
        "select coalesce(max(cast(substr(person_id, 2) as bigint)), 0) from ground_truth.persons"
    ).fetchall()
    return int(rows[0][0])


_DONE = object()


class _Writer(threading.Thread):
    """Inserts rendered tables on its own thread, so rendering the next chunk overlaps the inserts.

    Each table's Arrow chunks are buffered and inserted in large statements: DuckDB writes a large
    insert straight into compressed row groups, while a small one goes through the write-ahead log
    first and is written again at the next checkpoint. Memory stays bounded by ``flush_rows`` per
    table plus the small hand-over queue.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, counts: dict[str, int], flush_rows: int) -> None:
        super().__init__(name="cdp-generate-writer", daemon=True)
        self.con, self.counts, self.flush_rows = con, counts, flush_rows
        self.pending: dict[str, list[pa.Table]] = {}
        self.pending_rows: dict[str, int] = {}
        self.queue: queue.Queue[object] = queue.Queue(maxsize=40)
        self.stop = threading.Event()
        self.error: BaseException | None = None

    # -- producer side (the generating thread) ---------------------------------------------------

    def put(self, name: str, table: pa.Table) -> None:
        self._hand_over((name, table))

    def finish(self) -> None:
        """Insert what is left and wait for the writer; re-raise its error, if any."""
        self._hand_over(_DONE)
        self.join()
        if self.error:
            raise self.error

    def abort(self) -> None:
        self.stop.set()
        self.join()

    def _hand_over(self, item: object) -> None:
        while self.is_alive():
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        if self.error:
            raise self.error

    # -- writer thread ---------------------------------------------------------------------------

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    item = self.queue.get(timeout=0.2)
                except queue.Empty:
                    continue
                if item is _DONE:
                    for name in list(self.pending):
                        self._flush(name)
                    return
                name, table = item  # type: ignore[misc]
                self._add(name, table)
        except BaseException as exc:  # handed to the generating thread
            self.error = exc
        finally:
            self.con.close()

    def _add(self, name: str, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self.pending.setdefault(name, []).append(table)
        self.pending_rows[name] = self.pending_rows.get(name, 0) + table.num_rows
        if self.pending_rows[name] >= self.flush_rows:
            self._flush(name)

    def _flush(self, name: str) -> None:
        tables = self.pending.pop(name, [])
        self.pending_rows.pop(name, None)
        if not tables:
            return
        table = pa.concat_tables(tables)
        self.con.register("_cdp_generate_chunk", table)
        try:
            self.con.execute(f"insert into {quoted(name)} select * from _cdp_generate_chunk")
        finally:
            self.con.unregister("_cdp_generate_chunk")
        self.counts[name] += table.num_rows


def _render_chunk(
    writer: _Writer, cfg: Config, kiosks: tuple[pa.Array, pa.Array], blocks: list[dict[str, dict]]
) -> int:
    """Render one chunk of blocks, table by table, into the writer; return the number of persons."""
    merged = {name: concat([b[name] for b in blocks]) for name in blocks[0]}
    persons = merged.pop("persons")
    people = render.People(persons, cfg, kiosks)
    for name, renderer in render.RENDERERS.items():
        frame = merged.pop(name, None)
        if not frame or frame["p"].size == 0:
            continue
        for table_name, table in renderer(people, frame):
            writer.put(table_name, table)
    for table_name, table in render.ground_truth(people, persons):
        writer.put(table_name, table)
    return people.n


def _progress_bar(total: int, enabled: bool):  # noqa: ANN202 - tqdm's type is not worth importing
    from tqdm import tqdm

    return tqdm(total=total, unit="persons", unit_scale=True, disable=not enabled, desc="generate")
