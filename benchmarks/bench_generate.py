"""Time and peak memory of ``cdp generate`` at growing sizes.

Each size runs in a fresh process (so its peak RSS is its own) into a temporary DuckDB file. The table
compares every size with the smallest one: time per person should stay flat (linear scaling) and peak
RSS should not grow with the number of persons (memory is bounded by the chunk).

    python benchmarks/bench_generate.py                     # 100k and 1M persons
    python benchmarks/bench_generate.py --sizes 10000 100000 --chunk-size 5000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = """
import json, resource, sys, time
from reverse_etl.datagen import generate
path, n, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
summary = generate(path, n, chunk_size=chunk)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "seconds": summary.seconds,
    "cpu": usage.ru_utime + usage.ru_stime,
    "peak_rss_mb": usage.ru_maxrss / 1024,
    "rows": summary.total_rows,
    "segment_events": sum(v for k, v in summary.rows.items()
                          if k in ("segment.pages", "segment.tracks", "segment.identifies")),
}))
"""


def run(size: int, chunk_size: int, workdir: Path) -> dict[str, float]:
    path = workdir / f"bench_{size}.duckdb"
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(size), str(chunk_size)],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["file_mb"] = path.stat().st_size / 2**20
    path.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--workdir", type=Path, default=None, help="Where the temporary files go.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        results = []
        for size in sorted(args.sizes):
            r = run(size, args.chunk_size, Path(tmp))
            results.append((size, r))
            print(
                f"  {size:>10,} persons: {r['seconds']:.1f}s, peak RSS {r['peak_rss_mb']:.0f} MB",
                file=sys.stderr,
            )

    base_size, base = results[0]
    base_per_person = base["seconds"] / base_size
    header = (
        f"{'persons':>10} {'seconds':>8} {'cpu s':>7} {'rows':>12} {'rows/s':>10} {'seg ev/person':>13} "
        f"{'peak RSS MB':>11} {'file MB':>8} {'s/person vs base':>16} {'RSS vs base':>11}"
    )
    print(f"generate, chunk size {args.chunk_size:,} (base = {base_size:,} persons)")
    print(header)
    print("-" * len(header))
    for size, r in results:
        print(
            f"{size:>10,} {r['seconds']:>8.1f} {r['cpu']:>7.1f} {r['rows']:>12,} {r['rows'] / r['seconds']:>10,.0f} "
            f"{r['segment_events'] / size:>13.1f} {r['peak_rss_mb']:>11.0f} {r['file_mb']:>8.0f} "
            f"{r['seconds'] / size / base_per_person:>16.2f} {r['peak_rss_mb'] / base['peak_rss_mb']:>11.2f}"
        )


if __name__ == "__main__":
    main()
