"""Profiles and segments: build time of each model against one GROUP BY scan of customer_events, and
the incremental run (customer_events, customer_sessions, int_computed_traits, int_golden_records) on a
small batch of new events against the full build.

    python benchmarks/bench_profiles.py                       # 100k customers (~2.4M events)
    python benchmarks/bench_profiles.py --customers 1000000   # 1M customers (~24M events)
    python benchmarks/bench_profiles.py --database w.duckdb --skip-generate   # reuse generated raw data
    python benchmarks/bench_profiles.py --json figures.json   # also write the figures as JSON

Steps, all on one warehouse file:

1. Generate the raw data (`cdp generate`), then hold back the newest `--batch-hours` of every event
   table (by load time: Segment uuid_ts/received_at, an order's updated_at, the export time of email and
   consent events) in a side schema: that is the "new batch" of step 5.
2. Build staging and identity (`dbt build`, one thread, data tests included): the staging models'
   times are reported too, since customer_events reads them.
3. `dbt run --threads 1 --full-refresh --select customer_events+ int_profile_attributes
   int_golden_records+`: each model's time in run_results.json is its own.
4. The baseline, in the same run and on the same file: one pass over customer_events,
   `create table as select customer_id, count(*), min, max, sum ... group by customer_id`. Each ratio
   says how many such scans a model costs.
5. The held-back batch lands; staging and identity are rebuilt (not timed), then the same `dbt run`
   without --full-refresh: customer_events loads the batch (plus the lookback) and re-attributes what
   the batch merged or split; customer_sessions sessionises again the visitors whose events changed,
   int_computed_traits recomputes the customers whose events changed or crossed a window's edge,
   int_golden_records chooses again for the customers whose profile observations changed.
   With `--verify` (default), a full refresh of the four afterwards must give the same rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from reverse_etl.dbt import run_dbt  # noqa: E402

SCAN_SQL = """
create or replace table main.bench_scan as
select
    customer_id,
    count(*) as events,
    min(occurred_at) as first_at,
    max(occurred_at) as last_at,
    sum(revenue) as revenue
from marts.customer_events
where customer_id is not null
group by customer_id
"""

# Raw event tables and the expression that says when a row landed (what the incremental model's
# watermark reads through staging).
EVENT_TABLES = {
    "segment.pages": "coalesce(uuid_ts, received_at)",
    "segment.tracks": "coalesce(uuid_ts, received_at)",
    "segment.identifies": "coalesce(uuid_ts, received_at)",
    "segment.order_completed": "coalesce(uuid_ts, received_at)",
    "segment.product_added": "coalesce(uuid_ts, received_at)",
    "segment.checkout_started": "coalesce(uuid_ts, received_at)",
    "shop.orders": "coalesce(updated_at, created_at)",
    "esp.email_events": "occurred_at",
    "consent.consent_events": "occurred_at",
}
HOLDBACK_SCHEMA = "bench_holdback"

UPSTREAM = [
    "--select",
    "+customer_events",
    "suppression_list",
    "--exclude",
    "customer_events",
    "test_type:unit",
    "--indirect-selection",
    "cautious",
]
# The models that build incrementally: the incremental run reports each against its full build.
INCREMENTAL_MODELS = {
    "customer_events": "marts",
    "customer_sessions": "marts",
    "int_computed_traits": "intermediate",
    "int_golden_records": "intermediate",
}
# Columns about the build that wrote a row, which a full refresh sets differently by design.
BOOKKEEPING_COLUMNS = {"customer_events": "previous_visitor_id, written_in_build"}
PROFILE_MODELS = [
    "--select",
    "customer_events+",
    "int_profile_attributes",
    "int_golden_records+",
    "--exclude",
    "test_type:unit",
]
# The event-grain models (one row per event or session); the rest are the profile and segment models
# proper, one row per customer or fewer.
TIMELINE_MODELS = ("customer_events", "customer_sessions")


def profile_and_segment_seconds(seconds: dict[str, float]) -> float:
    """Model seconds without the timeline and sessions, the part a per-customer GROUP BY compares to."""
    return sum(s for name, s in seconds.items() if name not in TIMELINE_MODELS)


def dbt(args: list[str], database: Path, target: Path) -> float:
    """Run dbt; the wall time in seconds. Stops the benchmark with dbt's messages on failure."""
    start = time.perf_counter()
    result = run_dbt([*args, "--target-path", str(target)], project=PROJECT, database=database, quiet=True)
    if not result.success:
        raise SystemExit("dbt failed:\n" + "\n".join(result.failures) + f"\n{result.exception or ''}")
    return time.perf_counter() - start


def scan_seconds(database: Path, repeats: int) -> float:
    """Median time of the one-pass baseline, on the same file and engine settings as the dbt run."""
    times = []
    con = duckdb.connect(str(database))
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            con.execute(SCAN_SQL)
            times.append(time.perf_counter() - start)
        con.execute("drop table main.bench_scan")
    finally:
        con.close()
    return statistics.median(times)


def model_seconds(target: Path) -> dict[str, float]:
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {
        r["unique_id"].split(".")[-1]: r["execution_time"]
        for r in results
        if r["status"] == "success" and r["unique_id"].startswith("model.")
    }


def hold_back(database: Path, hours: int) -> int:
    """Move the rows of each event table that landed in its last `hours` to the side schema."""
    con = duckdb.connect(str(database))
    moved = 0
    try:
        con.execute(f"create schema if not exists {HOLDBACK_SCHEMA}")
        for table, landed in EVENT_TABLES.items():
            side = f"{HOLDBACK_SCHEMA}.{table.replace('.', '__')}"
            cutoff = con.execute(f"select max({landed}) - interval ({hours}) hour from {table}").fetchone()[0]
            if cutoff is None:
                continue
            con.execute(
                f"create or replace table {side} as select * from {table} where {landed} > ?", [cutoff]
            )
            con.execute(f"delete from {table} where {landed} > ?", [cutoff])
            moved += con.execute(f"select count(*) from {side}").fetchone()[0]
    finally:
        con.close()
    return moved


def held_back_rows(database: Path) -> int:
    """Rows waiting in the side schema (0 if nothing is held back)."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        tables = con.execute(
            "select table_name from information_schema.tables where table_schema = ?", [HOLDBACK_SCHEMA]
        ).fetchall()
        return sum(
            con.execute(f"select count(*) from {HOLDBACK_SCHEMA}.{name}").fetchone()[0] for (name,) in tables
        )
    finally:
        con.close()


def land_batch(database: Path) -> None:
    """Put the held-back rows back into their tables: the new batch arrives."""
    con = duckdb.connect(str(database))
    try:
        for table in EVENT_TABLES:
            side = f"{HOLDBACK_SCHEMA}.{table.replace('.', '__')}"
            if con.execute(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                [HOLDBACK_SCHEMA, table.replace(".", "__")],
            ).fetchone()[0]:
                con.execute(f"insert into {table} select * from {side}")
                con.execute(f"drop table {side}")
    finally:
        con.close()


def scalar(database: Path, sql: str) -> Any:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def measure(
    customers: int = 100_000,
    seed: int = 42,
    database: str | Path | None = None,
    skip_generate: bool = False,
    skip_upstream: bool = False,
    repeats: int = 3,
    batch_hours: int = 24,
    verify: bool = True,
    batch_held_back: bool = False,
) -> dict[str, Any]:
    """Run the benchmark; figures as plain numbers (seconds, and ratios to the baseline scan).

    ``batch_held_back``: the caller already moved the batch aside (``hold_back``) and built staging and
    identity without it (with ``skip_upstream``), as benchmarks/suite.py does to build upstream once.
    """
    if skip_upstream and batch_hours > 0 and not batch_held_back:
        raise ValueError(
            "skip_upstream reuses staging built from all the raw data: use it with batch_hours=0, "
            "or hold the batch back before building upstream (batch_held_back)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(database) if database else Path(tmp) / "bench.duckdb"
        target = Path(tmp) / "target"
        figures: dict[str, Any] = {"batch_hours": batch_hours}
        if not skip_generate:
            from reverse_etl.datagen import generate

            figures["customers"] = customers  # a reused file's size is its own (customers_built)

            start = time.perf_counter()
            generate(str(db), customers, seed=seed)
            figures["generate_seconds"] = round(time.perf_counter() - start, 1)
        if batch_held_back:
            figures["batch_raw_rows"] = held_back_rows(db)
        else:
            land_batch(db)  # a reused file may still hold a batch from an interrupted run
            figures["batch_raw_rows"] = hold_back(db, batch_hours) if batch_hours > 0 else 0

        upstream: dict[str, float] = {}
        if not skip_upstream:
            figures["upstream_seconds"] = round(dbt(["build", "--threads", "1", *UPSTREAM], db, target), 1)
            upstream = model_seconds(target)
        figures["full_wall_seconds"] = round(
            dbt(["run", "--threads", "1", "--full-refresh", *PROFILE_MODELS], db, target), 1
        )
        full = model_seconds(target)
        scan = scan_seconds(db, repeats)
        events = scalar(db, "select count(*) from marts.customer_events")
        figures.update(
            events=events,
            customers_built=scalar(db, "select count(*) from marts.customer_traits"),
            scan_seconds=round(scan, 3),
            staging={
                name: {"seconds": round(s, 2), "x_scan": round(s / scan, 2)}
                for name, s in upstream.items()
                if name.startswith("stg_")
            },
            models={name: {"seconds": round(s, 2), "x_scan": round(s / scan, 2)} for name, s in full.items()},
            all_models_x_scan=round(sum(full.values()) / scan, 1),
            profile_segment_models_x_scan=round(profile_and_segment_seconds(full) / scan, 1),
        )

        if batch_hours > 0:
            land_batch(db)
            dbt(["build", *UPSTREAM], db, target)
            figures["incremental_wall_seconds"] = round(
                dbt(["run", "--threads", "1", *PROFILE_MODELS], db, target), 1
            )
            incremental = model_seconds(target)
            figures["incremental"] = {
                "new_events": scalar(db, "select count(*) from marts.customer_events") - events,
                "models": {name: round(s, 2) for name, s in incremental.items()},
                "all_models_x_scan": round(sum(incremental.values()) / scan, 1),
                "profile_segment_models_x_scan": round(profile_and_segment_seconds(incremental) / scan, 1),
                "all_models_vs_full": round(sum(incremental.values()) / sum(full.values()), 3),
            }
            for name in INCREMENTAL_MODELS:
                seconds = incremental[name]
                figures["incremental"].update(
                    {
                        f"{name}_seconds": round(seconds, 2),
                        f"{name}_x_scan": round(seconds / scan, 2),
                        f"{name}_vs_full": round(seconds / full[name], 3),
                    }
                )
            if verify:
                figures["incremental"]["equals_full_refresh"] = equals_full_refresh(db, target)
    return figures


def equals_full_refresh(database: Path, target: Path) -> bool:
    """Whether a full refresh of the incremental models gives exactly the incremental tables' rows."""
    con = duckdb.connect(str(database))
    try:
        for name, schema in INCREMENTAL_MODELS.items():
            con.execute(f"create or replace table main.bench_{name} as select * from {schema}.{name}")
    finally:
        con.close()
    dbt(["run", "--select", *INCREMENTAL_MODELS, "--full-refresh"], database, target)
    con = duckdb.connect(str(database))
    differ = 0
    try:
        for name, schema in INCREMENTAL_MODELS.items():
            columns = f"* exclude ({BOOKKEEPING_COLUMNS[name]})" if name in BOOKKEEPING_COLUMNS else "*"
            differ += con.execute(
                f"select count(*) from ((select {columns} from main.bench_{name} except all "
                f"select {columns} from {schema}.{name}) union all (select {columns} from {schema}.{name} "
                f"except all select {columns} from main.bench_{name}))"
            ).fetchone()[0]
            con.execute(f"drop table main.bench_{name}")
    finally:
        con.close()
    return differ == 0


def report(figures: dict[str, Any]) -> None:
    scan = figures["scan_seconds"]
    print(
        f"\n{figures['events']:,} events, {figures['customers_built']:,} customers; "
        f"baseline scan (one GROUP BY over customer_events): {scan:.2f}s\n"
    )
    print(f"{'model (full build)':34} {'seconds':>8} {'x scan':>7}")
    print(f"{'-' * 34} {'-' * 8} {'-' * 7}")
    for name, row in sorted(figures["staging"].items(), key=lambda kv: -kv[1]["seconds"]):
        print(f"{name:34} {row['seconds']:8.2f} {row['x_scan']:7.1f}")
    print(f"{'-' * 34} {'-' * 8} {'-' * 7}")
    for name, row in sorted(figures["models"].items(), key=lambda kv: -kv[1]["seconds"]):
        print(f"{name:34} {row['seconds']:8.2f} {row['x_scan']:7.1f}")
    total = sum(row["seconds"] for row in figures["models"].values())
    print(f"{'-' * 34} {'-' * 8} {'-' * 7}")
    print(f"{'all profile and segment models':34} {total:8.2f} {figures['all_models_x_scan']:7.1f}")
    print(f"(dbt wall time including start-up: {figures['full_wall_seconds']:.1f}s)")
    inc = figures.get("incremental")
    if inc:
        print(
            f"\nincremental run, batch of the last {figures['batch_hours']}h "
            f"({figures['batch_raw_rows']:,} raw rows, {inc['new_events']:,} new events):"
        )
        for name in INCREMENTAL_MODELS:
            full = figures["models"][name]["seconds"]
            print(
                f"  {name}: {inc[f'{name}_seconds']:.2f}s = {inc[f'{name}_x_scan']:.2f} x scan "
                f"= {inc[f'{name}_vs_full']:.3f} x its full build ({full:.2f}s)"
            )
        print(
            f"  all profile and segment models: {inc['all_models_x_scan']:.1f} x scan "
            f"= {inc['all_models_vs_full']:.3f} x the full build"
        )
        if "equals_full_refresh" in inc:
            print(f"incremental table equals a full refresh: {inc['equals_full_refresh']}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--customers", type=int, default=100_000, help="Persons to generate (1000000 for 1M)."
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--database", type=Path, help="Warehouse file (default: a temporary one).")
    parser.add_argument(
        "--skip-generate", action="store_true", help="Reuse the raw data already in --database."
    )
    parser.add_argument(
        "--skip-upstream",
        action="store_true",
        help="Reuse staging and identity already built in --database (with --batch-hours 0).",
    )
    parser.add_argument("--repeats", type=int, default=3, help="Runs of the baseline scan (median).")
    parser.add_argument(
        "--batch-hours",
        type=int,
        default=24,
        help="Hours of newest events held back and loaded by the incremental run (0: no incremental run).",
    )
    parser.add_argument(
        "--no-verify", action="store_true", help="Skip the full-refresh comparison after the incremental run."
    )
    parser.add_argument("--json", type=Path, help="Also write the figures to this JSON file.")
    args = parser.parse_args()
    if args.skip_generate and not args.database:
        parser.error("--skip-generate needs --database (the file that holds the raw data)")
    figures = measure(
        customers=args.customers,
        seed=args.seed,
        database=args.database,
        skip_generate=args.skip_generate,
        skip_upstream=args.skip_upstream,
        repeats=args.repeats,
        batch_hours=args.batch_hours,
        verify=not args.no_verify,
    )
    report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
