"""Sync engine benchmark: diff cost against a plain join, delivery throughput, pacing, memory.

    python benchmarks/bench_sync.py            # 1M-row diff, 100k-record delivery, memory 100k..1M
    python benchmarks/bench_sync.py --large    # adds a 10M-row diff and a 3M-row memory point
    python benchmarks/bench_sync.py --quick    # small sizes, a smoke run

Every figure is compared with a baseline measured in the same run:

* diff: the engine's one-statement diff (full outer join on the key, hash of the mapped columns,
  duplicate and consent checks, JSON of changed records) against a plain full outer join of the same
  keys; then the same diff streamed into Python as the engine consumes it.
* delivery: records per second of a first full run to the webhook receiver over loopback HTTP (signed,
  4 workers), and to local JSONL files (no HTTP: the engine's own cost).
* pacing: a receiver that throttles above N requests/s, and a sync told that limit: achieved share.
* memory: peak RSS of a full first run and of a 4%-change run, per table size, each in a fresh process.
"""

from __future__ import annotations

import argparse
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


def bench_diff(rows: int, workdir: Path) -> list[list[str]]:
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
        wh.scalar(plain_sql)  # warm the cache for both
        t_plain = min(timed(lambda: wh.scalar(plain_sql))[0] for _ in range(3))
        count_sql = f"select count(*), count(__fields) from ({query.sql}) d"
        t_diff, _ = min(timed(lambda: wh.query(count_sql, query.params)) for _ in range(3))
        changed = wh.query(count_sql, query.params)[0]

        def stream() -> int:
            return sum(len(b) for b in wh.stream(query.sql, query.params, batch_size=5000))

        t_stream, streamed = timed(stream)
    db.unlink()
    return [
        [f"diff {rows:,} rows", "plain full outer join on key", f"{t_plain:.2f} s", "1.00x"],
        [
            "",
            f"engine diff in SQL ({changed['count_star()']:,} rows out)",
            f"{t_diff:.2f} s",
            f"{t_diff / t_plain:.2f}x",
        ],
        [
            "",
            f"engine diff streamed to Python ({streamed:,})",
            f"{t_stream:.2f} s",
            f"{t_stream / t_plain:.2f}x",
        ],
    ]


def bench_delivery(records: int, workdir: Path) -> list[list[str]]:
    out = []
    with WebhookEmulator() as em:
        os.environ[SECRET_ENV] = em.secret
        for label, dest in [
            ("webhook, 4 workers, 1000/batch", {"type": "webhook", "url": em.url, "secret": SECRET_ENV}),
            (
                "local JSONL files (no HTTP)",
                {"type": "files", "path": str(workdir / "files"), "format": "jsonl"},
            ),
        ]:
            db = workdir / f"delivery_{len(out)}.duckdb"
            with Warehouse(db) as wh:
                people(wh, records)
                cfg = config(dest, batch_size=1000)
                t, summary = timed(lambda cfg=cfg, wh=wh: run_sync(cfg, wh))
                assert summary.status == "success", summary
            db.unlink()
            out.append(
                [f"delivery {records:,} rows", label, f"{summary.delivered / t:,.0f} rec/s", f"{t:.1f} s"]
            )
        assert len(em.records) == int(records * 0.95)
    return out


def bench_pacing(limit: float, seconds: float, workdir: Path) -> list[list[str]]:
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
    return [
        [
            f"pacing, limit {limit:g} req/s",
            f"{summary.requests} requests, {summary.retried} throttled; while sending",
            f"{sending:.1f} req/s",
            f"{sending / limit:.0%} of limit",
        ],
        [
            "",
            f"whole run incl. diff and bookkeeping ({t:.1f} s)",
            f"{overall:.1f} req/s",
            f"{overall / limit:.0%} of limit",
        ],
    ]


def memory_child(rows: int, workdir: str, step: str) -> None:
    """Runs in a fresh process. ``setup`` builds the table; ``run`` opens the warehouse, then does a
    full first run and a 4%-change run, printing peak RSS (MB) at each point."""
    work = Path(workdir)
    db = work / f"mem_{rows}.duckdb"
    if step == "setup":
        with Warehouse(db) as wh:
            people(wh, rows)
        return
    cfg = config({"type": "files", "path": str(work / f"mem_out_{rows}"), "format": "jsonl"}, batch_size=5000)
    with Warehouse(db) as wh:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        first = run_sync(cfg, wh)
        t1 = time.perf_counter() - t0
        peak_first = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        mutate(wh, rows)
        t0 = time.perf_counter()
        second = run_sync(cfg, wh)
        t2 = time.perf_counter() - t0
        peak_second = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        base // 1024,
        peak_first // 1024,
        peak_second // 1024,
        f"{t1:.1f}",
        f"{t2:.1f}",
        first.delivered,
        second.delivered,
    )


def bench_memory(sizes: list[int], workdir: Path) -> list[list[str]]:
    out = []
    for rows in sizes:
        cmd = [sys.executable, __file__, "--memory-child", str(rows), str(workdir)]
        subprocess.run([*cmd, "setup"], check=True)
        proc = subprocess.run([*cmd, "run"], capture_output=True, text=True, check=True)
        base, first, second, t1, t2, n1, n2 = proc.stdout.split()
        out.append(
            [
                f"memory {rows:,} rows",
                f"full run {int(n1):,} rec in {t1} s; change run {int(n2):,} rec in {t2} s",
                f"peak {first} MB; {second} MB",
                f"{base} MB after open",
            ]
        )
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
    parser.add_argument("--large", action="store_true", help="also diff 10M rows and measure memory at 3M")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--delivery-rows", type=int, default=100_000)
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(int(args.memory_child[0]), args.memory_child[1], args.memory_child[2])
        return
    if args.quick:
        diff_sizes, delivery, mem_sizes, pacing = [100_000], 10_000, [20_000, 50_000], (20.0, 3.0)
    else:
        diff_sizes = [args.rows] + ([10_000_000] if args.large else [])
        delivery = args.delivery_rows
        mem_sizes = [100_000, 300_000, 1_000_000] + ([3_000_000] if args.large else [])
        pacing = (50.0, 8.0)
    results: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="bench_sync_") as tmp:
        work = Path(tmp)
        for n in diff_sizes:
            results += bench_diff(n, work)
            print(table(results[-3:]), flush=True)
        results += bench_delivery(delivery, work)
        results += bench_pacing(*pacing, work)
        results += bench_memory(mem_sizes, work)
    print()
    print(table(results))


if __name__ == "__main__":
    main()
