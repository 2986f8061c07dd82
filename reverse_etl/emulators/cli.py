"""``cdp emulate <destination>``: run a vendor emulator on loopback, in the foreground, to try a sync
against it without credentials or internet.

It prints the base URL, the credentials the emulator accepts (as environment variables) and the
destination block a sync file needs, then one line per request it receives. Faults (throttling, 5xx,
slow answers, bad credentials, refused values, a rate limit) are switched on with flags, so a sync's
retries can be watched. :func:`connection` is the single place that knows how a sync reaches each
emulator; the demo-sync tests use it too, so what is printed is what is tested.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import click
import yaml

from reverse_etl.destinations import REGISTRY as DESTINATIONS
from reverse_etl.destinations import destination_class
from reverse_etl.emulators import REGISTRY as EMULATORS
from reverse_etl.emulators import Emulator, FaultConfig, emulator_class
from reverse_etl.emulators.base import Request, Response

ENV_PREFIX = "EMU_"  # keeps emulator credentials apart from real ones in the same shell


@dataclass(frozen=True)
class Connection:
    """How a sync reaches one running emulator."""

    destination: str
    settings: dict[str, Any]  # the destination block, secrets as environment variable names
    env: dict[str, str] = field(default_factory=dict)  # environment variable -> credential to export


def _vendor_settings(name: str, emulator: Any) -> dict[str, Any]:
    """The account, list or site ids the emulator knows, for the settings that need one."""
    if name == "meta":
        return {"ad_account_id": sorted(emulator.accounts)[0]}
    if name == "google_ads":
        return {"customer_id": emulator.customer_id}
    if name == "mailchimp":
        return {"list_id": next(iter(emulator.lists))}
    if name == "salesforce":
        external = [
            f["name"]
            for f in emulator.schema["Contact"].values()
            if f.get("externalId") and f["name"] != "Id"
        ]
        return {"object": "Contact", "external_id_field": external[0]}
    if name == "tiktok":
        return {"advertiser_id": sorted(emulator.advertisers)[0]}
    if name == "linkedin":
        return {"ad_account_id": sorted(emulator.accounts)[0], "create_wait_seconds": 0}
    if name == "customerio":
        return {"site_id": emulator.site_id, "app_base_url": emulator.base_url}
    if name == "webhook":
        return {"url": emulator.url}
    return {}


def connection(name: str, emulator: Emulator) -> Connection:
    """The settings and credentials a sync to ``name`` needs to talk to ``emulator``.

    Credentials are those the emulator instance accepts; each secret setting names an environment
    variable ``EMU_<DESTINATION>_<SETTING>`` that holds it."""
    cls = destination_class(name)
    known = {spec.name for spec in cls.settings_spec}
    settings: dict[str, Any] = {"type": name}
    env: dict[str, str] = {}
    vendor = _vendor_settings(name, emulator)
    credentials = dict(getattr(emulator, "default_credentials", {}))
    for spec in cls.settings_spec:
        if spec.name in vendor:
            settings[spec.name] = vendor[spec.name]
        elif spec.name == "base_url":
            settings["base_url"] = emulator.base_url
        elif spec.secret:
            value = getattr(emulator, spec.name, None) or credentials.get(spec.name)
            if value is None:
                if spec.required:
                    raise RuntimeError(f"the {name} emulator names no credential for setting '{spec.name}'")
                continue
            variable = f"{ENV_PREFIX}{name.upper()}_{spec.name.upper()}"
            settings[spec.name] = variable
            env[variable] = str(value)
    extra = sorted(set(vendor) - known)
    if extra:
        raise RuntimeError(f"the {name} emulator sets unknown setting(s) {', '.join(extra)}")
    return Connection(name, settings, env)


def request_line(number: int, request: Request, response: Response, seconds: float) -> str:
    """One request as one line: when, which, the answer, sizes and time. Query strings are left out
    (some vendors put tokens there)."""
    payload = response.raw if response.raw is not None else b""
    detail = ""
    if response.status >= 400:
        if response.raw is None:
            body = json.dumps(response.body, separators=(",", ":"), default=str)
        else:
            body = payload.decode("utf-8", "replace")
        detail = "  " + " ".join(body.split())[:120]
    return (
        f"{time.strftime('%H:%M:%S')}  #{number:<4} {request.method:<6} {request.path}  -> {response.status}"
        f"  ({len(request.body):,} B in, {seconds * 1000:.0f} ms){detail}"
    )


@click.command("emulate")
@click.argument("destination")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0 picks a free port."
)
@click.option(
    "--throttle-every",
    type=click.IntRange(0),
    default=0,
    help="Every Nth request gets the vendor's throttle answer.",
)
@click.option(
    "--retry-after",
    type=click.FloatRange(0),
    default=1.0,
    show_default=True,
    help="Seconds the throttle answer asks to wait.",
)
@click.option(
    "--error-5xx-every", type=click.IntRange(0), default=0, help="Every Nth request gets a server error."
)
@click.option(
    "--timeout-every", type=click.IntRange(0), default=0, help="Every Nth request stalls before answering."
)
@click.option(
    "--timeout-seconds",
    type=click.FloatRange(0),
    default=65.0,
    show_default=True,
    help="How long a stalled request stalls (longer than any destination's request timeout).",
)
@click.option("--auth-failure", is_flag=True, help="Refuse every request's credentials.")
@click.option(
    "--reject-value",
    multiple=True,
    help="Refuse records holding this value as the vendor sees it (hashed for ad platforms); repeatable.",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Requests per second allowed; the excess is throttled.",
)
@click.option("--max-requests", type=click.IntRange(1), default=None, help="Stop after this many requests.")
@click.option(
    "--duration", type=click.FloatRange(0, min_open=True), default=None, help="Stop after this many seconds."
)
@click.option("--quiet", "-q", is_flag=True, help="Do not print each request.")
def emulate_command(
    destination: str,
    port: int,
    throttle_every: int,
    retry_after: float,
    error_5xx_every: int,
    timeout_every: int,
    timeout_seconds: float,
    auth_failure: bool,
    reject_value: tuple[str, ...],
    rate_limit: float | None,
    max_requests: int | None,
    duration: float | None,
    quiet: bool,
) -> None:
    """Run the emulator of DESTINATION on 127.0.0.1 until Ctrl-C (or --max-requests/--duration), and
    print what a sync needs to use it and each request it receives."""
    if destination not in EMULATORS:
        hint = (
            "files writes local files and needs no emulator"
            if destination in DESTINATIONS
            else f"known destinations: {', '.join(sorted(DESTINATIONS))}"
        )
        raise click.ClickException(
            f"no emulator for '{destination}' ({hint}); emulators: {', '.join(sorted(EMULATORS))}"
        )
    faults = FaultConfig(
        throttle_every=throttle_every,
        retry_after=retry_after,
        error_5xx_every=error_5xx_every,
        timeout_every=timeout_every,
        timeout_seconds=timeout_seconds,
        auth_failure=auth_failure,
        reject_values=reject_value,
        rate_limit_per_second=rate_limit,
    )
    try:
        emulator = emulator_class(destination)(faults, port=port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    link = connection(destination, emulator)
    title = destination_class(destination).title
    done = threading.Event()
    printing = threading.Lock()
    seen = 0

    def observe(request: Request, response: Response, seconds: float) -> None:
        nonlocal seen
        with printing:
            seen += 1
            if not quiet:
                click.echo(request_line(seen, request, response, seconds))
            if max_requests is not None and seen >= max_requests:
                done.set()

    emulator.observers.append(observe)
    emulator.start()
    try:
        with printing:  # requests that arrive meanwhile are printed after the banner
            _print_banner(title, emulator, link, faults)
        done.wait(duration)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    click.echo(f"stopped after {seen} request(s)")


def _print_banner(title: str, emulator: Emulator, link: Connection, faults: FaultConfig) -> None:
    click.secho(f"{title} emulator listening on {emulator.base_url}", fg="green", bold=True)
    click.echo("Loopback only; stop it with Ctrl-C.")
    if link.env:
        click.echo("\nCredentials it accepts; export them where the sync runs:")
        for variable, value in link.env.items():
            click.echo(f"  export {variable}={value}")
    click.echo("\nDestination block for a sync file (syncs/<name>.yml):")
    block = yaml.safe_dump({"destination": link.settings}, sort_keys=False, default_flow_style=False)
    click.echo("\n".join(f"  {line}" for line in block.rstrip().splitlines()))
    active = [
        f"{label} {value}"
        for label, value in (
            ("throttle every", faults.throttle_every),
            ("5xx every", faults.error_5xx_every),
            ("stall every", faults.timeout_every),
            ("rate limit req/s", faults.rate_limit_per_second),
        )
        if value
    ]
    if faults.auth_failure:
        active.append("every request refused as unauthenticated")
    if faults.reject_values:
        active.append(f"{len(faults.reject_values)} refused value(s)")
    click.echo(f"\nFaults: {'; '.join(active) if active else 'none'}")
    click.echo("Requests:")
