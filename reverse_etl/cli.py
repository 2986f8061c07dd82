"""The ``cdp`` command: a thin layer that parses, calls the library and prints."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reverse_etl import __version__
from reverse_etl.project import ProjectError, duckdb_path, project_dir


class CdpContext:
    """Resolved locations, shared by every command."""

    def __init__(self, project: str | None, database: str | None) -> None:
        self._project = project
        self._database = database

    @property
    def project(self) -> Path:
        return project_dir(self._project)

    @property
    def database(self) -> Path:
        return duckdb_path(self._database, project=self.project)


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
@click.pass_context
def cli(ctx: click.Context, project_dir: str | None, database: str | None) -> None:
    """A warehouse-native customer data platform: identity, profiles and segments in dbt,
    synced to ad, email and CRM tools."""
    ctx.obj = CdpContext(project_dir, database)


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
    result = run_dbt(args, project=obj.project, database=obj.database)
    if not result.success:
        for failure in result.failures:
            click.secho(f"  failed: {failure}", fg="red", err=True)
        if result.exception:
            click.secho(f"  dbt error: {result.exception}", fg="red", err=True)
        raise click.ClickException("dbt build failed (details above)")
    click.secho(f"dbt build passed on {obj.database}", fg="green")


def _register() -> None:
    from reverse_etl.identity_cli import identity_group

    cli.add_command(identity_group)
    from reverse_etl.sync.cli import sync_group

    cli.add_command(sync_group, "sync")


_register()


def main() -> None:
    try:
        cli(standalone_mode=True)
    except ProjectError as exc:
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
