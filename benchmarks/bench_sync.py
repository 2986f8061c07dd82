"""Sync engine benchmark: diff cost against a plain join, delivery throughput, pacing, memory.

    python benchmarks/bench_sync.py            # 1M-row diff, 100k-record delivery, memory 100k..1M
    python benchmarks/bench_sync.py --large    # adds a 10M-row diff and a 3M-row memory point
    python benchmarks/bench_sync.py --quick    # small sizes, a smoke run
    python benchmarks/bench_sync.py --json figures.json   # also write the figures as JSON

``measure(**options)`` returns the same figures as a dict (benchmarks/suite.py calls it).

Every figure is compared with a baseline measured in the same run:

* diff: the engine's one-statement diff (full outer join on the key, hash of the mapped columns,
  duplicate and consent checks, JSON of changed records) against a plain full outer join of the same
  keys; then the same diff streamed into Python as the engine consumes it.
* delivery: records per second of a first full run to the webhook receiver over loopback HTTP (signed,
  4 workers), and to local JSONL files (no HTTP: the engine's own cost).
* pacing: a receiver that throttles above N requests/s, and a sync told that limit: achieved share.
* memory: peak RSS of a full first run and of a 4%-change run, per table size, each in a fresh process
  (the engine bounds DuckDB's memory for a run: CDP_SYNC_MEMORY_LIMIT, default 512MB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from reverse_etl.emulators.base import FaultConfig
from reverse_etl.emulators.webhook import WebhookEmulator
from reverse_etl.sync import state
from reverse_etl.sync.config import SyncConfig, parse_sync
from reverse_etl.sync.diff import diff_query, resolve_source
from reverse_etl.sync.engine import run_sync
from reverse_etl.warehouse import Warehouse

SECRET_ENV = "CDP_BENCH_WEBHOOK_SECRET"
MAPPING = {
    "email": "email",
    "name": {"template": "{first_name} {last_name}"},
    "score": "score",
    "country": "country",
    "source": {"constant": "cdp"},
}


def people(wh: Warehouse, n: int, start: int = 0) -> None:
    wh.execute(
        f"""create or replace table main.people as
        select i as id, 'user' || i || '@example.com' as email, 'First' || (i % 5000) as first_name,
               'Last' || (i % 7919) as last_name, (i * 7) % 1000 as score,
               ['GB', 'US', 'FR', 'DE'][1 + i % 4] as country, i % 20 <> 0 as consent_email_marketing
        from range({start}, {start + n}) t(i)"""
    )


def mutate(wh: Warehouse, n: int) -> None:
    """1% removed, 2% changed, 1% added."""
    wh.execute("delete from main.people where id % 100 = 1")
    wh.execute("update main.people set score = score + 1 where id % 50 = 2")
    wh.execute(
        f"""insert into main.people
        select i, 'new' || i || '@example.com', 'New', 'Person', 1, 'GB', true from range({n}, {n + n // 100}) t(i)"""
    )


def config(destination: dict[str, Any], name: str = "bench", batch_size: int | None = None) -> SyncConfig:
    data: dict[str, Any] = {
        "source": {"table": "main.people"},
        "destination": destination,
        "mode": "mirror",
        "primary_key": "id",
        "mapping": MAPPING,
        "consent": ["email_marketing"],
    }
    if batch_size:
        data["batch_size"] = batch_size
    return parse_sync(data, Path("syncs") / f"{name}.yml")


def timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def seed_state(wh: Warehouse, cfg: SyncConfig) -> None:
    """The state a completed first run leaves (same hashes), without sending a million records."""
    state.ensure_schema(wh)
    query = diff_query(cfg, resolve_source(cfg, wh))
    wh.execute("delete from cdp_sync.sync_state where sync_name = ?", [cfg.name])
    wh.execute(
        f"""insert into cdp_sync.sync_state
            (sync_name, record_key, row_hash, status, in_destination, payload, attempts, acked_at, last_run_id, updated_at)
        select ?, __key, __hash, 'synced', true, __fields, 0, now(), 'seed', now()
        from ({query.sql}) d where __op = 'add'""",
        [cfg.name, *query.params],
    )


def bench_diff(rows: int, workdir: Path) -> dict[str, Any]:
    db = workdir / f"diff_{rows}.duckdb"
    cfg = config({"type": "files", "path": str(workdir / "out")})
    with Warehouse(db) as wh:
        people(wh, rows)
        seed_state(wh, cfg)
        mutate(wh, rows)
        wh.execute("checkpoint")
        query = diff_query(cfg, resolve_source(cfg, wh))
        plain_sql = """select count(*) from (select cast(id as varchar) as k from main.people) p
            full outer join (select record_key from cdp_sync.sync_state where sync_name = 'bench') s
            on p.k = s.record_key"""
        count_sql = f"select count(*) as n, count(__fields) as f from ({query.sql}) d"
        wh.scalar(plain_sql)  # warm the cache for both
        wh.query(count_sql, query.params)
        # Interleaved, best of five: a busy machine slows both alike.
        t_plain = t_diff = float("inf")
        for _ in range(5):
            t_plain = min(t_plain, timed(lambda: wh.scalar(plain_sql))[0])
            t_diff = min(t_diff, timed(lambda: wh.query(count_sql, query.params))[0])
        changed = wh.query(count_sql, query.params)[0]

        def stream() -> int:
            return sum(len(b) for b in wh.stream(query.sql, query.params, batch_size=5000))

        t_stream, streamed = timed(stream)
    db.unlink()
    return {
        "rows": rows,
        "rows_out": int(changed["n"]),
        "plain_join_s": round(t_plain, 3),
        "diff_s": round(t_diff, 3),
        "ratio": round(t_diff / t_plain, 2),
        "streamed": streamed,
        "stream_s": round(t_stream, 3),
        "stream_ratio": round(t_stream / t_plain, 2),
    }


def rows_diff(d: dict[str, Any]) -> list[list[str]]:
    return [
        [f"diff {d['rows']:,} rows", "plain full outer join on key", f"{d['plain_join_s']:.2f} s", "1.00x"],
        [
            "",
            f"engine diff in SQL ({d['rows_out']:,} rows out)",
            f"{d['diff_s']:.2f} s",
            f"{d['ratio']:.2f}x",
        ],
        [
            "",
            f"engine diff streamed to Python ({d['streamed']:,})",
            f"{d['stream_s']:.2f} s",
            f"{d['stream_ratio']:.2f}x",
        ],
    ]


def bench_delivery(records: int, workdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"records": records}
    with WebhookEmulator() as em:
        os.environ[SECRET_ENV] = em.secret
        for label, dest in [
            ("webhook", {"type": "webhook", "url": em.url, "secret": SECRET_ENV}),
            ("files", {"type": "files", "path": str(workdir / "files"), "format": "jsonl"}),
        ]:
            db = workdir / f"delivery_{label}.duckdb"
            with Warehouse(db) as wh:
                people(wh, records)
                cfg = config(dest, batch_size=1000)
                t, summary = timed(lambda cfg=cfg, wh=wh: run_sync(cfg, wh))
                assert summary.status == "success", summary
            db.unlink()
            out[f"{label}_records_per_s"] = round(summary.delivered / t)
            out[f"{label}_s"] = round(t, 1)
        assert len(em.records) == int(records * 0.95)
    return out


def rows_delivery(d: dict[str, Any]) -> list[list[str]]:
    return [
        [
            f"delivery {d['records']:,} rows",
            "webhook, 4 workers, 1000/batch",
            f"{d['webhook_records_per_s']:,} rec/s",
            f"{d['webhook_s']:.1f} s",
        ],
        ["", "local JSONL files (no HTTP)", f"{d['files_records_per_s']:,} rec/s", f"{d['files_s']:.1f} s"],
    ]


def bench_pacing(limit: float, seconds: float, workdir: Path) -> dict[str, Any]:
    batch = 10
    records = int(limit * seconds * batch)
    with WebhookEmulator(FaultConfig(rate_limit_per_second=limit, retry_after=1.0)) as em:
        os.environ[SECRET_ENV] = em.secret
        db = workdir / "pacing.duckdb"
        with Warehouse(db) as wh:
            people(wh, int(records / 0.95) + 1)
            dest = {"type": "webhook", "url": em.url, "secret": SECRET_ENV, "requests_per_second": limit}
            cfg = config(dest, batch_size=batch)
            t, summary = timed(lambda: run_sync(cfg, wh))
        db.unlink()
        arrivals = em.accepted_at
    overall = (summary.requests - summary.retried) / t
    sending = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    return {
        "limit_per_s": limit,
        "requests": summary.requests,
        "throttled": summary.retried,
        "sending_per_s": round(sending, 1),
        "share": round(sending / limit, 3),
        "run_s": round(t, 1),
        "overall_per_s": round(overall, 1),
        "overall_share": round(overall / limit, 3),
    }


def rows_pacing(d: dict[str, Any]) -> list[list[str]]:
    return [
        [
            f"pacing, limit {d['limit_per_s']:g} req/s",
            f"{d['requests']} requests, {d['throttled']} throttled; while sending",
            f"{d['sending_per_s']:.1f} req/s",
            f"{d['share']:.0%} of limit",
        ],
        [
            "",
            f"whole run incl. diff and bookkeeping ({d['run_s']:.1f} s)",
            f"{d['overall_per_s']:.1f} req/s",
            f"{d['overall_share']:.0%} of limit",
        ],
    ]


def memory_child(rows: int, workdir: str, step: str) -> None:
    """Runs in a fresh process, so each peak RSS is of that step alone. ``setup`` builds the table,
    ``mutate`` changes 4% of it; ``first`` and ``change`` open the warehouse and run the sync, printing
    RSS after opening, peak RSS (MB), seconds and records delivered."""
    work = Path(workdir)
    db = work / f"mem_{rows}.duckdb"
    if step in ("setup", "mutate"):
        with Warehouse(db) as wh:
            (people if step == "setup" else mutate)(wh, rows)
        return
    cfg = config({"type": "files", "path": str(work / f"mem_out_{rows}"), "format": "jsonl"}, batch_size=5000)
    with Warehouse(db) as wh:
        base = peak_rss_mb()
        t0 = time.perf_counter()
        summary = run_sync(cfg, wh)
        seconds = time.perf_counter() - t0
        peak = peak_rss_mb()
    assert summary.status == "success", summary
    print(base, peak, f"{seconds:.1f}", summary.delivered)


def peak_rss_mb() -> int:
    """This process's peak RSS. Linux's VmHWM belongs to the process's own memory; ``ru_maxrss`` also
    keeps the peak of the parent it was forked from (a benchmark that just diffed 10M rows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def bench_memory(rows: int, workdir: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--memory-child", str(rows), str(workdir)]

    def step(name: str) -> list[str]:
        return subprocess.run([*cmd, name], capture_output=True, text=True, check=True).stdout.split()

    step("setup")
    base, first, t1, n1 = step("first")
    step("mutate")
    _, second, t2, n2 = step("change")
    (workdir / f"mem_{rows}.duckdb").unlink()
    return {
        "rows": rows,
        "after_open_mb": int(base),
        "peak_first_run_mb": int(first),
        "peak_change_run_mb": int(second),
        "first_run_s": float(t1),
        "change_run_s": float(t2),
        "first_run_records": int(n1),
        "change_run_records": int(n2),
    }


def rows_memory(d: dict[str, Any]) -> list[list[str]]:
    return [
        [
            f"memory {d['rows']:,} rows",
            f"full run {d['first_run_records']:,} rec in {d['first_run_s']} s; "
            f"change run {d['change_run_records']:,} rec in {d['change_run_s']} s",
            f"peak {d['peak_first_run_mb']} MB; {d['peak_change_run_mb']} MB",
            f"{d['after_open_mb']} MB after open",
        ]
    ]


def measure(
    rows: int = 1_000_000,
    large: bool = False,
    quick: bool = False,
    delivery_rows: int = 100_000,
    memory_sizes: list[int] | None = None,
    pacing_limit: float = 50.0,
    pacing_seconds: float = 8.0,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the benchmark; figures as plain numbers (seconds, records per second, ratios, MB).

    Keys the suite reads: ``diff_ratio`` (engine diff / plain full outer join at ``rows``),
    ``webhook_records_per_s``, ``pacing_share`` (achieved share of a receiver's rate limit while
    sending) and ``peak_rss_mb`` (the largest peak of the memory runs)."""
    if quick:
        diff_sizes, delivery_n, mem_sizes = [100_000], 10_000, [20_000, 50_000]
        pacing_limit, pacing_seconds = 20.0, 3.0
    else:
        diff_sizes = [rows] + ([10_000_000] if large and rows != 10_000_000 else [])
        delivery_n = delivery_rows
        mem_sizes = memory_sizes or [100_000, 300_000, 1_000_000] + ([3_000_000, 10_000_000] if large else [])
    figures: dict[str, Any] = {"rows": diff_sizes[0]}
    with tempfile.TemporaryDirectory(prefix="bench_sync_") as tmp:
        work = Path(tmp)
        figures["diff"] = []
        for n in diff_sizes:
            figures["diff"].append(bench_diff(n, work))
            if progress:
                print(table(rows_diff(figures["diff"][-1])), flush=True)
        figures["delivery"] = bench_delivery(delivery_n, work)
        if progress:
            print(table(rows_delivery(figures["delivery"])), flush=True)
        figures["pacing"] = bench_pacing(pacing_limit, pacing_seconds, work)
        if progress:
            print(table(rows_pacing(figures["pacing"])), flush=True)
        figures["memory"] = []
        for n in mem_sizes:
            figures["memory"].append(bench_memory(n, work))
            if progress:
                print(table(rows_memory(figures["memory"][-1])), flush=True)
    figures["diff_ratio"] = figures["diff"][0]["ratio"]
    for d in figures["diff"][1:]:
        figures[f"diff_ratio_{d['rows']}"] = d["ratio"]
    figures["webhook_records_per_s"] = figures["delivery"]["webhook_records_per_s"]
    figures["files_records_per_s"] = figures["delivery"]["files_records_per_s"]
    figures["pacing_share"] = figures["pacing"]["share"]
    figures["peak_rss_mb"] = max(
        max(m["peak_first_run_mb"], m["peak_change_run_mb"]) for m in figures["memory"]
    )
    figures["peak_rss_mb_by_rows"] = {
        str(m["rows"]): max(m["peak_first_run_mb"], m["peak_change_run_mb"]) for m in figures["memory"]
    }
    return figures


def all_rows(figures: dict[str, Any]) -> list[list[str]]:
    out: list[list[str]] = []
    for d in figures["diff"]:
        out += rows_diff(d)
    out += rows_delivery(figures["delivery"])
    out += rows_pacing(figures["pacing"])
    for m in figures["memory"]:
        out += rows_memory(m)
    return out


def table(rows: list[list[str]]) -> str:
    header = ["benchmark", "what", "result", "vs baseline"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the diff benchmark")
    parser.add_argument(
        "--large", action="store_true", help="also diff 10M rows and measure memory at 3M and 10M"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--delivery-rows", type=int, default=100_000)
    parser.add_argument(
        "--memory-rows", help="comma-separated table sizes of the memory runs (default 100k,300k,1M)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(int(args.memory_child[0]), args.memory_child[1], args.memory_child[2])
        return
    memory_sizes = [int(n) for n in args.memory_rows.split(",")] if args.memory_rows else None
    figures = measure(
        rows=args.rows,
        large=args.large,
        quick=args.quick,
        delivery_rows=args.delivery_rows,
        memory_sizes=memory_sizes,
        progress=True,
    )
    print()
    print(table(all_rows(figures)))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
