"""The ``cdp`` command: a thin layer that parses, calls the library and prints."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reverse_etl import __version__
from reverse_etl.project import ProjectError, duckdb_path, profiles_dir, project_dir
from reverse_etl.warehouse import WarehouseTarget, target_from_profile


class CdpContext:
    """Resolved locations, shared by every command."""

    def __init__(self, project: str | None, database: str | None, target: str | None = None) -> None:
        self._project = project
        self._database = database
        self.target = target

    @property
    def project(self) -> Path:
        return project_dir(self._project)

    @property
    def database(self) -> Path:
        return duckdb_path(self._database, project=self.project)

    @property
    def warehouse(self) -> Path | WarehouseTarget:
        """What ``Warehouse(...)`` opens: the DuckDB file, or the engine the dbt target names."""
        if self.target is None:
            return self.database
        return target_from_profile(profiles_dir(), self.target) or self.database

    @property
    def warehouse_name(self) -> str:
        where = self.warehouse
        return where.description if isinstance(where, WarehouseTarget) else str(where)


pass_ctx = click.make_pass_decorator(CdpContext)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cdp")
@click.option(
    "--project-dir",
    envvar="CDP_PROJECT_DIR",
    type=click.Path(file_okay=False),
    help="The dbt project (default: the checkout holding dbt_project.yml).",
)
@click.option(
    "--database",
    envvar="CDP_DUCKDB_PATH",
    type=click.Path(dir_okay=False),
    help="The DuckDB warehouse file (default: <project>/warehouse/cdp.duckdb; env CDP_DUCKDB_PATH).",
)
@click.option(
    "--target",
    envvar="CDP_TARGET",
    help="A target of your dbt profile (CDP_PROFILES_DIR): builds and syncs run on its engine "
    "(DuckDB, PostgreSQL or Spark). Default: the embedded DuckDB file.",
)
@click.pass_context
def cli(ctx: click.Context, project_dir: str | None, database: str | None, target: str | None) -> None:
    """A warehouse-native customer data platform: identity, profiles and segments in dbt,
    synced to ad, email and CRM tools."""
    ctx.obj = CdpContext(project_dir, database, target)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--select", "-s", multiple=True, help="dbt node selection (passed through).")
@click.option("--exclude", multiple=True, help="dbt exclusion (passed through).")
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from scratch.")
@click.option("--vars", "vars_", help="dbt vars as YAML, e.g. '{cdp_default_country: GB}'.")
@click.argument("dbt_args", nargs=-1, type=click.UNPROCESSED)
@pass_ctx
def build(
    obj: CdpContext,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    full_refresh: bool,
    vars_: str | None,
    dbt_args: tuple[str, ...],
) -> None:
    """Run `dbt build` on the warehouse (models, seeds and tests). Extra arguments go to dbt."""
    from reverse_etl.dbt import run_dbt

    args = ["build"]
    for s in select:
        args += ["--select", s]
    for e in exclude:
        args += ["--exclude", e]
    if full_refresh:
        args.append("--full-refresh")
    if vars_:
        args += ["--vars", vars_]
    args += list(dbt_args)
    if obj.target and "--target" not in args:
        args += ["--target", obj.target]
    result = run_dbt(args, project=obj.project, database=obj.database)
    if not result.success:
        for failure in result.failures:
            click.secho(f"  failed: {failure}", fg="red", err=True)
        if result.exception:
            click.secho(f"  dbt error: {result.exception}", fg="red", err=True)
        raise click.ClickException("dbt build failed (details above)")
    click.secho(f"dbt build passed on {obj.warehouse_name}", fg="green")


@cli.command()
@click.option(
    "--customers", type=click.IntRange(100), default=2000, show_default=True, help="People to generate."
)
@click.option("--seed", type=click.IntRange(0), default=42, show_default=True, help="Same seed, same data.")
@pass_ctx
def demo(obj: CdpContext, customers: int, seed: int) -> None:
    """Generate a small dataset, build it, summarise it, and sync a segment to a local emulator."""
    from reverse_etl.demo import DemoError, run_demo
    from reverse_etl.display import render_table

    try:
        result = run_demo(obj.project, obj.database, customers=customers, seed=seed, say=click.echo)
    except DemoError as exc:
        raise click.ClickException(str(exc)) from exc
    s = result.summary
    click.echo(
        f"    {s['customers']:,} customers stitched from {s['identifiers']:,} identifiers "
        f"({s['rejections']:,} identifiers or links rejected), {s['profiles']:,} profiles, "
        f"{s['events']:,} events in {s['sessions']:,} sessions"
    )
    click.echo(render_table(result.segments))
    sync = result.sync
    click.echo(
        f"    sync {sync['sync_name']}: {sync['status']}, {sync['delivered']:,} delivered, "
        f"{sync['invalid']:,} invalid (kept back with a reason), {sync['rejected']:,} rejected; "
        f"the emulator holds {sync['emulator_records']:,} records, exactly the sendable segment"
    )
    click.secho(f"\nDone. The warehouse is {result.database}. Next:", fg="green")
    click.echo("  cdp identity stats                      how the identity graph looks")
    click.echo("  cdp identity explain <email or id>      why a customer holds the identifiers it does")
    from reverse_etl.emulators.webhook import DEFAULT_SECRET

    click.echo(
        f"  CDP_WEBHOOK_SECRET={DEFAULT_SECRET} cdp sync plan high_value_customers_webhook\n"
        "                                          what the sync would send next, offline"
        " (the emulator's demo secret; a real sync reads yours from the environment)"
    )
    click.echo("  cdp sync history high_value_customers_webhook")
    click.echo(
        f"  duckdb {result.database}             the marts schema: identity_graph, customer_profiles, ..."
    )


def _register() -> None:
    from reverse_etl.datagen.cli import generate_command

    cli.add_command(generate_command, "generate")
    from reverse_etl.identity_cli import identity_group

    cli.add_command(identity_group)
    from reverse_etl.profiles_cli import profile_group, segment_group

    cli.add_command(profile_group)
    cli.add_command(segment_group)
    from reverse_etl.sync.cli import sync_group

    cli.add_command(sync_group, "sync")
    from reverse_etl.orchestrate_cli import check_command, privacy_group, run_command, schedule_command

    cli.add_command(run_command, "run")
    cli.add_command(schedule_command, "schedule")
    cli.add_command(check_command, "check")
    cli.add_command(privacy_group, "privacy")
    from reverse_etl.destinations.cli import destination_group

    cli.add_command(destination_group, "destination")
    from reverse_etl.emulators.cli import emulate_command

    cli.add_command(emulate_command, "emulate")


_register()


def main() -> None:
    try:
        cli(standalone_mode=True)
    except ProjectError as exc:
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
