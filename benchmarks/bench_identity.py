"""Connected components: the identity stitcher's algorithm against SciPy on the same edge list.

    python benchmarks/bench_identity.py --edges 10000000
    python benchmarks/bench_identity.py --edges 78000000 --no-scipy \\
        --memory-limit 16GB --temp-directory /var/tmp/cc --json cc100m.json   # ~100M identifiers
    python benchmarks/bench_identity.py --database warehouse/cdp.duckdb      # a warehouse's own edges

Builds a synthetic identity graph in DuckDB (persons with 1 + Exp(3) identifiers linked by a random
tree, plus chains of 200 persons through shared identifiers and one hub; ~1.28 identifiers per edge),
or copies the identity edges of a built warehouse, then times, in the same run:

* floor: one GROUP BY over the directed edge list (the cost of a single pass);
* scipy: export of the edges from DuckDB + ``scipy.sparse.csgraph.connected_components``;
* cdp: ``cdp_connected_components`` (the macro int_identity_clusters runs) through
  ``dbt run-operation``, timed inside the operation so dbt's start-up is excluded; its peak memory is
  the dbt process's peak RSS.

Prints rounds and the ratios, and checks both methods find the same number of components. The DuckDB
settings for the cdp run (memory_limit, temp_directory, threads; preserve_insertion_order is always
false, as in the built-in profile) go into a profile written for the run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import yaml

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
    # Only the edges are needed from here on: free the space of the helper tables.
    con.execute("drop table bench.ids")
    con.execute("drop table bench.nodes")


def copy_warehouse_edges(con: duckdb.DuckDBPyConnection, warehouse: Path) -> None:
    """The identity edges of a built warehouse (int_identity_edges), as bench.edges."""
    if not warehouse.exists():
        raise SystemExit(f"{warehouse}: no such warehouse file; build it first (cdp build)")
    con.execute(f"attach '{warehouse}' as warehouse (read_only)")
    try:
        con.execute("create schema if not exists bench")
        con.execute(
            "create or replace table bench.edges as select identifier_key_a as node_a, identifier_key_b as node_b "
            "from warehouse.intermediate.int_identity_edges"
        )
    except duckdb.CatalogException as exc:
        raise SystemExit(
            f"{warehouse}: no intermediate.int_identity_edges ({exc}); run `cdp build` on it first"
        ) from exc
    finally:
        con.execute("detach warehouse")


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
    table = con.sql(
        "with e as (select node_a, node_b from bench.edges where node_a <> node_b), "
        "v as (select node, row_number() over () - 1 as i from (select node_a as node from e "
        "union select node_b from e)) "
        "select va.i as a, vb.i as b from e join v va on va.node = e.node_a join v vb on vb.node = e.node_b"
    ).to_arrow_table()
    a = table.column("a").to_numpy()
    b = table.column("b").to_numpy()
    del table
    n = int(max(a.max(), b.max())) + 1
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n)).tocsr()
    del a, b
    count, _ = connected_components(graph, directed=False)
    return time.perf_counter() - start, int(count)


def write_profile(directory: Path, settings: dict[str, Any], threads: int | None) -> Path:
    """The project's built-in profile, with the run's DuckDB settings added."""
    profile = yaml.safe_load((PROJECT / "reverse_etl" / "profiles" / "profiles.yml").read_text())
    output = profile["cdp"]["outputs"][profile["cdp"]["target"]]
    output["settings"] = {**(output.get("settings") or {}), **settings}
    if threads:
        output["threads"] = threads
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "profiles.yml").write_text(yaml.safe_dump(profile))
    return directory


def cdp_cc(db: Path, profiles: Path) -> tuple[float, int, float]:
    """Seconds inside the operation, rounds, and the dbt process's peak RSS in MB."""
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
        str(profiles),
        "--target-path",
        str(db.parent / "target"),
    ]
    env = {**os.environ, "CDP_DUCKDB_PATH": str(db), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    match = re.search(r"rounds=(\d+) seconds=([\d.]+)", out.stdout)
    if out.returncode != 0 or not match:
        raise SystemExit(f"dbt run-operation failed:\n{out.stdout}\n{out.stderr}")
    return float(match.group(2)), int(match.group(1)), peak_mb


def measure(
    edges: int = 1_000_000,
    seed: int = 1,
    database: str | None = None,
    scipy: bool = True,
    memory_limit: str | None = None,
    temp_directory: str | None = None,
    threads: int | None = None,
    workdir: str | None = None,
) -> dict[str, Any]:
    """Time both methods on one edge list (synthetic, or a warehouse's identity edges) and check that
    they agree; returns the figures as plain numbers."""
    settings: dict[str, Any] = {"preserve_insertion_order": False}
    if memory_limit:
        settings["memory_limit"] = memory_limit
    if temp_directory:
        settings["temp_directory"] = temp_directory
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        db = Path(tmp) / "cc.duckdb"
        con = duckdb.connect(str(db), config={"preserve_insertion_order": False})
        started = time.perf_counter()
        if database:
            copy_warehouse_edges(con, Path(database))
        else:
            build_graph(con, edges, seed)
        build_seconds = time.perf_counter() - started
        edge_count, nodes = con.execute(
            "select count(*), (select count(distinct node) from (select node_a node from bench.edges "
            "where node_a <> node_b union all select node_b from bench.edges where node_a <> node_b)) "
            "from bench.edges"
        ).fetchone()
        floor = floor_pass(con)
        scipy_seconds, scipy_components = scipy_cc(con) if scipy else (None, None)
        con.close()
        profiles = write_profile(Path(tmp) / "profiles", settings, threads)
        cdp_seconds, rounds, peak_mb = cdp_cc(db, profiles)
        con = duckdb.connect(str(db), read_only=True)
        cdp_components, rows, distinct_nodes = con.execute(
            "select count(distinct rep), count(*), count(distinct node) from bench.components"
        ).fetchone()
        con.close()
    if rows != distinct_nodes or distinct_nodes != nodes:
        raise SystemExit(f"cdp output has {rows} rows for {distinct_nodes} distinct of {nodes} nodes")
    if scipy and cdp_components != scipy_components:
        raise SystemExit(f"cdp found {cdp_components} components, SciPy {scipy_components}")
    return {
        "source": database or "synthetic",
        "edges": int(edge_count),
        "nodes": int(nodes),
        "components": int(cdp_components),
        "rounds": rounds,
        "graph_build_s": round(build_seconds, 2),
        "floor_s": round(floor, 3),
        "scipy_s": round(scipy_seconds, 3) if scipy_seconds is not None else None,
        "cdp_s": round(cdp_seconds, 3),
        "cdp_peak_rss_mb": round(peak_mb),
        "ratio_scipy": round(cdp_seconds / scipy_seconds, 3) if scipy_seconds else None,
        "ratio_floor": round(cdp_seconds / floor, 3),
        "duckdb_settings": {**settings, "threads": threads or "profile"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--edges", type=int, default=1_000_000, help="approximate number of edges")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", help="use this warehouse's identity edges instead of a synthetic graph")
    parser.add_argument("--no-scipy", action="store_true", help="skip SciPy (very large graphs)")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit for the cdp run, e.g. 16GB")
    parser.add_argument("--temp-directory", help="DuckDB temp_directory (spill) for the cdp run")
    parser.add_argument("--threads", type=int, help="DuckDB threads for the cdp run (default: the profile's)")
    parser.add_argument("--workdir", help="where the benchmark's DuckDB file goes (default: the system temp)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    r = measure(
        edges=args.edges,
        seed=args.seed,
        database=args.database,
        scipy=not args.no_scipy,
        memory_limit=args.memory_limit,
        temp_directory=args.temp_directory,
        threads=args.threads,
        workdir=args.workdir,
    )
    scipy_s = f"{r['scipy_s']:>8.2f}" if r["scipy_s"] is not None else f"{'-':>8}"
    ratio = f"{r['ratio_scipy']:>9.2f}" if r["ratio_scipy"] is not None else f"{'-':>9}"
    print(
        f"{'edges':>12} {'nodes':>12} {'components':>11} {'floor s':>8} {'scipy s':>8} "
        f"{'cdp s':>8} {'rounds':>6} {'cdp/scipy':>9} {'cdp/floor':>9} {'cdp MB':>7}"
    )
    print(
        f"{r['edges']:>12,} {r['nodes']:>12,} {r['components']:>11,} {r['floor_s']:>8.2f} {scipy_s} "
        f"{r['cdp_s']:>8.2f} {r['rounds']:>6} {ratio} {r['ratio_floor']:>9.2f} {r['cdp_peak_rss_mb']:>7,}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n")


if __name__ == "__main__":
    main()
