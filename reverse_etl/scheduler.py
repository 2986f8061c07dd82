"""`cdp schedule`: a foreground scheduler that runs each sync on its ``schedule`` cron (UTC).

Rules:

* A sync never overlaps itself. Within the scheduler, a due time that comes while the sync's previous run
  is still going is skipped (and counted as missed). Across processes, the engine's lock decides: a run
  that finds it held (a `cdp sync run` by hand, another scheduler) is skipped and logged.
* Missed runs are detected and alerted through the sync's own alert settings: scheduled times that
  passed without a run, because the machine slept, the scheduler was down (found from the sync's last
  run in ``cdp_sync.sync_runs`` at start-up) or the previous run took too long. The scheduler then runs
  the sync once, late, rather than once per missed time.
* A sync that never ran, or whose latest scheduled time passed since its last run, runs at start-up.
* SIGTERM or SIGINT stops scheduling; running syncs get ``grace`` seconds to finish, then are told to
  stop sending (in-flight batches are committed; the rest is sent by the next run). A second signal
  stops them at once. The engine's state is crash-safe either way.

Runs go on a worker thread, one at a time: DuckDB has one writer, and the sync engine's schema set-up
conflicts with itself in concurrent transactions. A long run delays the others: they run late, and a
sync whose next due time passes while it waits is reported missed.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from croniter import croniter

from reverse_etl.sync import alerts as alerting
from reverse_etl.sync.config import SyncConfig
from reverse_etl.warehouse import SYNC_SCHEMA, Location

log = logging.getLogger("cdp.schedule")

MAX_COUNTED = 10_000  # missed times counted before giving up counting (a minutely sync asleep a week)


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class Event:
    at: datetime
    sync_name: str
    kind: str  # due | started | finished | skipped | missed | failed | abandoned | alert_failed
    scheduled_for: datetime | None = None
    detail: str = ""

    def line(self) -> str:
        when = f" (scheduled {self.scheduled_for:%Y-%m-%d %H:%M})" if self.scheduled_for else ""
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.sync_name}: {self.kind}{when}" + (
            f": {self.detail}" if self.detail else ""
        )


@dataclass
class _Slot:
    config: SyncConfig
    next_at: datetime
    thread: threading.Thread | None = None
    run: Any = None  # the SyncRun in progress, to ask it to stop
    started_at: datetime | None = None
    queued_for: datetime | None = None  # due, waiting for a free worker

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


def due_times(cron: str, after: datetime, until: datetime, limit: int = MAX_COUNTED) -> list[datetime]:
    """Scheduled times in ``(after, until]``, at most ``limit``."""
    it = croniter(cron, after)
    out: list[datetime] = []
    while len(out) < limit:
        nxt = it.get_next(datetime)
        if nxt > until:
            break
        out.append(nxt)
    return out


def _fmt_times(times: list[datetime]) -> str:
    shown = ", ".join(f"{t:%Y-%m-%d %H:%M}" for t in times[:3])
    return shown + (f" and {len(times) - 3} more" if len(times) > 3 else "")


class Scheduler:
    """Runs syncs on their crons. ``clock`` is injectable so tests can move time without waiting."""

    def __init__(
        self,
        project: Path,
        database: Location,
        configs: Iterable[SyncConfig],
        *,
        tick: float = 5.0,
        grace: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.project = project
        self.database = database
        self.configs = [c for c in configs if c.schedule]
        self.tick = tick
        self.grace = grace
        self.clock = clock
        self.say = say or log.info
        self.events: list[Event] = []
        self.stop_requested = threading.Event()
        self.abort_requested = threading.Event()
        self.slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()
        self._previous_handlers: dict[int, Any] = {}

    # -- events and alerts ---------------------------------------------------------------------------

    def _event(
        self, slot: _Slot, kind: str, scheduled_for: datetime | None = None, detail: str = ""
    ) -> Event:
        event = Event(self.clock(), slot.config.name, kind, scheduled_for, detail)
        with self._lock:
            self.events.append(event)
        self.say(event.line())
        return event

    def _alert(self, slot: _Slot, status: str, message: str) -> None:
        """Through the sync's alert settings (Slack and/or webhook); problems are logged, never raised."""
        config = slot.config
        if not config.alerts.enabled:
            return
        summary = {
            "sync_name": config.name,
            "status": status,
            "error": message,
            "at": self.clock().isoformat(),
        }
        for problem in alerting.send(config.alerts, summary, [message]):
            self._event(slot, "alert_failed", detail=problem)

    def _missed(self, slot: _Slot, times: list[datetime], why: str) -> None:
        if not times:
            return
        count = f"{len(times)}+" if len(times) >= MAX_COUNTED else str(len(times))
        message = f"sync {slot.config.name}: {count} scheduled run(s) missed ({_fmt_times(times)}): {why}"
        self._event(slot, "missed", times[-1], message)
        self._alert(slot, "missed", message)

    # -- start-up ----------------------------------------------------------------------------------------

    def _last_runs(self) -> dict[str, datetime]:
        from reverse_etl.warehouse import Warehouse, location_exists

        if not location_exists(self.database):
            return {}
        with Warehouse(self.database, read_only=True) as wh:
            if not wh.relation_exists(SYNC_SCHEMA, "sync_runs"):
                return {}
            rows = wh.query(
                f"select sync_name, max(started_at) as started_at from {SYNC_SCHEMA}.sync_runs group by sync_name"
            )
        return {r["sync_name"]: r["started_at"] for r in rows}

    def start(self) -> None:
        """Plan the first runs: due at once when never run or a scheduled time passed since the last run."""
        now = self.clock()
        last = self._last_runs()
        for config in self.configs:
            assert config.schedule is not None
            slot = _Slot(config, croniter(config.schedule, now).get_next(datetime))
            self.slots[config.name] = slot
            previous = last.get(config.name)
            if previous is None:
                slot.queued_for = now
                self._event(slot, "due", now, "never run: running now")
                continue
            passed = due_times(config.schedule, previous, now)
            if passed:
                self._missed(
                    slot,
                    passed[:-1],
                    f"no run since {previous:%Y-%m-%d %H:%M} (scheduler down or machine asleep)",
                )
                slot.queued_for = passed[-1]
                self._event(slot, "due", passed[-1], "running late")

    # -- the loop ----------------------------------------------------------------------------------------

    def step(self) -> None:
        """One tick: find what is due, note what was missed, start what can start."""
        now = self.clock()
        for slot in self.slots.values():
            if slot.next_at > now:
                continue
            assert slot.config.schedule is not None
            passed = [slot.next_at, *due_times(slot.config.schedule, slot.next_at, now)]
            slot.next_at = croniter(slot.config.schedule, now).get_next(datetime)
            if slot.running:
                started = f"{slot.started_at:%Y-%m-%d %H:%M:%S}" if slot.started_at else "earlier"
                self._event(slot, "skipped", passed[-1], f"previous run (started {started}) is still running")
                self._missed(slot, passed, f"the previous run, started {started}, was still running")
                continue
            if slot.queued_for is not None:
                self._missed(
                    slot, [slot.queued_for, *passed[:-1]], "no worker was free before the next run was due"
                )
            else:
                self._missed(
                    slot, passed[:-1], "the scheduler was not scheduled (machine asleep or overloaded)"
                )
            slot.queued_for = passed[-1]
        self.launch()

    def launch(self) -> None:
        """Start the longest-waiting queued run, unless a run is going (one at a time) or stopping."""
        if self.stop_requested.is_set() or self.running():
            return
        queued = [s for s in self.slots.values() if s.queued_for is not None]
        if not queued:
            return
        slot = min(queued, key=lambda s: (s.queued_for, s.config.name))
        assert slot.queued_for is not None
        scheduled_for, slot.queued_for = slot.queued_for, None
        slot.started_at = self.clock()
        slot.thread = threading.Thread(
            target=self._run,
            args=(slot, scheduled_for),
            name=f"cdp-schedule-{slot.config.name}",
            daemon=True,
        )
        slot.thread.start()

    def _run(self, slot: _Slot, scheduled_for: datetime) -> None:
        from reverse_etl.destinations.base import ConfigError
        from reverse_etl.project import ProjectError
        from reverse_etl.sync.engine import SyncRun
        from reverse_etl.sync.lock import SyncLock, SyncLocked
        from reverse_etl.warehouse import Warehouse, WarehouseError, lock_anchor

        config = slot.config
        try:
            with SyncLock(lock_anchor(self.database), config.name):
                self._event(slot, "started", scheduled_for)
                with Warehouse(self.database) as wh:
                    run = SyncRun(config, wh, project=self.project)
                    slot.run = run
                    if self.abort_requested.is_set():
                        run.abort.set()
                    summary = run.run()
        except SyncLocked as exc:
            self._event(slot, "skipped", scheduled_for, f"lock held: {exc}")
            return
        except (ConfigError, ProjectError, WarehouseError) as exc:
            self._event(slot, "failed", scheduled_for, str(exc))
            if config.alerts.on_failure:
                self._alert(slot, "failed", f"sync {config.name} could not run: {exc}")
            return
        except Exception as exc:  # a bug must not kill the scheduler
            self._event(slot, "failed", scheduled_for, f"{type(exc).__name__}: {exc}")
            if config.alerts.on_failure:
                self._alert(slot, "failed", f"sync {config.name} crashed: {type(exc).__name__}: {exc}")
            return
        finally:
            slot.run = None
        detail = (
            f"{summary.status}: +{summary.added} ~{summary.changed} -{summary.removed} "
            f"!{summary.invalid} x{summary.rejected + summary.failed} in {summary.duration_s:.1f}s"
        )
        self._event(
            slot, "finished", scheduled_for, detail + (f" ({summary.error})" if summary.error else "")
        )

    # -- running and stopping ------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: first stops scheduling (runs finish), second stops the runs."""
        if threading.current_thread() is not threading.main_thread():
            return

        def handle(signum: int, _frame: Any) -> None:
            if self.stop_requested.is_set():
                self.say(f"signal {signum} again: stopping running syncs now")
                self._abort_runs()
            else:
                self.say(f"signal {signum}: no new runs; waiting up to {self.grace:.0f}s for running syncs")
            self.stop_requested.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous_handlers[signum] = signal.signal(signum, handle)

    def restore_signal_handlers(self) -> None:
        for signum, previous in self._previous_handlers.items():
            signal.signal(signum, previous)
        self._previous_handlers.clear()

    def _abort_runs(self) -> None:
        self.abort_requested.set()
        for slot in self.slots.values():
            if slot.run is not None:
                slot.run.abort.set()

    def running(self) -> list[str]:
        return [name for name, slot in self.slots.items() if slot.running]

    def drain(self, timeout: float) -> None:
        """Wait for running syncs; past ``timeout``, tell them to stop and wait for them to commit."""
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.running():
            for name in self.running():
                self._event(
                    self.slots[name], "abandoned", detail="still running at shutdown: told to stop sending"
                )
            self._abort_runs()
        for slot in self.slots.values():
            if slot.thread is not None:
                slot.thread.join()

    def serve(
        self,
        *,
        once: bool = False,
        until: datetime | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> list[Event]:
        """Run until a signal, ``until`` (scheduler clock) or, with ``once``, the first pass's runs end."""
        try:
            return self._serve(once, until, sleep)
        finally:
            self.restore_signal_handlers()

    def _serve(self, once: bool, until: datetime | None, sleep: Callable[[float], None]) -> list[Event]:
        self.start()
        self.launch()
        if once:
            while self.running():
                for slot in self.slots.values():
                    if slot.thread is not None:
                        slot.thread.join()
                self.launch()
            return self.events
        while not self.stop_requested.is_set():
            sleep(self.tick)
            if self.stop_requested.is_set() or (until is not None and self.clock() >= until):
                break
            self.step()
        self.drain(self.grace)
        return self.events


def parse_until(value: str, now: datetime) -> datetime:
    """``--until``: seconds from now (``90``, ``1.5``) or an ISO time in UTC (``2026-05-01T06:00``)."""
    try:
        return now + timedelta(seconds=float(value))
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"--until {value!r}: give seconds (e.g. 3600) or a UTC time (e.g. 2026-05-01T06:00)"
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


def upcoming(configs: Iterable[SyncConfig], now: datetime) -> list[dict[str, Any]]:
    """Each scheduled sync with its next run, for the start-up banner."""
    return [
        {"sync": c.name, "schedule": c.schedule, "next": croniter(c.schedule, now).get_next(datetime)}
        for c in configs
        if c.schedule
    ]
