"""`cdp identity ...`: explain a customer's stitching, summarise the graph."""

from __future__ import annotations

import click

from reverse_etl.display import is_pii, mask, render_table
from reverse_etl.identity import explain, stats
from reverse_etl.warehouse import Warehouse, WarehouseError


@click.group("identity")
def identity_group() -> None:
    """Inspect the identity graph."""


@identity_group.command("explain")
@click.argument("identifier")
@click.option("--type", "identifier_type", help="Identifier type (user_id, email, phone, ...), if ambiguous.")
@click.option("--show-pii", is_flag=True, help="Show emails and phones unmasked.")
@click.pass_obj
def explain_command(obj, identifier: str, identifier_type: str | None, show_pii: bool) -> None:
    """Show the customer of IDENTIFIER, all its identifiers, and the observations that linked them."""

    def shown(kind: str, value: str) -> str:
        return value if show_pii or not is_pii(kind) else mask(value, kind)

    try:
        with Warehouse(obj.warehouse, read_only=True) as wh:
            result = explain(wh, identifier, identifier_type)
    except WarehouseError as exc:
        raise click.ClickException(str(exc)) from exc
    click.secho(f"customer {result.customer_id}", bold=True)
    click.echo(
        f"  {len(result.identifiers)} identifiers; looked up {result.identifier_type} "
        f"{shown(result.identifier_type, result.identifier_value)}\n"
    )
    rows = [
        {
            "type": r["identifier_type"],
            "value": shown(r["identifier_type"], r["identifier_value"]),
            "first_seen_at": r["first_seen_at"],
            "last_seen_at": r["last_seen_at"],
            "observations": r["observation_count"],
            "anchor": "yes" if r["is_anchor"] else "",
        }
        for r in result.identifiers
    ]
    click.echo(render_table(rows))
    click.echo("\nHow each identifier is linked to the one looked up:")
    for (kind, value), path in result.paths.items():
        if not path:
            continue
        click.echo(f"  {kind} {shown(kind, value)}")
        for link in path:
            click.echo(
                f"    <- {link.from_type} {shown(link.from_type, link.from_value)} -> "
                f"{link.to_type} {shown(link.to_type, link.to_value)}  "
                f"(seen together on {link.record_count} record(s), e.g. {link.example_record})"
            )
    if result.rejections:
        click.echo("\nLinks and identifiers kept off this customer:")
        for r in result.rejections:
            click.echo(
                f"  {r['reason']}: {r['identifier_type']} {shown(r['identifier_type'], r['identifier_value'])}"
                + (f" (link to {r['linked_identifier_type']})" if r["linked_identifier_type"] else "")
                + f": {r['detail']}"
            )


@identity_group.command("stats")
@click.option("--show-pii", is_flag=True, help="Show hub identifier values unmasked.")
@click.pass_obj
def stats_command(obj, show_pii: bool) -> None:
    """Cluster sizes, identifiers per customer, rejected hubs."""
    try:
        with Warehouse(obj.warehouse, read_only=True) as wh:
            s = stats(wh)
    except WarehouseError as exc:
        raise click.ClickException(str(exc)) from exc
    click.secho(
        f"{s['customers']:,} customers, {s['identifiers']:,} identifiers, largest cluster {s['largest_cluster']}",
        bold=True,
    )
    click.echo("\nCluster size (identifiers per customer):")
    click.echo(render_table(s["histogram"]))
    click.echo("\nIdentifiers per customer, by type:")
    click.echo(render_table(s["per_type"]))
    click.echo("\nRejections:")
    click.echo(render_table(s["rejections"]))
    if s["hubs"]:
        click.echo("\nLargest hubs (not used for merging):")
        hubs = [
            {
                **h,
                "identifier_value": h["identifier_value"]
                if show_pii or not is_pii(h["identifier_type"])
                else mask(h["identifier_value"], h["identifier_type"]),
            }
            for h in s["hubs"]
        ]
        click.echo(render_table(hubs))
