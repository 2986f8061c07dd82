"""The sync engine: diff in the warehouse, deliver what changed, account for every record.

A run: take the sync's lock; fold the journal of a run that was killed; resolve the source; stream the
diff; turn rows into records (mapping, consent, the destination's normalisation); deliver batches on a
bounded pool of workers; record each acknowledged batch in one transaction; fold the journal into the
state; write the run's summary; send alerts. A record is never dropped silently: it is delivered,
rejected, failed (retried next run) or invalid, and each of those is a row in ``cdp_sync.sync_records``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reverse_etl import privacy
from reverse_etl.destinations import destination_class
from reverse_etl.destinations.base import (
    Destination,
    PlannedRequest,
    Record,
    SyncContext,
)
from reverse_etl.sync import alerts as alerting
from reverse_etl.sync import state
from reverse_etl.sync.config import REMOVAL_MODES, SyncConfig
from reverse_etl.sync.delivery import Aborted, Deliverer, Outcome, TokenBucket
from reverse_etl.sync.diff import (
    ResolvedSource,
    diff_query,
    resolve_source,
    source_row_count,
    unkeyed_hashes,
)
from reverse_etl.sync.lock import SyncLock
from reverse_etl.warehouse import Warehouse

# DuckDB's working memory during a run (its own setting, so joins and sorts spill to disk instead of
# growing with the table); CDP_SYNC_MEMORY_LIMIT overrides it, "default" leaves DuckDB's own limit.
DEFAULT_MEMORY_LIMIT = "512MB"


@contextlib.contextmanager
def duckdb_memory_limit(wh: Warehouse) -> Iterator[None]:
    """Bound an embedded DuckDB's memory for the run and restore its setting afterwards (the instance
    may be shared with a dbt build in the same process). The one DuckDB-only statement of the engine;
    other engines manage memory on their own servers."""
    limit = os.environ.get("CDP_SYNC_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT).strip()
    if wh.dialect != "duckdb" or not limit or limit.lower() == "default":
        yield
        return
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", limit, re.IGNORECASE):
        raise ValueError(f"CDP_SYNC_MEMORY_LIMIT={limit!r}: use a size such as 512MB or 2GB, or 'default'")
    previous = wh.scalar("select current_setting('memory_limit')")
    wh.execute(f"set memory_limit = '{limit}'")
    try:
        yield
    finally:
        # DuckDB shows the setting rounded: reset to its default when that is what it was.
        wh.execute("reset memory_limit")
        if wh.scalar("select current_setting('memory_limit')") != previous:
            wh.execute(f"set memory_limit = '{previous}'")


def build_destination(config: SyncConfig) -> Destination:
    """The configured destination, with secrets resolved from the environment."""
    cls = destination_class(config.destination.type, source=str(config.path))
    return cls(config.destination.settings, source=f"{config.path}: destination")


# Journal reason of a removal that takes a record's old identifiers out before its new ones go in.
REPLACED_REASON = "identifiers changed: the record as last delivered was removed before the new one"
DUPLICATE_REASON = "duplicate primary key"


@dataclass
class Batch:
    operation: str
    records: list[Record] = field(default_factory=list)
    hashes: dict[str, int | None] = field(default_factory=dict)
    # key -> add | change | remove | replace (the removal of what was last delivered, before a change)
    kinds: dict[str, str] = field(default_factory=dict)
    payloads: dict[str, str] = field(
        default_factory=dict
    )  # key -> delivered fields as JSON (mirror/audience)

    def replaced(self) -> list[str]:
        return [key for key, kind in self.kinds.items() if kind == "replace"]


@dataclass
class RunSummary:
    run_id: str
    sync_name: str
    status: str = "running"
    source_rows: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    invalid: int = 0
    rejected: int = 0
    failed: int = 0
    delivered: int = 0
    retried: int = 0
    requests: int = 0
    splits: int = 0
    duration_s: float = 0.0
    error: str | None = None
    alerts: list[str] = field(default_factory=list)
    started_at: str = ""
    replaced: int = 0  # changed records whose old identifiers were removed first (audiences)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PlanResult:
    sync_name: str
    source: str
    destination: str
    mode: str
    source_rows: int
    counts: dict[str, int]  # add, change, remove, invalid
    operations: dict[str, int]  # destination operation -> records
    batches: int
    invalid_reasons: dict[str, int]
    invalid_samples: list[tuple[str | None, str]]
    requests: list[PlannedRequest]
    replaced: int = 0  # changes sent as a removal of the old identifiers, then an add


def _parse_fields(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``__fields`` JSON of a chunk of diff rows, parsed in one call (a call per row costs twice as
    much: the parser's per-call overhead dominates small records)."""
    raws = [r["__fields"] for r in rows if r.get("__fields") is not None]
    return json.loads("[" + ",".join(raws) + "]") if raws else []


class _Prepared:
    """Turns streamed diff rows into batches and journal entries.

    Full batches collect in ``ready``. A change that drops one of the record's identifiers (an audience
    member's new email) becomes a removal of the record as last delivered, and its add waits in
    ``deferred`` until that removal is acknowledged (``release``), so the vendor never sees the add
    first; a removal that fails drops the add (``drop``) and the record stays pending."""

    def __init__(self, config: SyncConfig, destination: Destination, batch_size: int) -> None:
        self.config = config
        self.destination = destination
        self.batch_size = batch_size
        self.send_op, self.remove_op = config.operations
        self.keep_payload = config.mode in REMOVAL_MODES
        self.identity_aware = self.keep_payload and destination.matches_by_identifier(config.mode)
        # Audiences (and mirrors to vendors that hold people by identifier) drop a member who can no
        # longer be sent; a mirror keyed by primary key (a CRM, a webhook) leaves the record alone.
        self.remove_unsendable = config.mode == "audience" or self.identity_aware
        self.buffers: dict[str, Batch] = {}
        self.ready: list[Batch] = []
        self.deferred: dict[str, tuple[Record, int | None, str, str]] = {}
        self.journal: list[state.JournalEntry] = []
        self.counts: Counter[str] = Counter()
        self.invalid_reasons: Counter[str] = Counter()
        self.invalid_samples: list[tuple[str | None, str]] = []

    def _invalid(self, key: str | None, reason: str, row: dict[str, Any]) -> None:
        """Counted every run; journaled only when the record first became invalid or its reason or
        content changed since (the diff row carries what it was last recorded with)."""
        self.counts["invalid"] += 1
        self.invalid_reasons[reason] += 1
        if len(self.invalid_samples) < 20:
            self.invalid_samples.append((key, reason))
        row_hash = row.get("__hash")
        known = row.get("__inv_reason") == reason and (
            reason == DUPLICATE_REASON or row.get("__inv_hash") == row_hash
        )
        if not known:
            self.journal.append(
                state.JournalEntry(key, self.send_op, "invalid", reason=reason, row_hash=row_hash)
            )

    def _append(self, operation: str, record: Record, row_hash: int | None, kind: str) -> Batch:
        batch = self.buffers.get(operation)
        if batch is None:
            batch = self.buffers[operation] = Batch(operation)
        batch.records.append(record)
        batch.hashes[record.key] = row_hash
        batch.kinds[record.key] = kind
        return batch

    def _full(self, batch: Batch) -> None:
        if len(batch.records) >= self.batch_size:
            self.ready.append(self.buffers.pop(batch.operation))

    def _remove(self, key: str, payload: str | None, kind: str = "remove") -> None:
        # Modes without removals still remove a forgotten person's records (privacy.py).
        fields = json.loads(payload) if payload else {}
        batch = self._append(self.remove_op or "remove", Record(key, fields), None, kind)
        if kind == "remove":
            self.counts["remove"] += 1
        self._full(batch)

    def _send(self, record: Record, row_hash: int | None, raw: str, kind: str) -> None:
        batch = self._append(self.send_op, record, row_hash, kind)
        if self.keep_payload:  # what removal will need: the fields as delivered
            batch.payloads[record.key] = raw
        self._full(batch)

    def _identifiers_dropped(self, payload: str, normalised: dict[str, Any]) -> bool:
        """Whether the record as last delivered carries an identifier the new one does not."""
        old, _ = self.destination.normalise(json.loads(payload))
        if old is None:
            return False
        return bool(self.destination.match_keys(old) - self.destination.match_keys(normalised))

    def feed(self, rows: list[dict[str, Any]]) -> None:
        """Consume diff rows; full batches go to ``ready``."""
        parsed = iter(_parse_fields(rows))
        for row in rows:
            op = row["__op"]
            key = row["__key"]
            if op == "invalid":
                self._invalid(key, row["__reason"], row)
                continue
            if op == "forget":
                reason = row.get("__reason") or "left the source before it was delivered"
                self.journal.append(state.JournalEntry(key, "forget", "skipped", reason=reason))
                continue
            if op == "remove":
                self._remove(key, row["__payload"])
                continue
            raw = row["__fields"]
            fields = next(parsed)
            # Checked here so unsendable records are counted as invalid, never sent; the batch keeps
            # the mapped fields because send_batch normalises them itself (normalising is not
            # idempotent: TikTok's output has no "email" for a second pass to find).
            normalised, reason = self.destination.normalise(fields)
            delivered = row.get("__payload") if self.keep_payload and op == "change" else None
            if normalised is None:
                if delivered and self.remove_unsendable:
                    # It can no longer be sent but the audience holds it: take it out, as when
                    # consent is revoked, so it stops matching. The next run counts it invalid.
                    self._remove(key, delivered)
                else:
                    self._invalid(key, reason or "invalid identifier", row)
                continue
            self.counts[op] += 1
            record = Record(key, fields)
            if delivered and self.identity_aware and self._identifiers_dropped(delivered, normalised):
                self.counts["replace"] += 1
                self.deferred[key] = (record, row["__hash"], raw, op)
                self._remove(key, delivered, kind="replace")
                continue
            self._send(record, row["__hash"], raw, op)

    def release(self, keys: list[str]) -> None:
        """The removals of these keys' old identifiers were acknowledged: their adds may go."""
        for key in keys:
            deferred = self.deferred.pop(key, None)
            if deferred is not None:
                self._send(*deferred)

    def drop(self, keys: list[str]) -> None:
        """The removals were not acknowledged: the adds wait for the next run (state unchanged)."""
        for key in keys:
            self.deferred.pop(key, None)

    def take_ready(self) -> list[Batch]:
        out, self.ready = self.ready, []
        return out

    def flush(self) -> Iterator[Batch]:
        # Removals go first: an identifier that moved from one record to another (a key that changed,
        # two records sharing an email) must be removed before it is added, not after.
        for operation in sorted(self.buffers, key=lambda o: o != (self.remove_op or "remove")):
            batch = self.buffers.pop(operation)
            if batch.records:
                yield batch

    def take_journal(self) -> list[state.JournalEntry]:
        out, self.journal = self.journal, []
        return out


class SyncRun:
    """One run of one sync against an open warehouse."""

    def __init__(
        self,
        config: SyncConfig,
        wh: Warehouse,
        *,
        project: Path | None = None,
        destination: Destination | None = None,
        only_pending: bool = False,
        progress: bool = False,
    ) -> None:
        # Consent widened to what the destination needs (ad platforms: ads_personalization, ad_user_data).
        self.config = privacy.with_required_consent(config)
        self.wh = wh
        self.project = project
        self._destination = destination
        self.only_pending = only_pending
        self.progress = progress
        self.abort = threading.Event()

    # -- shared steps ------------------------------------------------------------------------------

    def _destination_and_context(self) -> tuple[Destination, SyncContext]:
        destination = self._destination or build_destination(self.config)
        context = SyncContext(
            sync_name=self.config.name,
            mode=self.config.mode,
            primary_key=self.config.primary_key,
            state=state.load_destination_state(self.wh, self.config.name),
        )
        return destination, context

    def _stream(self, source: ResolvedSource, chunk: int) -> Iterator[list[dict[str, Any]]]:
        query = diff_query(self.config, source, only_pending=self.only_pending)
        if not privacy.has_requests(self.wh):
            yield from self.wh.stream(query.sql, query.params, batch_size=chunk)
            return
        # Erasure requests: forgotten people are never sent, and every key of theirs on the ledger is
        # removed, whatever the mode and whether or not the build has caught up yet.
        yield from self.wh.stream(privacy.exclusion_sql(query.sql), query.params, batch_size=chunk)
        cls = destination_class(self.config.destination.type, source=str(self.config.path))
        rows = privacy.forgotten_rows(self.wh, self.config.name, privacy.can_remove(cls), cls.name)
        for start in range(0, len(rows), chunk):
            yield rows[start : start + chunk]

    # -- plan ----------------------------------------------------------------------------------------

    def plan(self, samples: int = 2) -> PlanResult:
        """What a run would do, without sending anything: counts and the first requests, exactly."""
        state.ensure_schema(self.wh)
        with SyncLock(self.wh.path, self.config.name):
            state.recover(self.wh, self.config.name)
        source = resolve_source(self.config, self.wh, self.project)
        destination, context = self._destination_and_context()
        try:
            size = self.config.effective_batch_size(destination.limits.max_batch_size)
            prepared = _Prepared(self.config, destination, size)
            operations: Counter[str] = Counter()
            requests: list[PlannedRequest] = []
            batches = 0

            def take(batch: Batch) -> None:
                nonlocal batches
                batches += 1
                operations[batch.operation] += len(batch.records)
                if len(requests) < samples:
                    requests.extend(destination.plan_requests(batch.operation, batch.records, context))
                prepared.release(batch.replaced())  # a plan assumes the removals succeed

            def drain() -> None:
                while batch_list := prepared.take_ready():
                    for batch in batch_list:
                        take(batch)

            for rows in self._stream(source, size):  # consumed to the end: the cursor closes itself
                prepared.feed(rows)
                drain()
                prepared.take_journal()
            while flushed := list(prepared.flush()):
                for batch in flushed:
                    take(batch)
                drain()
            return PlanResult(
                sync_name=self.config.name,
                source=source.describe(),
                destination=self.config.destination.type,
                mode=self.config.mode,
                source_rows=source_row_count(self.wh, source),
                counts={k: prepared.counts.get(k, 0) for k in ("add", "change", "remove", "invalid")},
                operations=dict(operations),
                batches=batches,
                invalid_reasons=dict(prepared.invalid_reasons),
                invalid_samples=prepared.invalid_samples,
                requests=requests[: max(samples, 0)],
                replaced=prepared.counts.get("replace", 0),
            )
        finally:
            if self._destination is None:
                destination.close()

    # -- run -----------------------------------------------------------------------------------------

    def run(self) -> RunSummary:
        state.ensure_schema(self.wh)
        with SyncLock(self.wh.path, self.config.name), duckdb_memory_limit(self.wh):
            state.recover(self.wh, self.config.name)
            source = resolve_source(self.config, self.wh, self.project)
            destination, context = self._destination_and_context()
            try:
                summary = self._run(source, destination, context)
            finally:
                if self._destination is None:
                    destination.close()
            try:  # audit erasure removals, purge what no ledger holds any more
                privacy.reconcile(self.wh)
            except Exception as exc:  # the run is recorded; the next run or `cdp privacy status` retries
                summary.alerts.append(f"erasure bookkeeping deferred: {type(exc).__name__}: {exc}")
            return summary

    def _run(self, source: ResolvedSource, destination: Destination, context: SyncContext) -> RunSummary:
        config, wh = self.config, self.wh
        run_id = f"{config.name}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
        summary = RunSummary(run_id, config.name)
        started = state.start_run(wh, run_id, config.name, config.mode, config.destination.type)
        summary.started_at = started.isoformat()
        t0 = time.monotonic()
        scrub = destination.secret_values()
        interrupted: BaseException | None = None
        try:
            summary.source_rows = source_row_count(wh, source)
            destination.prepare(context)
            state.save_destination_state(wh, config.name, context.state)
            self._deliver(source, destination, context, run_id, summary, scrub)
            summary.status = "partial" if (summary.rejected or summary.failed) else "success"
        except KeyboardInterrupt as exc:
            summary.status, summary.error, interrupted = "interrupted", "interrupted by the user", exc
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            for secret in scrub:
                message = message.replace(secret, "***")
            summary.status, summary.error = "failed", message
        summary.duration_s = round(time.monotonic() - t0, 3)
        with contextlib.suppress(Exception):  # the summary below matters more than the destination's cache
            state.save_destination_state(wh, config.name, context.state)
        previous = state.previous_run(wh, config.name, run_id)
        if config.alerts.enabled or config.alerts.on_failure:
            summary.alerts = alerting.evaluate(config.alerts, summary.as_dict(), previous)
            if summary.alerts and config.alerts.enabled:
                summary.alerts += alerting.send(config.alerts, summary.as_dict(), summary.alerts)
        values = {
            "finished_at": state.utcnow(),
            "status": summary.status,
            "source_rows": summary.source_rows,
            "added": summary.added,
            "changed": summary.changed,
            "removed": summary.removed,
            "invalid": summary.invalid,
            "rejected": summary.rejected,
            "failed": summary.failed,
            "delivered": summary.delivered,
            "retried": summary.retried,
            "requests": summary.requests,
            "duration_s": summary.duration_s,
            "error": summary.error,
            "alerts": "\n".join(summary.alerts) or None,
        }
        state.finish_run(wh, run_id, config.name, values)
        if interrupted is not None:
            raise interrupted
        return summary

    def _deliver(
        self,
        source: ResolvedSource,
        destination: Destination,
        context: SyncContext,
        run_id: str,
        summary: RunSummary,
        scrub: list[str],
    ) -> None:
        config, wh = self.config, self.wh
        limits = destination.limits
        size = config.effective_batch_size(limits.max_batch_size)
        workers = max(1, limits.max_concurrency)
        deliverer = Deliverer(
            destination,
            context,
            config.retry,
            bucket=TokenBucket(limits.requests_per_second),
            abort=self.abort,
            scrub=scrub,
        )
        prepared = _Prepared(config, destination, size)
        bar = _progress(self.progress, config.name)
        inflight: dict[Future[Outcome], Batch] = {}
        terminal: BaseException | None = None

        def commit(done: set[Future[Outcome]]) -> None:
            nonlocal terminal
            for future in done:
                batch = inflight.pop(future)
                try:
                    outcome = future.result()
                except Aborted:
                    # not delivered: the next run's diff picks these records up again
                    prepared.drop(batch.replaced())
                    continue
                except BaseException as exc:  # TerminalError, or a bug: stop sending
                    prepared.drop(batch.replaced())
                    terminal = terminal or exc
                    self.abort.set()
                    continue
                self._commit(batch, outcome, run_id, summary)
                replaced = batch.replaced()
                if replaced:
                    synced = {r[0] for r in outcome.results if r[1] == "synced"}
                    prepared.release([k for k in replaced if k in synced])
                    prepared.drop([k for k in replaced if k not in synced])
                bar.update(len(batch.records))

        def submit(pool: ThreadPoolExecutor, batch: Batch) -> None:
            while len(inflight) >= workers:
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                commit(done)
            if terminal is None:
                inflight[pool.submit(deliverer.deliver, batch.operation, batch.records)] = batch

        def submit_ready(pool: ThreadPoolExecutor) -> None:
            # Waiting for a free worker commits batches, which may release deferred adds: loop.
            while batches := prepared.take_ready():
                for batch in batches:
                    submit(pool, batch)

        def flush_journal(force: bool = False) -> None:
            if force or len(prepared.journal) >= size:
                entries = prepared.take_journal()
                state.write_journal(wh, run_id, config.name, entries)
            summary.invalid = prepared.counts["invalid"]

        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"sync-{config.name}")
        stream = self._stream(source, size)
        streamed = False
        try:
            for rows in stream:
                prepared.feed(rows)
                submit_ready(pool)
                flush_journal()
                if terminal is not None:
                    break
            else:
                streamed = True
            while terminal is None:
                for batch in prepared.flush():  # removals first, then the rest
                    submit(pool, batch)
                submit_ready(pool)
                while inflight:
                    done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                    commit(done)
                    submit_ready(pool)
                if not prepared.buffers:  # adds released by the last removals are sent too
                    break
            while inflight:
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                commit(done)
            flush_journal(force=True)
        except BaseException:
            self.abort.set()
            while inflight:  # keep what was acknowledged before stopping
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                commit(done)
            raise
        finally:
            stream.close()  # release the diff's cursor before the state is folded
            pool.shutdown(wait=True)
            bar.close()
        if terminal is not None:
            raise terminal
        if streamed and not self.only_pending:
            unkeyed = unkeyed_hashes(config, source)
            state.replace_unkeyed(wh, config.name, run_id, unkeyed.sql, unkeyed.params)

    def _commit(self, batch: Batch, outcome: Outcome, run_id: str, summary: RunSummary) -> None:
        results = outcome.results
        keys = [r[0] for r in results]
        statuses = [r[1] for r in results]
        kinds = [batch.kinds.get(k, "change") for k in keys]
        payloads = batch.payloads
        state.write_journal_columns(
            self.wh,
            run_id,
            self.config.name,
            {
                "record_key": keys,
                "operation": [batch.operation] * len(results),
                "status": statuses,
                "http_status": [r[2] for r in results],
                "reason": [
                    REPLACED_REASON if kind == "replace" and st == "synced" else r[3]
                    for r, kind, st in zip(results, kinds, statuses, strict=True)
                ],
                "row_hash": [batch.hashes.get(k) for k in keys],
                "payload": [
                    payloads.get(k) if st == "synced" else None for k, st in zip(keys, statuses, strict=True)
                ]
                if payloads
                else [None] * len(results),
            },
        )
        counted = Counter(kinds)
        summary.added += counted["add"]
        summary.changed += counted["change"]
        summary.removed += counted["remove"]
        # The removal half of a change is not a delivery of its own: its add is counted when it lands.
        tally = Counter(
            st for st, kind in zip(statuses, kinds, strict=True) if kind != "replace" or st != "synced"
        )
        summary.replaced += sum(
            1 for st, kind in zip(statuses, kinds, strict=True) if kind == "replace" and st == "synced"
        )
        summary.delivered += tally["synced"]
        summary.rejected += tally["rejected"]
        summary.failed += tally["failed"]
        summary.retried += outcome.retries
        summary.requests += outcome.requests
        summary.splits += outcome.splits


class _NoBar:
    def update(self, n: int) -> None:
        return

    def close(self) -> None:
        return


def _progress(enabled: bool, name: str) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(desc=f"sync {name}", unit="rec", unit_scale=True, leave=False)


def run_sync(
    config: SyncConfig,
    wh: Warehouse,
    *,
    project: Path | None = None,
    destination: Destination | None = None,
    only_pending: bool = False,
    progress: bool = False,
) -> RunSummary:
    """Run one sync. Problems before the run starts (config, missing source) raise; failures during the
    run are recorded in ``cdp_sync.sync_runs`` and returned in the summary's status and error."""
    return SyncRun(
        config, wh, project=project, destination=destination, only_pending=only_pending, progress=progress
    ).run()


def plan_sync(
    config: SyncConfig,
    wh: Warehouse,
    *,
    project: Path | None = None,
    destination: Destination | None = None,
    samples: int = 2,
) -> PlanResult:
    """Dry run: what would be sent, with the exact first requests; nothing goes over the network."""
    return SyncRun(config, wh, project=project, destination=destination).plan(samples)


def reset_sync(config: SyncConfig, wh: Warehouse) -> int:
    """Full resync on the next run (removals still computed from the ledger). Returns ledger size kept."""
    state.ensure_schema(wh)
    with SyncLock(wh.path, config.name):
        return state.reset(wh, config.name)
