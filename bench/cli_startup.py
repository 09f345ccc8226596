"""What a CLI command costs before it does anything: wall time, CPU and peak RSS of `medchat --help`,
`medchat --version` and `medchat user --help`, with the load average beside each figure.

Run: .venv/bin/python bench/cli_startup.py [--runs N] [--other PATH/TO/medchat]
`--other` measures a second install (an older checkout's `.venv/bin/medchat`) in the same run, so the
two are compared under the same load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = (["--help"], ["--version"], ["user", "--help"])


def measure(executable: str, argv: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + sys) and peak RSS in MB of one run."""
    started = time.perf_counter()
    process = subprocess.Popen([executable, *argv], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{executable} {' '.join(argv)} exited with {process.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--other", help="another install's medchat executable, measured in the same run")
    args = parser.parse_args()
    installs = {"this": str(Path(sys.executable).with_name("medchat"))}
    if args.other:
        installs["other"] = args.other
    print(f"{'install':<6} {'command':<16} {'wall p50 s':>10} {'cpu p50 s':>10} {'rss MB':>8}  load average")
    for argv in COMMANDS:
        for name, executable in installs.items():
            runs = [measure(executable, argv) for _ in range(args.runs)]
            load = " ".join(f"{value:.2f}" for value in os.getloadavg())
            wall = statistics.median(run[0] for run in runs)
            cpu = statistics.median(run[1] for run in runs)
            rss = statistics.median(run[2] for run in runs)
            print(f"{name:<6} {' '.join(argv):<16} {wall:>10.2f} {cpu:>10.2f} {rss:>8.0f}  {load}")


if __name__ == "__main__":
    main()
