"""Connected components: the identity stitcher's algorithm against SciPy on the same edge list.

    python benchmarks/bench_identity.py --edges 10000000

Builds a synthetic identity graph in DuckDB (persons with 1 + Exp(3) identifiers linked by a random
tree, plus chains of 200 persons through shared identifiers and one hub), then times, in the same run:

* floor: one GROUP BY over the directed edge list (the cost of a single pass);
* scipy: export of the edges from DuckDB + ``scipy.sparse.csgraph.connected_components``;
* cdp: ``cdp_connected_components`` (the macro int_identity_clusters runs) through
  ``dbt run-operation``, timed inside the operation so dbt's start-up is excluded.

Prints rounds, the ratios, and checks both methods find the same number of components.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

PROJECT = Path(__file__).resolve().parents[1]


def build_graph(con: duckdb.DuckDBPyConnection, target_edges: int, seed: int) -> None:
    persons = max(1, int(target_edges / 3.0))
    con.execute("create schema if not exists bench")
    con.execute(f"select setseed({(seed % 1000) / 1000})")
    # Each person: 1 + floor(Exp(3)) identifiers; identifier i > 0 links to a random earlier one.
    con.execute(
        f"""
        create or replace table bench.ids as
        with p as (select range as person, 1 + floor(-3 * ln(1 - random()))::int as n from range({persons}))
        select person, unnest(range(n)) as pos, n from p
        """
    )
    con.execute(
        """
        create or replace table bench.nodes as
        select person, pos, (hash(person, pos, 17) >> 1)::bigint as node from bench.ids
        """
    )
    con.execute(
        """
        create or replace table bench.edges as
        select a.node as node_a, b.node as node_b
        from bench.nodes a
        join bench.nodes b on a.person = b.person and b.pos = floor(random() * a.pos)::int
        where a.pos > 0
        union all
        -- chains: 0.2% of persons linked in runs of 200 through shared identifiers
        select a.node, b.node
        from bench.nodes a join bench.nodes b on b.person = a.person + 1 and a.pos = 0 and b.pos = 0
        where a.person % 500 = 0 and a.person % 100000 < 200 * 500
        union all
        -- one hub shared by 0.1% of persons
        select 42, node from bench.nodes where pos = 0 and person % 1000 = 7
        """
    )


def floor_pass(con: duckdb.DuckDBPyConnection) -> float:
    start = time.perf_counter()
    con.execute(
        "select count(*) from (select node_a, count(*) from (select node_a, node_b from bench.edges "
        "union all select node_b, node_a from bench.edges) group by node_a)"
    ).fetchall()
    return time.perf_counter() - start


def scipy_cc(con: duckdb.DuckDBPyConnection) -> tuple[float, int]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    start = time.perf_counter()
    table = con.execute(
        "with e as (select node_a, node_b from bench.edges where node_a <> node_b), "
        "v as (select node, row_number() over () - 1 as i from (select node_a as node from e "
        "union select node_b from e)) "
        "select va.i as a, vb.i as b from e join v va on va.node = e.node_a join v vb on vb.node = e.node_b"
    ).to_arrow_table()
    a = table.column("a").to_numpy()
    b = table.column("b").to_numpy()
    n = int(max(a.max(), b.max())) + 1
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n)).tocsr()
    count, _ = connected_components(graph, directed=False)
    return time.perf_counter() - start, int(count)


def cdp_cc(db: Path) -> tuple[float, int]:
    env_db = {"CDP_DUCKDB_PATH": str(db)}
    cmd = [
        sys.executable,
        "-m",
        "dbt.cli.main",
        "run-operation",
        "cdp_run_connected_components",
        "--args",
        "{edges: bench.edges, output: bench.components}",
        "--project-dir",
        str(PROJECT),
        "--profiles-dir",
        str(PROJECT / "reverse_etl" / "profiles"),
        "--target-path",
        str(db.parent / "target"),
    ]
    import os

    out = subprocess.run(cmd, env={**os.environ, **env_db}, capture_output=True, text=True, check=False)
    match = re.search(r"rounds=(\d+) seconds=([\d.]+)", out.stdout)
    if out.returncode != 0 or not match:
        raise SystemExit(f"dbt run-operation failed:\n{out.stdout}\n{out.stderr}")
    return float(match.group(2)), int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--edges", type=int, default=1_000_000, help="approximate number of edges")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "cc.duckdb"
        con = duckdb.connect(str(db))
        build_graph(con, args.edges, args.seed)
        edges, nodes = con.execute(
            "select count(*), (select count(distinct node) from (select node_a node from bench.edges "
            "union all select node_b from bench.edges)) from bench.edges"
        ).fetchone()
        floor = floor_pass(con)
        scipy_seconds, scipy_components = scipy_cc(con)
        con.close()
        cdp_seconds, rounds = cdp_cc(db)
        con = duckdb.connect(str(db), read_only=True)
        cdp_components = con.execute("select count(distinct rep) from bench.components").fetchone()[0]
        isolated = 0  # every node of bench.edges is in an edge
        con.close()
    assert cdp_components + isolated == scipy_components, (cdp_components, scipy_components)
    print(
        f"{'edges':>12} {'nodes':>12} {'components':>11} {'floor s':>8} {'scipy s':>8} "
        f"{'cdp s':>8} {'rounds':>6} {'cdp/scipy':>9} {'cdp/floor':>9}"
    )
    print(
        f"{edges:>12,} {nodes:>12,} {cdp_components:>11,} {floor:>8.2f} {scipy_seconds:>8.2f} "
        f"{cdp_seconds:>8.2f} {rounds:>6} {cdp_seconds / scipy_seconds:>9.2f} {cdp_seconds / floor:>9.2f}"
    )


if __name__ == "__main__":
    main()
