"""`make bench`: every benchmark, each as ratios to a baseline measured in the same run.

Absolute numbers vary with the machine and its load; the ratios are what to compare between runs.
`--million` (or CORRAL_BENCH_MILLION=1) runs the read benchmark at 1,000,000 findings instead of
100,000; name benchmarks to run only those (`python -m benchmarks bench_reads --million`).
"""

from __future__ import annotations

import importlib
import sys
import time

# Ordered cheapest first; each module's `main()` prints its own lines as it goes.
BENCHMARKS = (
    "benchmarks.bench_normalize",
    "benchmarks.bench_ingest",
    "benchmarks.bench_ledger",
    "benchmarks.bench_inventory",
    "benchmarks.bench_store_sql",
    "benchmarks.bench_store_dynamodb",
    "benchmarks.bench_reads",
    "benchmarks.bench_cold_start",
)


def main(names: list[str]) -> None:
    """Run the named benchmarks (all by default)."""
    for name in names or BENCHMARKS:
        started = time.perf_counter()
        importlib.import_module(name if "." in name else f"benchmarks.{name}").main()
        print(f"({name} took {time.perf_counter() - started:.0f} s)\n", flush=True)


if __name__ == "__main__":
    main([name for name in sys.argv[1:] if not name.startswith("--")])
