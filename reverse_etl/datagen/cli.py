"""``cdp generate``: parse, call :func:`reverse_etl.datagen.generate`, print what was written."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click

from reverse_etl.datagen import vocab
from reverse_etl.datagen.core import DEFAULT_START, MAX_PERSONS, GenerateError, generate


@click.command("generate")
@click.option(
    "--customers",
    type=click.IntRange(1, MAX_PERSONS),
    default=1000,
    show_default=True,
    help="Number of persons to simulate (about 20 Segment events each).",
)
@click.option("--seed", type=click.IntRange(0), default=42, show_default=True, help="Same seed, same data.")
@click.option("--days", type=click.IntRange(1, 3650), default=365, show_default=True, help="Length of the activity window.")  # fmt: skip
@click.option(
    "--start",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=DEFAULT_START.isoformat(),
    show_default=True,
    help="First day of the activity window (UTC).",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(1),
    default=20_000,
    show_default=True,
    help="Persons per insert; bounds memory, never changes the data.",
)
@click.option(
    "--default-country",
    type=click.Choice(vocab.COUNTRIES),
    default="US",
    show_default=True,
    help="Country of phone numbers written without a country code (set cdp_default_country to match).",
)
@click.option(
    "--replace/--append",
    default=True,
    show_default=True,
    help="Replace the raw tables, or add new persons after those already generated.",
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal)."
)
@click.pass_obj
def generate_command(
    obj: Any,
    customers: int,
    seed: int,
    days: int,
    start: datetime,
    chunk_size: int,
    default_country: str,
    replace: bool,
    progress: bool | None,
) -> None:
    """Generate realistic, messy raw data (Segment, CRM, shop, email, consent) with a ground truth."""
    database = obj.database
    if progress is None:
        progress = sys.stderr.isatty()
    try:
        summary = generate(
            database,
            customers,
            seed=seed,
            start=start.date(),
            days=days,
            chunk_size=chunk_size,
            progress=progress,
            default_country=default_country,
            append=not replace,
        )
    except GenerateError as exc:
        raise click.ClickException(str(exc)) from exc
    width = max(len(name) for name in summary.rows)
    for name, count in summary.rows.items():
        click.echo(f"  {name:<{width}}  {count:>12,}")
    verb = "appended" if not replace else "generated"
    click.secho(
        f"{verb} {customers:,} persons ({summary.total_rows:,} rows) into {summary.database} "
        f"in {summary.seconds:.1f}s",
        fg="green",
    )
