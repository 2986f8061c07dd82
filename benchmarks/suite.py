"""Every performance figure, in one command: generate, build, and measure each layer against its baseline.

    python benchmarks/suite.py                          # 1M and 10M customers (hours at 10M)
    python benchmarks/suite.py --customers 1000000      # one size
    python benchmarks/suite.py --quick                  # 20k customers: a smoke run in minutes
    python benchmarks/suite.py --json results.json      # also write the figures
    python benchmarks/suite.py --workdir w --reuse-data # rebuild and measure from the data generated in w

For each size, in a fresh warehouse file:

1. ``cdp generate`` (time, peak memory); with ``--reuse-data`` into a raw file that is kept and copied,
   so that the next run can measure a change without generating again;
2. ``dbt build`` of the whole project, time per layer (staging, identity, profiles, segments, tests)
   from dbt's run_results.json, on the data less its newest day of events (held back for step 4);
3. identity: connected components of this dataset's identity edges by the stitcher's macro, against
   SciPy's ``connected_components`` on the same edges (rounds, ratio);
4. profiles: the profile and segment models against one GROUP BY scan of ``customer_events``, then
   the held-back day lands and the incremental run is timed against the full build
   (benchmarks/bench_profiles.py on this warehouse);
5. syncs: the diff of an N-row table against its state vs a plain full outer join, delivery to the
   webhook emulator, the share of a rate-limited receiver's limit, peak memory
   (benchmarks/bench_sync.py at N rows).

Each step runs in a child process, so the peak memory reported is that step's own. The table it prints
goes in docs/benchmarks.md with the machine described.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "benchmarks"))

# The newest hours of events held back before the build: the incremental batch of the profile step.
BATCH_HOURS = 24

# Layers of the project, by the folder a node lives in (first match wins).
LAYERS = (
    ("staging", ("models/staging/",)),
    ("identity", ("models/intermediate/identity/", "models/marts/identity/", "seeds/identity/")),
    ("profiles", ("models/intermediate/profiles/", "models/marts/profiles/")),
    ("segments", ("models/segments/", "models/marts/segments/", "seeds/segments/")),
)


def in_child(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``fn`` in a forked child; its result plus its wall time and its own peak RSS (MB)."""
    read_fd, write_fd = os.pipe()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        try:
            payload = {"ok": True, "result": fn()}
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            payload = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        with os.fdopen(write_fd, "w") as out:
            json.dump(payload, out, default=str)
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as inp:
        raw = inp.read()
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    payload = json.loads(raw) if raw else {"ok": False, "error": f"child exited with status {status}"}
    if not payload["ok"]:
        print(payload.get("trace", ""), file=sys.stderr)
        raise RuntimeError(payload["error"])
    return {**payload["result"], "seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024}


def layer_of(path: str) -> str:
    for layer, prefixes in LAYERS:
        if any(path.startswith(p) for p in prefixes):
            return layer
    return "other"


def build_times(target: Path) -> dict[str, float]:
    """Seconds per layer from dbt's artifacts: models and seeds by folder, every test as `tests`."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    manifest = json.loads((target / "manifest.json").read_text())
    nodes = {**manifest["nodes"], **manifest.get("unit_tests", {})}
    per: dict[str, float] = {}
    for result in results:
        node = nodes.get(result["unique_id"], {})
        kind = node.get("resource_type", "")
        layer = "tests" if kind in ("test", "unit_test") else layer_of(node.get("original_file_path", ""))
        per[layer] = per.get(layer, 0.0) + float(result.get("execution_time") or 0.0)
    return per


def step_generate(database: Path, customers: int) -> dict[str, Any]:
    from reverse_etl.datagen import generate

    summary = generate(database, customers)
    rows = getattr(summary, "rows", None)
    return {"rows": sum(rows.values()) if isinstance(rows, dict) else rows}


def step_build(database: Path, target: Path) -> dict[str, Any]:
    from reverse_etl.dbt import run_dbt

    result = run_dbt(
        ["build", "--exclude", "test_type:unit", "--target-path", str(target)],
        project=PROJECT,
        database=database,
    )
    if not result.success:
        raise RuntimeError("dbt build failed:\n" + "\n".join(result.failures))
    import duckdb

    con = duckdb.connect(str(database), read_only=True)
    try:
        counts = {
            name: con.execute(f"select count(*) from {relation}").fetchone()[0]
            for name, relation in (
                ("events", "marts.customer_events"),
                ("customers", "marts.customer_profiles"),
                ("identifiers", "marts.identity_graph"),
                ("edges", "intermediate.int_identity_edges"),
            )
        }
    finally:
        con.close()
    return {"layers": build_times(target), **counts}


def run_size(
    customers: int, workdir: Path, *, sync_rows: int | None, quick: bool = False, reuse_data: bool = False
) -> dict[str, Any]:
    import bench_identity
    import bench_profiles
    import bench_sync

    raw = workdir / f"raw_{customers}.duckdb"
    raw_figures = workdir / f"raw_{customers}.json"
    database = workdir / f"cdp_{customers}.duckdb"
    target = workdir / f"target_{customers}"
    out: dict[str, Any] = {"customers": customers}
    database.unlink(missing_ok=True)
    if reuse_data and raw.exists() and raw_figures.exists():
        print(f"== {customers:,} customers: reusing the dataset generated in {raw}", flush=True)
        out["generate"] = json.loads(raw_figures.read_text())
    else:
        print(f"== {customers:,} customers: generate", flush=True)
        # With --reuse-data the generated file is kept untouched for the next run (the later steps work
        # on a copy); otherwise they work on it directly, which saves a copy of the raw data on disk.
        generated = raw if reuse_data else database
        generated.unlink(missing_ok=True)
        out["generate"] = in_child(lambda: step_generate(generated, customers))
        if reuse_data:
            raw_figures.write_text(json.dumps(out["generate"]))
    if reuse_data:
        shutil.copyfile(raw, database)
    # The newest day of events is held back before the build: the build is then the profile
    # benchmark's full build too, and the held-back day its incremental batch, so staging and identity
    # are built twice per size instead of three times.
    out["batch_raw_rows"] = bench_profiles.hold_back(database, BATCH_HOURS)
    print(f"== {customers:,} customers: dbt build", flush=True)
    out["build"] = in_child(lambda: step_build(database, target))
    print(f"== {customers:,} customers: identity vs SciPy on the same edges", flush=True)
    out["identity"] = in_child(lambda: bench_identity.measure(database=str(database)))
    print(f"== {customers:,} customers: profiles vs one scan", flush=True)
    out["profiles"] = in_child(
        lambda: bench_profiles.measure(
            database=str(database),
            skip_generate=True,
            skip_upstream=True,
            batch_hours=BATCH_HOURS,
            batch_held_back=True,
        )
    )
    rows = sync_rows or customers
    print(f"== {rows:,} rows: sync diff, delivery, pacing, memory", flush=True)
    out["sync"] = in_child(lambda: bench_sync.measure(rows=rows, quick=quick))
    return out


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(results: list[dict[str, Any]]) -> str:
    """One Markdown table: a row per measure, a column per size."""
    sizes = [f"{r['customers']:,} customers" for r in results]
    lines = ["| measure | " + " | ".join(sizes) + " |", "|---|" + "---|" * len(sizes)]

    def row(label: str, pick: Callable[[dict[str, Any]], Any], digits: int = 1) -> None:
        values = []
        for r in results:
            try:
                values.append(fmt(pick(r), digits))
            except (KeyError, TypeError):
                values.append("-")
        lines.append(f"| {label} | " + " | ".join(values) + " |")

    row("raw rows generated", lambda r: r["generate"]["rows"])
    row("generate, s", lambda r: r["generate"]["seconds"])
    row("generate, peak RSS MB", lambda r: r["generate"]["peak_rss_mb"], 0)
    row(
        "events / identifiers / customers",
        lambda r: "{events:,} / {identifiers:,} / {customers:,}".format(**r["build"]),
    )
    row("dbt build total, s", lambda r: r["build"]["seconds"])
    for layer in ("staging", "identity", "profiles", "segments", "tests"):
        row(f"  {layer}, s", lambda r, layer=layer: r["build"]["layers"].get(layer))
    row("dbt build, peak RSS MB", lambda r: r["build"]["peak_rss_mb"], 0)
    row("identity edges (this dataset's)", lambda r: r["identity"]["edges"])
    row("identity rounds", lambda r: r["identity"]["rounds"])
    row("connected components: cdp / SciPy", lambda r: r["identity"]["ratio_scipy"], 2)
    row("profiles: one GROUP BY scan of customer_events, s", lambda r: r["profiles"]["scan_seconds"], 2)
    row(
        "profiles: customer_events / one scan", lambda r: r["profiles"]["models"]["customer_events"]["x_scan"]
    )
    for model in ("customer_sessions", "customer_traits"):
        row(
            f"profiles: {model} / one scan",
            lambda r, model=model: r["profiles"]["models"][model]["x_scan"],
        )
    row("profiles + segments, all models / one scan", lambda r: r["profiles"]["all_models_x_scan"])
    row(
        "  without timeline and sessions / one scan",
        lambda r: r["profiles"].get("profile_segment_models_x_scan"),
    )
    for model in ("customer_events", "customer_sessions"):
        row(
            f"{model} incremental (a day of new events) / its full build",
            lambda r, model=model: r["profiles"]["incremental"][f"{model}_vs_full"],
            3,
        )
    row(
        "profiles + segments incremental (a day), all models / one scan",
        lambda r: r["profiles"]["incremental"]["all_models_x_scan"],
    )
    row(
        "  without timeline and sessions / one scan",
        lambda r: r["profiles"]["incremental"].get("profile_segment_models_x_scan"),
    )
    row("sync diff / full outer join", lambda r: r["sync"]["diff_ratio"], 2)
    row("webhook delivery, records/s", lambda r: r["sync"]["webhook_records_per_s"], 0)
    row("rate-limited receiver, share of limit", lambda r: r["sync"]["pacing_share"], 2)
    row("sync run, peak RSS MB", lambda r: r["sync"]["peak_rss_mb"], 0)
    return "\n".join(lines)


def machine() -> str:
    cpus = os.cpu_count()
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = 0.0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    import duckdb

    return (
        f"{platform.machine()} {cpus} CPU, {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, DuckDB {duckdb.__version__}, load average at start {load:.1f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--customers", default="1000000,10000000", help="comma-separated sizes (default: 1M and 10M)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="one size of 20k customers, the sync benchmark's quick sizes"
    )
    parser.add_argument("--sync-rows", type=int, help="rows of the sync benchmark (default: the size)")
    parser.add_argument("--workdir", type=Path, help="keep the warehouses here (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--reuse-data",
        action="store_true",
        help="with --workdir: keep the generated dataset there and build from a copy; a later run with"
        " the same flag reuses it (its generate figures are the recorded ones)",
    )
    args = parser.parse_args(argv)
    sizes = [20_000] if args.quick else [int(float(s)) for s in args.customers.split(",") if s.strip()]
    sync_rows = args.sync_rows
    print(f"machine: {machine()}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="cdp-suite-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for size in sizes:
            results.append(
                run_size(size, workdir, sync_rows=sync_rows, quick=args.quick, reuse_data=args.reuse_data)
            )
            if args.json:
                args.json.write_text(
                    json.dumps({"machine": machine(), "results": results}, indent=2, default=str)
                )
    print()
    print(table(results))


if __name__ == "__main__":
    main()
