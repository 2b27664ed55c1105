"""Time the demo-world generator against a same-run baseline.

    .venv/bin/python bench/bench_world.py [--scale 100]

Baseline: DuckDB writing the same number of plain rows (``range`` into a table of the same width) in
the same run, so the ratio says what the generator's modelling costs on top of raw insert speed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb

from tools.warehouse.demo import init_home


def main(argv: list[str] | None = None) -> int:
    """Print generator time, rows per second, file size and the ratio to the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=100)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        report = init_home(Path(tmp) / "warehouse.duckdb", scale=args.scale)
        rows = report.counts["performance_daily"]
        con = duckdb.connect(str(Path(tmp) / "baseline.duckdb"))
        started = time.perf_counter()
        con.execute(f"""CREATE TABLE t AS SELECT DATE '2026-01-01' + (i % 90)::INTEGER AS day, 'ad-' || i AS ad_id,
            i AS impressions, i AS clicks, (i / 100)::DECIMAL(14, 2) AS cost,
            (i / 1000)::DECIMAL(12, 2) AS conversions, (i / 10)::DECIMAL(14, 2) AS value FROM range({rows}) r(i)""")
        con.execute("CHECKPOINT")
        baseline = time.perf_counter() - started
        con.close()
    print(f"demo world scale {args.scale}: {rows:,} performance rows, {report.counts['ads']:,} ads, "
          f"{(report.size_bytes or 0) / 1e6:.1f} MB in {report.seconds:.2f} s ({rows / report.seconds:,.0f} rows/s)")
    ratio = report.seconds / baseline
    print(f"baseline (plain rows, same count): {baseline:.2f} s; generator / baseline = {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
