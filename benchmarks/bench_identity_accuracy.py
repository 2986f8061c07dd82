"""Identity resolution end to end on generated data: build time and accuracy against the ground truth.

    python benchmarks/bench_identity_accuracy.py --customers 10000 1000000

For each size: `cdp generate` into a fresh warehouse, `dbt build` of the identity models (staging,
observations, hubs, connected components, limits, marts), then pairwise precision and recall over
identifiers (reverse_etl/identity_accuracy.py). Prints one table.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

from reverse_etl.datagen import generate
from reverse_etl.dbt import run_dbt
from reverse_etl.identity_accuracy import measure
from reverse_etl.warehouse import Warehouse

SELECT = [
    "--select",
    "+identity_graph",
    "+identity_rejections",
    "--exclude",
    "test_type:unit",
    "--indirect-selection",
    "cautious",
]


def run(customers: int, seed: int, workdir: Path) -> dict[str, float]:
    database = workdir / f"identity_{customers}.duckdb"
    started = time.perf_counter()
    generate(database, customers, seed=seed)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    result = run_dbt(["build", "--target-path", str(workdir / "target"), *SELECT], database=database)
    built = time.perf_counter() - started
    if not result.success:
        raise SystemExit(f"dbt build failed at {customers}: {result.failures} {result.exception}")
    rounds = None
    dbt_log = Path("logs/dbt.log")
    if dbt_log.exists():
        found = re.findall(r"converged in (\d+) rounds", dbt_log.read_text()[-2_000_000:])
        rounds = int(found[-1]) if found else None
    with Warehouse(database) as wh:
        accuracy = measure(wh)
        customers_built = wh.scalar("select count(distinct customer_id) from marts.identity_graph")
        edges = wh.scalar("select count(*) from intermediate.int_identity_edges")
    return {
        "customers": customers,
        "generate_s": generated,
        "build_s": built,
        "edges": edges,
        "rounds": rounds or 0,
        "customers_built": customers_built,
        "identifiers": accuracy.identifiers,
        "precision": accuracy.precision,
        "recall": accuracy.recall,
        "recall_all": accuracy.recall_of_all,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, nargs="+", default=[10_000])
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.customers:
            rows.append(run(n, args.seed, Path(tmp)))
    header = (
        f"{'persons':>10} {'generate s':>10} {'build s':>8} {'edges':>11} {'rounds':>6} {'customers':>10} "
        f"{'identifiers':>11} {'precision':>9} {'recall':>7} {'recall(all)':>11}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['customers']:>10,} {r['generate_s']:>10.1f} {r['build_s']:>8.1f} {r['edges']:>11,} "
            f"{r['rounds']:>6} {r['customers_built']:>10,} {r['identifiers']:>11,} {r['precision']:>9.5f} "
            f"{r['recall']:>7.5f} {r['recall_all']:>11.5f}"
        )
    print("recall: of the pairs the records make linkable; recall(all): of every true pair.")


if __name__ == "__main__":
    main()
