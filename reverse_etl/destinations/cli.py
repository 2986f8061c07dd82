"""``cdp destination``: what each destination takes, so a sync file can be written without reading code.

A thin layer over the registry: every fact printed comes from the destination class itself (its
``modes``, ``limits`` and ``settings_spec``), so the listing cannot drift from what a sync accepts.
"""

from __future__ import annotations

import json
from typing import Any

import click

from reverse_etl.destinations import REGISTRY, destination_class
from reverse_etl.destinations.base import Destination, Limits


def rate_limit_text(limits: Limits) -> str:
    """Requests per second and parallel requests, as a person reads them."""
    rps = "no fixed rate" if limits.requests_per_second is None else f"{limits.requests_per_second:g} req/s"
    return f"{rps}, {limits.max_concurrency} at a time"


def describe(name: str) -> dict[str, Any]:
    """One destination as plain data (what `cdp destination list --json` prints)."""
    from reverse_etl.emulators import REGISTRY as EMULATORS

    cls: type[Destination] = destination_class(name)
    limits = cls.limits
    return {
        "name": name,
        "title": cls.title,
        "modes": list(cls.modes),
        "max_batch_size": limits.max_batch_size,
        "requests_per_second": limits.requests_per_second,
        "max_concurrency": limits.max_concurrency,
        "max_payload_bytes": limits.max_payload_bytes,
        "identifier_fields": list(cls.identifier_fields),
        "settings": [
            {
                "name": spec.name,
                "required": spec.required,
                "secret": spec.secret,
                "default": spec.default,
                "help": spec.help,
            }
            for spec in cls.settings_spec
        ],
        "emulator": name in EMULATORS,
    }


def _settings_text(info: dict[str, Any]) -> str:
    """Required settings, secrets marked with ``*``."""
    names = [f"{s['name']}{'*' if s['secret'] else ''}" for s in info["settings"] if s["required"]]
    return ", ".join(names) or "-"


@click.group("destination")
def destination_group() -> None:
    """The destinations a sync can send to: modes, limits and settings."""


@destination_group.command("list")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the facts as JSON (for scripts).")
@click.option(
    "--verbose", "-v", is_flag=True, help="Also list every setting with its default and what it is for."
)
def list_command(names: tuple[str, ...], as_json: bool, verbose: bool) -> None:
    """Every destination (or the NAMES given) with its title, modes, batch limit, rate limit and
    required settings. Settings marked * are secrets: the sync names an environment variable."""
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise click.ClickException(
            f"unknown destination(s) {', '.join(unknown)}; known: {', '.join(sorted(REGISTRY))}"
        )
    infos = [describe(n) for n in (names or sorted(REGISTRY))]
    if as_json:
        click.echo(json.dumps(infos, indent=2, default=str))
        return
    header = ["name", "title", "modes", "batch limit", "rate limit", "required settings"]
    rows = [
        [
            i["name"],
            i["title"],
            ", ".join(i["modes"]),
            f"{i['max_batch_size']:,}",
            rate_limit_text(destination_class(i["name"]).limits),
            _settings_text(i),
        ]
        for i in infos
    ]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    click.echo("  ".join("-" * w for w in widths))
    for row in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    if verbose:
        for info in infos:
            click.echo(f"\n{info['name']}: {info['title']}")
            for s in info["settings"]:
                kind = "required" if s["required"] else "optional"
                if s["secret"]:
                    kind += ", secret: name an environment variable"
                default = "" if s["default"] is None else f" (default {s['default']})"
                click.echo(f"  {s['name']:<28} {kind}{default}. {s['help']}")
    click.echo(
        "\n* secret: write the name of an environment variable in the sync file, never the value "
        "(e.g. access_token: META_ACCESS_TOKEN)."
    )
    click.echo("`cdp emulate <name>` runs a local emulator of a vendor destination to try a sync against.")
