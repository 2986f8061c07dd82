"""`cdp run`, `cdp schedule`, `cdp check` and `cdp privacy`: thin commands over orchestrate.py,
scheduler.py, checks.py and privacy.py."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import click

from reverse_etl.destinations.base import ConfigError
from reverse_etl.display import render_table
from reverse_etl.project import ProjectError, syncs_dir
from reverse_etl.warehouse import Warehouse, WarehouseError, location_exists


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


# -- cdp run ---------------------------------------------------------------------------------------


@click.command("run", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--sync", "sync_names", multiple=True, help="Run only this sync (repeatable; default: all).")
@click.argument("dbt_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def run_command(obj: Any, sync_names: tuple[str, ...], dbt_args: tuple[str, ...]) -> None:
    """`dbt build` (DBT_ARGS passed through), then every sync whose source built and passed its tests.

    Exit code: 0 all good; 1 a sync failed, was skipped or is invalid; 2 the build failed (syncs whose
    inputs were unaffected still ran). For cron and CI: `cdp run --select +segment_members`."""
    from reverse_etl.orchestrate import run_pipeline, summary_rows

    try:
        result = run_pipeline(
            obj.project,
            obj.warehouse,
            dbt_args=dbt_args,
            syncs_directory=syncs_dir(obj.project),
            sync_names=sync_names,
            say=lambda line: click.echo(line, err=True),
        )
    except (ConfigError, ProjectError, WarehouseError) as exc:
        raise _fail(exc) from None
    build = result.build
    if result.build_ok:
        click.secho("dbt build passed", fg="green")
    else:
        click.secho("dbt build failed", fg="red")
        for failure in (build.failures if build else [])[:20]:
            click.secho(f"  {failure}", fg="red")
        if result.build_error:
            click.secho(f"  {result.build_error}", fg="red")
    for err in result.invalid:
        click.secho(f"invalid sync file, not run: {err}", fg="red")
    for step in result.privacy_steps:
        click.echo(f"privacy: request {step['request_id']}: {step['step'].replace('_', ' ')}")
    rows = summary_rows(result)
    click.echo(render_table(rows) if rows else "no syncs to run")
    ran = sum(1 for o in result.outcomes if o.ok)
    colour = "green" if result.exit_code == 0 else "red"
    click.secho(f"{ran} of {len(result.outcomes)} sync(s) ran in {result.seconds:.0f}s", fg=colour)
    raise click.exceptions.Exit(result.exit_code)


# -- cdp schedule ----------------------------------------------------------------------------------


@click.command("schedule")
@click.option("--sync", "sync_names", multiple=True, help="Schedule only this sync (repeatable).")
@click.option(
    "--once", is_flag=True, help="Run what is due now (never run, or missed since the last run), then exit."
)
@click.option(
    "--until", "until", help="Stop after this many seconds, or at this UTC time (2026-05-01T06:00)."
)
@click.option(
    "--tick", type=click.FloatRange(0.01), default=5.0, show_default=True, help="Seconds between checks."
)
@click.option(
    "--grace",
    type=click.FloatRange(0),
    default=30.0,
    show_default=True,
    help="Seconds runs get to finish at shutdown.",
)
@click.pass_obj
def schedule_command(
    obj: Any,
    sync_names: tuple[str, ...],
    once: bool,
    until: str | None,
    tick: float,
    grace: float,
) -> None:
    """Run syncs on their `schedule` crons (UTC), in the foreground, until SIGTERM/SIGINT.

    A sync never overlaps itself; missed runs are alerted through the sync's alerts settings."""
    from reverse_etl.orchestrate import select_syncs
    from reverse_etl.scheduler import Scheduler, parse_until, upcoming, utcnow

    try:
        configs, invalid = select_syncs(syncs_dir(obj.project), sync_names)
    except ConfigError as exc:
        raise _fail(exc) from None
    for err in invalid:
        click.secho(f"invalid sync file, not scheduled: {err}", fg="red", err=True)
    scheduled = [c for c in configs if c.schedule]
    for config in configs:
        if not config.schedule:
            click.echo(f"{config.name}: no schedule, not run by the scheduler", err=True)
    if not scheduled:
        raise click.ClickException("no sync has a `schedule:`; add a cron expression to a sync file")
    deadline = None
    if until:
        try:
            deadline = parse_until(until, utcnow())
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--until") from None
    for item in upcoming(scheduled, utcnow()):
        click.echo(f"{item['sync']}: {item['schedule']} (next {item['next']:%Y-%m-%d %H:%M} UTC)")
    scheduler = Scheduler(
        obj.project,
        obj.warehouse,
        scheduled,
        tick=tick,
        grace=grace,
        say=click.echo,
    )
    scheduler.install_signal_handlers()
    try:
        events = scheduler.serve(once=once, until=deadline)
    except (ProjectError, WarehouseError) as exc:
        raise _fail(exc) from None
    failed = [e for e in events if e.kind == "failed"]
    click.echo(f"scheduler stopped: {sum(e.kind == 'finished' for e in events)} run(s), {len(failed)} failed")
    if once and failed:
        raise click.exceptions.Exit(1)


# -- cdp check -------------------------------------------------------------------------------------


def _parse_manifest(project: Path, database: Path, target: Path) -> tuple[dict[str, Any], str | None]:
    """`dbt parse`, and the manifest. When dbt cannot parse the generated exposures (a sync's model is
    gone), parse without them so the check can say which sync and how to fix it."""
    from reverse_etl.dbt import run_dbt
    from reverse_etl.exposures import exposures_path
    from reverse_etl.orchestrate import load_json

    args = ["parse", "--target-path", str(target)]
    result = run_dbt(args, project=project, database=database, quiet=True)
    note = None
    if not result.success:
        path = exposures_path(project)
        if not path.exists():
            raise click.ClickException(f"dbt cannot parse the project: {result.exception or result.failures}")
        with tempfile.TemporaryDirectory() as tmp:
            aside = Path(tmp) / path.name
            shutil.move(path, aside)
            try:
                retry = run_dbt(args, project=project, database=database, quiet=True)
            finally:
                shutil.move(aside, path)
        if not retry.success:
            raise click.ClickException(f"dbt cannot parse the project: {retry.exception or retry.failures}")
        note = f"dbt cannot parse {path.name}: {result.exception or 'see dbt parse'}"
    return load_json(target / "manifest.json"), note


@click.command("check")
@click.option(
    "--manifest",
    "manifest_path",
    type=click.Path(dir_okay=False, exists=True),
    help="Use this manifest.json instead of running `dbt parse`.",
)
@click.option(
    "--target-path", help="dbt target directory for the parse (default: DBT_TARGET_PATH or <project>/target)."
)
@click.option(
    "--write-exposures",
    is_flag=True,
    help="Write models/exposures/_syncs__exposures.yml (dbt lineage of the syncs).",
)
@click.option(
    "--owner", help="Exposure owner when a sync names none: 'Name <email>' (env CDP_EXPOSURE_OWNER)."
)
@click.pass_obj
def check_command(
    obj: Any, manifest_path: str | None, target_path: str | None, write_exposures: bool, owner: str | None
) -> None:
    """Validate every sync against the dbt project and the warehouse: models, columns, consent. For CI."""
    from reverse_etl.checks import Problem, run_checks
    from reverse_etl.dbt import target_path as default_target
    from reverse_etl.exposures import parse_owner
    from reverse_etl.orchestrate import load_json

    note = None
    if manifest_path:
        manifest = load_json(Path(manifest_path))
    else:
        target = Path(target_path) if target_path else default_target(obj.project)
        manifest, note = _parse_manifest(obj.project, obj.database, target)
    try:
        report = run_checks(
            obj.project,
            obj.warehouse,
            syncs_dir(obj.project),
            manifest,
            write_exposures=write_exposures,
            owner=parse_owner(owner) if owner else None,
        )
    except (ProjectError, WarehouseError) as exc:
        raise _fail(exc) from None
    if note and not report.exposures_written:
        report.problems.append(
            Problem(
                "error",
                "models/exposures",
                "exposures",
                note,
                "fix the syncs, then `cdp check --write-exposures`",
            )
        )
    if report.syncs:
        click.echo(
            render_table(
                [
                    {
                        "sync": s.name,
                        "reads": s.relation,
                        "columns checked in": s.columns_from,
                        "result": s.status,
                    }
                    for s in report.syncs
                ]
            )
        )
    for problem in report.warnings:
        click.secho(f"warning: {problem}", fg="yellow", err=True)
    for problem in report.errors:
        click.secho(f"error: {problem}", fg="red", err=True)
    if report.exposures_written:
        click.echo(f"wrote {report.exposures_written}")
    if report.errors:
        raise click.exceptions.Exit(1)
    click.secho(f"{len(report.syncs)} sync(s) checked: all sources and columns exist", fg="green")


# -- cdp privacy -----------------------------------------------------------------------------------


@click.group("privacy")
def privacy_group() -> None:
    """The right to be forgotten: record erasure requests and follow them through builds and syncs."""


@privacy_group.command("forget")
@click.argument("identifier")
@click.option(
    "--type",
    "identifier_type",
    help="Identifier type (email, phone, user_id, crm_id, anonymous_id, customer_id).",
)
@click.option("--requested-by", help="Who asked (kept on the request, e.g. a ticket id).")
@click.option("--note", help="Free text kept on the request (no personal data, please).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def forget_command(
    obj: Any,
    identifier: str,
    identifier_type: str | None,
    requested_by: str | None,
    note: str | None,
    yes: bool,
) -> None:
    """Forget the customer IDENTIFIER belongs to: excluded from the next build, removed from every
    destination by the next sync runs, purged from sync logs."""
    from reverse_etl.privacy import forget

    if not yes:
        click.confirm(
            "Every identifier of this customer will be excluded from all builds and removed from every "
            "destination. Continue?",
            abort=True,
        )
    try:
        with Warehouse(obj.warehouse) as wh:
            result = forget(
                wh, identifier, identifier_type=identifier_type, requested_by=requested_by, note=note
            )
    except (ProjectError, WarehouseError) as exc:
        raise _fail(exc) from None
    who = f"customer {result.customer_id}" if result.customer_id else "the identifier"
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(result.identifiers.items()))
    click.secho(f"request {result.request_id}: {who} recorded for erasure ({kinds})", fg="green")
    for warning in result.warnings:
        click.secho(f"  warning: {warning}", fg="yellow")
    click.echo("  next: `cdp run` (or `cdp build` then the syncs) excludes and removes them;")
    click.echo(f"  follow it with `cdp privacy status {result.request_id}`")


@privacy_group.command("status")
@click.argument("request_id", required=False)
@click.pass_obj
def status_command(obj: Any, request_id: str | None) -> None:
    """Where REQUEST_ID stands (build, each sync, purge), or every request when none is given."""
    from reverse_etl.privacy import list_requests, reconcile, status

    if not location_exists(obj.warehouse):
        raise click.ClickException(f"warehouse {obj.database} does not exist: no requests")
    try:
        with Warehouse(obj.warehouse) as wh:
            reconcile(wh)
            if request_id is None:
                rows = list_requests(wh)
                click.echo(
                    render_table(
                        [
                            {
                                "request": r["request_id"],
                                "requested_at": r["requested_at"],
                                "customer": r["customer_id"] or "",
                                "identifiers": r["identifiers"],
                                "status": r["status"],
                                "completed_at": r["completed_at"],
                            }
                            for r in rows
                        ]
                    )
                    if rows
                    else "no erasure requests"
                )
                return
            st = status(wh, request_id)
    except (ProjectError, WarehouseError) as exc:
        raise _fail(exc) from None
    req = st.request
    click.secho(f"request {req['request_id']}: {req['status']}", bold=True)
    click.echo(
        f"  requested {req['requested_at']:%Y-%m-%d %H:%M:%S} UTC; customer {req['customer_id'] or '(not in graph)'}; {req['identifiers']} identifiers"
    )
    if st.in_graph is None:
        click.echo("  build: identity_graph not built yet")
    elif st.in_graph:
        click.echo(f"  build: {st.in_graph} identifier(s) still in identity_graph: run `cdp build`")
    else:
        click.echo("  build: excluded (none of the identifiers is in identity_graph)")
    if st.holding_syncs:
        click.echo(f"  syncs still holding them: {', '.join(st.holding_syncs)} (removed on their next run)")
    click.echo(f"  unredacted sync log rows: {st.records_left}")
    click.echo("")
    click.echo(
        render_table(
            [
                {
                    "at": s["at"],
                    "step": s["step"],
                    "sync": s["sync_name"] or "",
                    "records": "" if s["records"] is None else s["records"],
                    "detail": s["detail"] or "",
                }
                for s in st.steps
            ]
        )
    )
