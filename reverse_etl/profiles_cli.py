"""`cdp profile ...` and `cdp segment ...`: look at one customer, list and preview segments."""

from __future__ import annotations

from typing import Any

import click

from reverse_etl.display import is_pii, mask, render_table
from reverse_etl.profiles import list_segments, overlap, preview, show_profile
from reverse_etl.sqlcheck import UnsafeFilterError, check_where
from reverse_etl.warehouse import Warehouse, WarehouseError

# Traits shown first in `cdp profile show`; the rest follow in column order.
HEADLINE_TRAITS = [
    "email", "phone", "first_name", "last_name", "country", "city", "lifecycle_stage", "orders",
    "lifetime_value", "last_order_at", "last_seen_at", "churn_risk_score", "churn_risk_reason",
]  # fmt: skip


def _shown(column: str, value: Any, show_pii: bool) -> Any:
    return value if show_pii or value is None or not is_pii(column) else mask(value, column)


def _masked_rows(rows: list[dict[str, Any]], show_pii: bool) -> list[dict[str, Any]]:
    return [{k: _shown(k, v, show_pii) for k, v in row.items()} for row in rows]


@click.group("profile")
def profile_group() -> None:
    """Look at customer profiles."""


@profile_group.command("show")
@click.argument("identifier")
@click.option("--type", "identifier_type", help="Identifier type (user_id, email, phone, ...), if ambiguous.")
@click.option(
    "--events", type=click.IntRange(0), default=10, show_default=True, help="Recent events to show."
)
@click.option("--show-pii", is_flag=True, help="Show emails, phones, names and cities unmasked.")
@click.pass_obj
def show_command(obj, identifier: str, identifier_type: str | None, events: int, show_pii: bool) -> None:
    """The profile of the customer IDENTIFIER belongs to: traits, identifiers, segments, recent events."""
    try:
        with Warehouse(obj.warehouse, read_only=True) as wh:
            p = show_profile(wh, identifier, identifier_type, events=events)
    except WarehouseError as exc:
        raise click.ClickException(str(exc)) from exc
    click.secho(f"customer {p.customer_id}", bold=True)
    click.echo(
        f"  looked up {p.identifier_type} {_shown(p.identifier_type, p.identifier_value, show_pii)}; "
        f"{len(p.identifiers)} identifiers, in {sum(1 for s in p.segments if not s['is_holdout'])} segment(s)\n"
    )
    order = [c for c in HEADLINE_TRAITS if c in p.traits] + [c for c in p.traits if c not in HEADLINE_TRAITS]
    rows = [{"trait": c, "value": _shown(c, p.traits[c], show_pii)} for c in order if c != "customer_id"]
    click.echo(render_table(rows))
    click.echo("\nIdentifiers:")
    click.echo(
        render_table(
            [
                {**r, "identifier_value": _shown(r["identifier_type"], r["identifier_value"], show_pii)}
                for r in p.identifiers
            ]
        )
    )
    click.echo("\nSegments:")
    click.echo(
        render_table(
            [
                {
                    "segment": s["segment_name"],
                    "holdout": "yes" if s["is_holdout"] else "",
                    "since": s["entered_at"],
                }
                for s in p.segments
            ]
        )
    )
    if events:
        click.echo(f"\nLatest {events} events:")
        click.echo(render_table(_masked_rows(p.events, show_pii)))


@click.group("segment")
def segment_group() -> None:
    """List, preview and compare segments."""


@segment_group.command("list")
@click.pass_obj
def list_command(obj) -> None:
    """Every segment with its description, owner and current size (holdouts counted apart)."""
    try:
        with Warehouse(obj.warehouse, read_only=True) as wh:
            segments = list_segments(wh, obj.project)
    except WarehouseError as exc:
        raise click.ClickException(str(exc)) from exc
    rows = [
        {
            "segment": s.name,
            "members": s.members,
            "holdouts": s.holdouts,
            "owner": s.owner,
            "kind": s.kind,
            "description": s.description,
        }
        for s in segments
    ]
    click.echo(render_table(rows))


@segment_group.command("preview")
@click.argument("name")
@click.option("--sample", type=click.IntRange(0), default=10, show_default=True, help="Members to show.")
@click.option("--show-pii", is_flag=True, help="Show emails, phones and names unmasked.")
@click.option(
    "--where",
    "where",
    default=None,
    help='Only members matching this condition over the segment\'s columns, e.g. "orders > 1" '
    "(one read-only expression; checked before it runs).",
)
@click.pass_obj
def preview_command(obj, name: str, sample: int, show_pii: bool, where: str | None) -> None:
    """Size of segment NAME, a sample of its members, and its size after each build."""
    if where is not None:
        try:
            check_where(where)
        except UnsafeFilterError as exc:
            raise click.BadParameter(str(exc).removeprefix("--where: "), param_hint="--where") from exc
    try:
        with Warehouse(obj.warehouse, read_only=True) as wh:
            p = preview(wh, name, sample=sample, project=obj.project, where=where)
    except WarehouseError as exc:
        raise click.ClickException(str(exc)) from exc
    label = f"{p.name} where {where}" if where is not None else p.name
    click.secho(f"{label}: {p.members:,} members, {p.holdouts:,} held out", bold=True)
    if sample:
        click.echo(render_table(_masked_rows(p.sample, show_pii)))
    click.echo("\nSize after each build:")
    click.echo(render_table(p.history))


@segment_group.command("overlap")
@click.argument("a")
@click.argument("b")
@click.pass_obj
def overlap_command(obj, a: str, b: str) -> None:
    """How many members segments A and B share (holdouts left out)."""
    try:
        with Warehouse(obj.warehouse, read_only=True) as wh:
            o = overlap(wh, a, b, project=obj.project)
    except WarehouseError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        render_table(
            [
                {
                    "": a,
                    "members": o["members_a"],
                    "only here": o["only_a"],
                    "share in the other": o["share_of_a_in_b"],
                },
                {
                    "": b,
                    "members": o["members_b"],
                    "only here": o["only_b"],
                    "share in the other": o["share_of_b_in_a"],
                },
            ]
        )
    )
    click.echo(f"\nboth: {o['both']:,}; jaccard {o['jaccard']:.3f}")
