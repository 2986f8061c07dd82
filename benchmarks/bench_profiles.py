"""Profiles and segments: build time of each model against one GROUP BY scan of customer_events.

    python benchmarks/bench_profiles.py                       # 100k customers (~2M events)
    python benchmarks/bench_profiles.py --customers 1000000   # 1M customers (~20M events)
    python benchmarks/bench_profiles.py --database w.duckdb --skip-generate   # reuse a generated warehouse

Generates the raw data (`cdp generate`), builds staging and identity once (not timed), then runs
`dbt run --select customer_events+ int_profile_attributes` with one thread, so each model's time in
run_results.json is its own. The baseline, in the same run and on the same file, is one pass over
customer_events: `create table as select customer_id, count(*), min, max, sum ... group by customer_id`.
The ratio says how many such scans each model costs; customer_traits should stay within a few.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

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


def dbt(args: list[str], database: Path, target: Path) -> None:
    result = run_dbt([*args, "--target-path", str(target)], project=PROJECT, database=database, quiet=True)
    if not result.success:
        raise SystemExit("dbt failed:\n" + "\n".join(result.failures) + f"\n{result.exception or ''}")


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
    return {r["unique_id"].split(".")[-1]: r["execution_time"] for r in results if r["status"] == "success"}


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
        "--skip-upstream", action="store_true", help="Reuse staging and identity already built in --database."
    )
    parser.add_argument("--repeats", type=int, default=3, help="Runs of the baseline scan (median).")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        database = args.database or Path(tmp) / "bench.duckdb"
        target = Path(tmp) / "target"
        if not args.skip_generate:
            from reverse_etl.datagen import generate

            start = time.perf_counter()
            generate(str(database), args.customers, seed=args.seed)
            print(f"generated {args.customers:,} customers in {time.perf_counter() - start:.1f}s")
        if not args.skip_upstream:
            start = time.perf_counter()
            dbt(
                [
                    "build",
                    "--select",
                    "+customer_events",
                    "suppression_list",
                    "--exclude",
                    "test_type:unit",
                    "--indirect-selection",
                    "cautious",
                ],
                database,
                target,
            )
            seconds = time.perf_counter() - start
            print(f"staging + identity + customer_events built (with tests) in {seconds:.1f}s")

        start = time.perf_counter()
        dbt(
            [
                "run",
                "--threads",
                "1",
                "--select",
                "customer_events+",
                "int_profile_attributes",
                "--exclude",
                "test_type:unit",
            ],
            database,
            target,
        )
        wall = time.perf_counter() - start
        models = model_seconds(target)
        scan = scan_seconds(database, args.repeats)
        con = duckdb.connect(str(database), read_only=True)
        try:
            events = con.execute("select count(*) from marts.customer_events").fetchone()[0]
            customers = con.execute("select count(*) from marts.customer_traits").fetchone()[0]
        finally:
            con.close()

    print(f"\n{events:,} events, {customers:,} customers; baseline scan (one GROUP BY): {scan:.2f}s\n")
    print(f"{'model':32} {'seconds':>8} {'x scan':>7}")
    print(f"{'-' * 32} {'-' * 8} {'-' * 7}")
    for name, seconds in sorted(models.items(), key=lambda kv: -kv[1]):
        print(f"{name:32} {seconds:8.2f} {seconds / scan:7.1f}")
    total = sum(models.values())
    print(f"{'-' * 32} {'-' * 8} {'-' * 7}")
    print(f"{'all profile and segment models':32} {total:8.2f} {total / scan:7.1f}")
    print(f"(dbt wall time including start-up: {wall:.1f}s)")


if __name__ == "__main__":
    main()
