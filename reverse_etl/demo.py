"""`cdp demo`: the whole CDP on a small generated dataset, on this machine, with nothing sent anywhere.

Generate raw data, `dbt build` it (staging, identity, profiles, segments), summarise, then sync one
segment to the webhook emulator on loopback and check the emulator holds exactly the segment.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reverse_etl.warehouse import MARTS_SCHEMA, Warehouse

DEMO_SYNC = "high_value_customers_webhook"


class DemoError(Exception):
    """A demo step failed; the message says which and why."""


@dataclass
class DemoResult:
    database: Path
    generated_rows: int = 0
    summary: dict[str, Any] = field(default_factory=dict)
    segments: list[dict[str, Any]] = field(default_factory=list)
    sync: dict[str, Any] = field(default_factory=dict)


def run_demo(
    project: Path,
    database: Path,
    *,
    customers: int = 2000,
    seed: int = 42,
    say: Callable[[str], None] = print,
) -> DemoResult:
    from reverse_etl.datagen import generate
    from reverse_etl.dbt import run_dbt

    result = DemoResult(database=database)
    say(f"1/4 generating {customers:,} customers into {database}")
    generated = generate(database, customers, seed=seed)
    result.generated_rows = sum(generated.rows.values())
    say(f"    {result.generated_rows:,} raw rows in {generated.seconds:.1f}s")

    say("2/4 dbt build: staging, identity, profiles, segments and their tests")
    built = run_dbt(["build", "--quiet"], project=project, database=database)
    if not built.success:
        details = "\n".join(built.failures) or built.exception or "see dbt's output above"
        raise DemoError(f"dbt build failed:\n{details}")

    say("3/4 summary")
    with Warehouse(database) as wh:
        result.summary = wh.query(
            f"""
            select
                (select count(*) from {MARTS_SCHEMA}.identity_graph) as identifiers,
                (select count(distinct customer_id) from {MARTS_SCHEMA}.identity_graph) as customers,
                (select count(*) from {MARTS_SCHEMA}.customer_profiles) as profiles,
                (select count(*) from {MARTS_SCHEMA}.identity_rejections) as rejections,
                (select count(*) from {MARTS_SCHEMA}.customer_events) as events,
                (select count(*) from {MARTS_SCHEMA}.customer_sessions) as sessions
            """
        )[0]
        result.segments = wh.query(
            f"select segment_name, count(*) as members from {MARTS_SCHEMA}.segment_members "
            "group by segment_name order by segment_name"
        )
    say("4/4 syncing high_value_customers to the webhook emulator on loopback")
    result.sync = sync_to_emulator(project, database)
    return result


def sync_to_emulator(project: Path, database: Path) -> dict[str, Any]:
    """Run the demo sync against a webhook emulator and compare what it holds with the segment."""
    from reverse_etl.emulators.webhook import WebhookEmulator
    from reverse_etl.project import syncs_dir
    from reverse_etl.sync import load_sync, reset_sync, run_sync

    config = load_sync(syncs_dir(project), DEMO_SYNC)
    with WebhookEmulator() as emulator:
        secret_env = config.destination.settings.get("secret", "CDP_WEBHOOK_SECRET")
        previous = os.environ.get(secret_env)
        os.environ[secret_env] = emulator.secret
        try:
            settings = {**config.destination.settings, "url": emulator.url}
            config = dataclasses.replace(
                config, destination=dataclasses.replace(config.destination, settings=settings)
            )
            with Warehouse(database) as wh:
                # Each demo starts a new, empty emulator: what an earlier demo delivered to its own
                # emulator is not there, so the sync resends everything (a rerun of `cdp demo`).
                reset_sync(config, wh)
                summary = run_sync(config, wh, project=project)
                expected = {
                    row["customer_id"]
                    for row in wh.query(
                        f"select customer_id from {MARTS_SCHEMA}.segment_members "
                        "where segment_name = 'high_value_customers' and consent_email_marketing "
                        "and email is not null"
                    )
                }
        finally:
            if previous is None:
                os.environ.pop(secret_env, None)
            else:
                os.environ[secret_env] = previous
        held = set(emulator.records)
    if summary.status != "success":
        raise DemoError(f"sync {DEMO_SYNC} ended {summary.status}: {summary.error}")
    if held != expected:
        raise DemoError(
            f"the emulator holds {len(held)} records but the segment has {len(expected)} sendable members"
        )
    return {**summary.as_dict(), "emulator_records": len(held), "emulator_url": emulator.url}
