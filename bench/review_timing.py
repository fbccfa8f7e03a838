"""Benchmark: wall time and peak memory of `platformctl review` per stack.

    .venv/bin/python bench/review_timing.py            # dev and prod, 3 runs each
    .venv/bin/python bench/review_timing.py --runs 5 prod

Each run is a fresh process (what a user or CI pays: interpreter start, SDK imports, the
evaluation, the input check, rendering). Peak memory is the child's maximum resident set size.
Targets (PLATFORM.md: "seconds, not minutes"): under 10 s and under 1 GiB per stack on the
project's 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_SECONDS, TARGET_MIB = 10.0, 1024.0


def one_run(stack: str) -> tuple[float, float]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "platformctl.cli", "review", stack],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"platformctl review {stack} failed: {process.stderr.read().decode()}")
    return seconds, usage.ru_maxrss / 1024.0  # ru_maxrss is KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stacks", nargs="*", default=["dev", "prod"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    failed = False
    print(f"{'stack':<8} {'runs':>4} {'median s':>9} {'max s':>7} {'peak MiB':>9}")
    for stack in args.stacks:
        results = [one_run(stack) for _ in range(args.runs)]
        seconds = [r[0] for r in results]
        peak = max(r[1] for r in results)
        print(f"{stack:<8} {args.runs:>4} {statistics.median(seconds):>9.2f} {max(seconds):>7.2f} "
              f"{peak:>9.1f}")
        failed |= max(seconds) > TARGET_SECONDS or peak > TARGET_MIB
    print(f"targets: < {TARGET_SECONDS:.0f} s and < {TARGET_MIB:.0f} MiB per review"
          + ("  -- MISSED" if failed else "  -- met"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
