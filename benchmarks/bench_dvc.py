"""How fast DVC answers on this project: no-op `dvc repro`, `dvc status`, `dvc exp show`.

Run after a full `dvc repro` (so everything is up to date):
    python benchmarks/bench_dvc.py [--runs 5]
Prints min / median / max wall seconds per command. The goal for a no-op repro is <= 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

COMMANDS = [
    ["dvc", "repro"],
    ["dvc", "status"],
    ["dvc", "exp", "show", "--no-pager"],
]


def time_command(command: list[str], runs: int) -> list[float]:
    subprocess.run(command, capture_output=True, check=True)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - start)
        if command[:2] == ["dvc", "repro"] and "Running stage" in result.stdout:
            raise SystemExit("dvc repro ran a stage: run a full `dvc repro` first, then benchmark the no-op")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"{'command':<28} {'min s':>7} {'median s':>9} {'max s':>7}")
    for command in COMMANDS:
        times = time_command(command, args.runs)
        print(f"{' '.join(command):<28} {min(times):>7.2f} {statistics.median(times):>9.2f} {max(times):>7.2f}")


if __name__ == "__main__":
    main()
