"""Sending batches: pacing, retries and isolating bad records.

* A token bucket paces requests to the destination's documented rate; a throttle answer with
  ``Retry-After`` pauses every worker, not just the one that got it.
* Transient failures (throttling, 5xx, timeouts) are retried with exponential backoff and full jitter,
  never sooner than the destination asked; after ``max_attempts`` the batch's records are marked
  ``failed`` and retried on the next run.
* A batch the destination refuses because of its content is split in halves until the bad records are
  alone; they are marked ``rejected`` and the rest is delivered.
* A terminal error (bad credentials, endpoint gone) stops the run.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from reverse_etl.destinations.base import (
    BatchRejected,
    Destination,
    Record,
    SyncContext,
    TransientError,
)
from reverse_etl.sync.config import RetryConfig


class Aborted(Exception):
    """The run is stopping (terminal error elsewhere, interrupt): the batch was not delivered."""


class TokenBucket:
    """Paces calls to ``rate`` per second, shared by the worker threads.

    It starts with no burst credit, but a worker that comes late for its slot (a slow response, a busy
    CPU) may catch up by up to ``catch_up`` seconds of slots, so the achieved rate stays at the limit
    instead of drifting below it; never more than ``rate * catch_up`` calls close together."""

    def __init__(self, rate: float | None, catch_up: float = 0.2) -> None:
        self.rate = rate
        self.interval = 1.0 / rate if rate else 0.0
        self.catch_up = max(self.interval, catch_up) if rate else 0.0
        self._lock = threading.Lock()
        self._next = time.monotonic()
        self._paused_until = 0.0

    def hold_off(self, seconds: float) -> None:
        """The destination asked everyone to wait (Retry-After)."""
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def acquire(self, abort: threading.Event | None = None) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now - self.catch_up + self.interval, self._paused_until)
            self._next = slot + self.interval
        _sleep_until(slot, abort)


def _sleep_until(deadline: float, abort: threading.Event | None) -> None:
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        if abort is not None:
            if abort.wait(min(remaining, 0.5)):
                raise Aborted("run stopping")
        else:
            time.sleep(remaining)


@dataclass
class Outcome:
    """Per record: (key, status, http_status, reason) with status synced | rejected | failed."""

    results: list[tuple[str, str, int | None, str | None]] = field(default_factory=list)
    retries: int = 0
    requests: int = 0
    splits: int = 0


class Deliverer:
    """Sends one batch with pacing, retries and splitting. Thread-safe: one instance per run."""

    def __init__(
        self,
        destination: Destination,
        context: SyncContext,
        retry: RetryConfig,
        *,
        bucket: TokenBucket | None = None,
        abort: threading.Event | None = None,
        scrub: Sequence[str] = (),
    ) -> None:
        self.destination = destination
        self.context = context
        self.retry = retry
        limits = destination.limits
        self.bucket = bucket or TokenBucket(limits.requests_per_second)
        self.abort = abort or threading.Event()
        self.scrub_values = [s for s in scrub if s]

    def scrub(self, text: str) -> str:
        for secret in self.scrub_values:
            text = text.replace(secret, "***")
        return text

    def backoff(self, attempt: int) -> float:
        """Exponential with jitter: uniform in [cap/2, cap], cap = min(max_delay, initial * 2^(attempt-1)),
        so retries of many workers spread out but never come back immediately."""
        cap = min(self.retry.max_delay, self.retry.initial_delay * (2 ** (attempt - 1)))
        return random.uniform(cap / 2, cap)

    def deliver(self, operation: str, records: Sequence[Record]) -> Outcome:
        outcome = Outcome()
        self._deliver(operation, list(records), outcome)
        return outcome

    def _deliver(self, operation: str, records: list[Record], outcome: Outcome) -> None:
        try:
            self._send_with_retry(operation, records, outcome)
        except BatchRejected as exc:
            if len(records) == 1:
                outcome.results.append((records[0].key, "rejected", exc.http_status, self.scrub(str(exc))))
                return
            outcome.splits += 1
            mid = len(records) // 2
            self._deliver(operation, records[:mid], outcome)
            self._deliver(operation, records[mid:], outcome)

    def _send_with_retry(self, operation: str, records: list[Record], outcome: Outcome) -> None:
        attempt = 0
        while True:
            if self.abort.is_set():
                raise Aborted("run stopping")
            self.bucket.acquire(self.abort)
            attempt += 1
            outcome.requests += 1
            try:
                results = self.destination.send_batch(operation, records, self.context)
            except TransientError as exc:
                if attempt >= self.retry.max_attempts:
                    reason = self.scrub(f"gave up after {attempt} attempts: {exc}")
                    outcome.results.extend((r.key, "failed", exc.http_status, reason) for r in records)
                    return
                wait = self.backoff(attempt)
                if exc.retry_after is not None:
                    self.bucket.hold_off(exc.retry_after)
                    wait = max(wait, exc.retry_after)
                outcome.retries += 1
                _sleep_until(time.monotonic() + wait, self.abort)
                continue
            by_key = {r.key: r for r in results}
            for record in records:
                res = by_key.get(record.key)
                if res is None:
                    outcome.results.append(
                        (record.key, "failed", None, "destination returned no result for this record")
                    )
                elif res.ok:
                    outcome.results.append((record.key, "synced", res.http_status, None))
                else:
                    reason = self.scrub(res.reason or "rejected by the destination")
                    outcome.results.append((record.key, "rejected", res.http_status, reason))
            return
