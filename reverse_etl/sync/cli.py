"""``cdp sync``: list, plan, run, retry, reset, status and history of the syncs in ``syncs/``.

A thin layer: it finds the sync files and the warehouse, calls :mod:`reverse_etl.sync.engine`, prints.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from reverse_etl.destinations.base import ConfigError
from reverse_etl.project import ProjectError, syncs_dir
from reverse_etl.sync import state
from reverse_etl.sync.config import SyncConfig, load_sync, load_syncs
from reverse_etl.sync.engine import PlanResult, RunSummary, plan_sync, reset_sync, run_sync
from reverse_etl.sync.lock import SyncLock
from reverse_etl.warehouse import SYNC_SCHEMA, Warehouse, WarehouseError, location_exists, lock_anchor


def _dir(obj: Any) -> Path:
    return syncs_dir(obj.project)


def _load(obj: Any, name: str) -> SyncConfig:
    try:
        return load_sync(_dir(obj), name)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def _warehouse(obj: Any, *, read_only: bool = False) -> Iterator[Warehouse]:
    try:
        wh = Warehouse(obj.warehouse, read_only=read_only)
    except (ProjectError, WarehouseError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield wh
    finally:
        wh.close()


def _next_run(schedule: str | None) -> str:
    if not schedule:
        return "manual"
    from croniter import croniter

    nxt = croniter(schedule, datetime.now(timezone.utc)).get_next(datetime)
    return f"{schedule}  (next {nxt:%Y-%m-%d %H:%M} UTC)"


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    click.echo("  ".join("-" * w for w in widths))
    for r in rows:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@click.group("sync")
def sync_group() -> None:
    """Reverse-ETL syncs: one YAML file per sync in syncs/ (or CDP_SYNCS_DIR)."""


@sync_group.command("list")
@click.pass_obj
def list_cmd(obj: Any) -> None:
    """Validate and list every sync definition."""
    directory = _dir(obj)
    syncs, errors = load_syncs(directory)
    if not syncs and not errors:
        click.echo(f"no syncs in {directory}: add one YAML file per sync (see docs/syncs.md)")
        return
    if syncs:
        rows = [
            [c.name, c.source.describe(), c.destination.type, c.mode, _next_run(c.schedule)]
            for c in sorted(syncs.values(), key=lambda c: c.name)
        ]
        _table(rows, ["name", "source", "destination", "mode", "schedule"])
    for err in errors:
        click.secho(f"invalid: {err}", fg="red", err=True)
    if errors:
        raise click.exceptions.Exit(1)


def _show_body(body: Any, max_records: int | None) -> str:
    if isinstance(body, (bytes, bytearray)):
        text = body.decode(errors="replace")
        try:
            body = json.loads(text)
        except ValueError:
            return text if max_records is None else "\n".join(text.splitlines()[: max_records + 1])
    if body is None:
        return ""
    shown = body
    hidden = 0
    if max_records is not None:
        data = body.get("data") if isinstance(body, dict) else None
        if (
            isinstance(data, dict)
            and isinstance(data.get("records"), list)
            and len(data["records"]) > max_records
        ):
            hidden = len(data["records"]) - max_records
            shown = {**body, "data": {**data, "records": data["records"][:max_records]}}
        elif isinstance(body, list) and len(body) > max_records:
            hidden = len(body) - max_records
            shown = body[:max_records]
    out = json.dumps(shown, indent=2, default=str)
    if hidden:
        out += f"\n  ... {hidden} more records in this request (use --full to see them)"
    return out


def _print_plan(plan: PlanResult, full: bool, max_records: int) -> None:
    c = plan.counts
    click.echo(
        f"sync {plan.sync_name}: {plan.mode} from {plan.source} to {plan.destination} ({plan.source_rows} source rows)"
    )
    click.echo(
        f"  creates: {c['add']}  updates: {c['change']}  deletes: {c['remove']}  invalid: {c['invalid']}"
    )
    if plan.replaced:
        click.echo(
            f"  {plan.replaced} updates drop an identifier: each removes the record as last delivered, "
            "then adds the new one"
        )
    if plan.operations:
        ops = ", ".join(f"{op} {n}" for op, n in sorted(plan.operations.items()))
        click.echo(f"  requests: {plan.batches} batches ({ops})")
    for reason, n in sorted(plan.invalid_reasons.items()):
        click.echo(f"  invalid, {reason}: {n}")
    for key, reason in plan.invalid_samples[:5]:
        click.echo(f"    e.g. key {key!r}: {reason}")
    if not plan.requests:
        click.echo("  nothing to send")
    for i, (method, url, headers, body) in enumerate(plan.requests, 1):
        click.echo(f"\n--- request {i}: {method} {url}")
        for k, v in headers.items():
            click.echo(f"{k}: {v}")
        click.echo("")
        click.echo(_show_body(body, None if full else max_records))


@sync_group.command("plan")
@click.argument("name")
@click.option("--samples", default=1, show_default=True, help="How many requests to show.")
@click.option("--records", "max_records", default=3, show_default=True, help="Records shown per request.")
@click.option("--full", is_flag=True, help="Show every record of the sample requests.")
@click.pass_obj
def plan_cmd(obj: Any, name: str, samples: int, max_records: int, full: bool) -> None:
    """Dry run: what NAME would create, update and delete, and the exact requests; sends nothing."""
    config = _load(obj, name)
    with _warehouse(obj) as wh:
        try:
            plan = plan_sync(config, wh, project=obj.project, samples=samples)
        except (ConfigError, ProjectError, WarehouseError) as exc:
            raise click.ClickException(str(exc)) from None
    _print_plan(plan, full, max_records)


def _print_summary(s: RunSummary) -> None:
    colour = {"success": "green", "partial": "yellow"}.get(s.status, "red")
    click.secho(
        f"sync {s.sync_name}: {s.status} in {s.duration_s:.1f}s: {s.added} added, {s.changed} changed, "
        f"{s.removed} removed, {s.invalid} invalid, {s.rejected} rejected, {s.failed} failed "
        f"({s.delivered} delivered in {s.requests} requests, {s.retried} retries) [run {s.run_id}]",
        fg=colour,
    )
    if s.replaced:
        click.echo(f"  {s.replaced} changed records had their old identifiers removed first")
    if s.error:
        click.secho(f"  error: {s.error}", fg="red", err=True)
    if s.rejected or s.failed:
        click.echo(
            f"  rejected/failed records are retried on the next run; see `cdp sync history {s.sync_name}`"
        )
    for alert in s.alerts:
        click.secho(f"  alert: {alert}", fg="yellow")


def _run_one(obj: Any, config: SyncConfig, *, only_pending: bool, progress: bool) -> RunSummary:
    # Take the sync's lock before opening the warehouse, so a second run fails at once.
    with SyncLock(lock_anchor(obj.warehouse), config.name), _warehouse(obj) as wh:
        return run_sync(config, wh, project=obj.project, only_pending=only_pending, progress=progress)


def _run_many(obj: Any, configs: list[SyncConfig], *, only_pending: bool, progress: bool | None) -> None:
    show = sys.stderr.isatty() if progress is None else progress
    failed = 0
    for config in configs:
        try:
            summary = _run_one(obj, config, only_pending=only_pending, progress=show)
        except (ConfigError, ProjectError, WarehouseError) as exc:
            click.secho(f"sync {config.name}: not run: {exc}", fg="red", err=True)
            failed += 1
            continue
        _print_summary(summary)
        failed += summary.status == "failed"
    if failed:
        raise click.ClickException(f"{failed} of {len(configs)} sync(s) failed")


@sync_group.command("run")
@click.argument("names", nargs=-1)
@click.option("--all", "run_all", is_flag=True, help="Run every sync in syncs/.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when on a terminal).")
@click.pass_obj
def run_cmd(obj: Any, names: tuple[str, ...], run_all: bool, progress: bool | None) -> None:
    """Send what changed since the last run of NAME(s)."""
    if run_all == bool(names):
        raise click.UsageError("give sync name(s) or --all")
    if run_all:
        syncs, errors = load_syncs(_dir(obj))
        for err in errors:
            click.secho(f"invalid, skipped: {err}", fg="red", err=True)
        configs = [syncs[n] for n in sorted(syncs)]
        if not configs:
            raise click.ClickException(f"no valid syncs in {_dir(obj)}")
    else:
        configs = [_load(obj, n) for n in names]
    _run_many(obj, configs, only_pending=False, progress=progress)


@sync_group.command("retry")
@click.argument("name")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when on a terminal).")
@click.pass_obj
def retry_cmd(obj: Any, name: str, progress: bool | None) -> None:
    """Resend only the records of NAME that were rejected or failed before."""
    _run_many(obj, [_load(obj, name)], only_pending=True, progress=progress)


@sync_group.command("reset")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def reset_cmd(obj: Any, name: str, yes: bool) -> None:
    """Forget what NAME sent: the next run resends every record (and still removes, for mirror and
    audience syncs, what it added that left the source)."""
    config = _load(obj, name)
    if not yes:
        click.confirm(f"The next run of {name} will resend every record. Continue?", abort=True)
    with SyncLock(lock_anchor(obj.warehouse), config.name), _warehouse(obj) as wh:
        kept = reset_sync(config, wh)
    click.echo(f"sync {name} reset: next run is a full resync ({kept} records stay on the ownership ledger)")


def _fmt_time(value: Any) -> str:
    return (
        value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else (str(value) if value else "-")
    )


@sync_group.command("status")
@click.pass_obj
def status_cmd(obj: Any) -> None:
    """Last run, pending records and schedule of every sync."""
    syncs, errors = load_syncs(_dir(obj))
    runs: dict[str, dict[str, Any]] = {}
    pending: dict[str, dict[str, int]] = {}
    if location_exists(obj.warehouse):
        with _warehouse(obj, read_only=True) as wh:
            if state.schema_exists(wh):
                for r in wh.query(
                    f"select * from {SYNC_SCHEMA}.sync_runs qualify row_number() over "
                    "(partition by sync_name order by started_at desc) = 1"
                ):
                    runs[r["sync_name"]] = r
                pending = state.pending_counts(wh)
    names = sorted(set(syncs) | set(runs))
    if not names:
        click.echo(f"no syncs in {_dir(obj)}")
    rows = []
    for n in names:
        r = runs.get(n)
        p = pending.get(n, {})
        last = (
            f"{r['status']} {_fmt_time(r['started_at'])} (+{r['added']} ~{r['changed']} -{r['removed']} "
            f"!{r['invalid']} x{r['rejected'] + r['failed']})"
            if r
            else "never run"
        )
        schedule = _next_run(syncs[n].schedule) if n in syncs else "(no sync file)"
        rows.append([n, last, str(p.get("pending", 0)), str(p.get("owned", 0)), schedule])
    if rows:
        _table(
            rows,
            [
                "name",
                "last run (+added ~changed -removed !invalid xrejected)",
                "pending",
                "owned",
                "schedule",
            ],
        )
    for err in errors:
        click.secho(f"invalid: {err}", fg="red", err=True)


@sync_group.command("history")
@click.argument("name")
@click.option("--limit", default=20, show_default=True)
@click.option(
    "--records",
    "show_records",
    is_flag=True,
    help="Also list the rejected, failed and invalid records of the last run.",
)
@click.pass_obj
def history_cmd(obj: Any, name: str, limit: int, show_records: bool) -> None:
    """Recent runs of NAME."""
    if not location_exists(obj.warehouse):
        raise click.ClickException(f"warehouse {obj.database} does not exist: no runs yet")
    with _warehouse(obj, read_only=True) as wh:
        if not state.schema_exists(wh):
            click.echo("no runs yet")
            return
        rows = wh.query(
            f"select * from {SYNC_SCHEMA}.sync_runs where sync_name = ? order by started_at desc limit ?",
            [name, limit],
        )
        if not rows:
            click.echo(f"no runs of {name} yet")
            return
        _table(
            [
                [
                    r["run_id"],
                    _fmt_time(r["started_at"]),
                    r["status"],
                    f"{r['duration_s'] or 0:.1f}s",
                    str(r["added"]),
                    str(r["changed"]),
                    str(r["removed"]),
                    str(r["invalid"]),
                    str(r["rejected"]),
                    str(r["failed"]),
                    str(r["retried"]),
                    (r["error"] or "")[:80],
                ]
                for r in rows
            ],
            [
                "run",
                "started (UTC)",
                "status",
                "time",
                "added",
                "changed",
                "removed",
                "invalid",
                "rejected",
                "failed",
                "retried",
                "error",
            ],
        )
        if show_records:
            bad = wh.query(
                f"select record_key, operation, status, http_status, reason from {SYNC_SCHEMA}.sync_records "
                "where run_id = ? and status in ('rejected', 'failed', 'invalid') order by seq limit 50",
                [rows[0]["run_id"]],
            )
            click.echo("")
            if not bad:
                click.echo("no rejected, failed or newly invalid records in the last run")
            for b in bad:
                click.echo(
                    f"  {b['record_key']!s:<20} {b['operation']:<7} {b['status']:<8} {b['http_status'] or '':<4} {b['reason']}"
                )
            # An invalid record is journaled when it becomes invalid, not on every run: list them all.
            invalid = state.invalid_records(wh, name)
            if invalid:
                click.echo(f"\ninvalid now ({rows[0]['invalid']} in the last run, keyed ones listed):")
            for r in invalid:
                click.echo(f"  {r['record_key']!s:<20} {r['reason']}")
