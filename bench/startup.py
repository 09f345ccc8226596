"""Cold start of `medchat serve` on embedded stores: seconds until /readyz answers 200, and web RSS.

Run: .venv/bin/python bench/startup.py [--runs N]
Each run uses a new, empty data dir (the first start of a fresh install), then a warm restart on it.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

MEDCHAT = str(Path(sys.executable).with_name("medchat"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tree_rss_mb(pid: int) -> dict[str, float]:
    """RSS per process name below (and including) ``pid``."""
    rss: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
            cmdline = (entry / "cmdline").read_text().replace("\0", " ")
        except OSError:
            continue
        ancestors, current = set(), int(entry.name)
        while current > 1 and current not in ancestors:
            ancestors.add(current)
            try:
                current = int(Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                break
        if pid in ancestors:
            name = "nx-27017" if "nx-27017" in cmdline else "redis-server" if "redis-server" in cmdline else "medchat"
            rss[name] = rss.get(name, 0) + int(status.get("VmRSS", "0 kB").split()[0]) / 1024
    return rss


def start_once(data_dir: Path) -> tuple[float, dict[str, float]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDCHAT_")}
    env.update({"MEDCHAT_DATA_DIR": str(data_dir), "MEDCHAT_PORT": str(port), "MEDCHAT_LOG_LEVEL": "WARNING"})
    started = time.perf_counter()
    process = subprocess.Popen([MEDCHAT, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                raise RuntimeError("medchat serve exited before it was ready")
            time.sleep(0.01)
        ready = time.perf_counter() - started
        httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        return ready, tree_rss_mb(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cold, warm, rss = [], [], {}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp) / "data"
            seconds, rss = start_once(data_dir)
            cold.append(seconds)
            warm.append(start_once(data_dir)[0])
    print(f"medchat serve → /readyz 200 on embedded stores, {args.runs} runs")
    print(f"  cold (empty data dir): median {statistics.median(cold):.2f} s, max {max(cold):.2f} s")
    print(f"  warm (existing data):  median {statistics.median(warm):.2f} s, max {max(warm):.2f} s")
    print("  RSS after the first page (MB): " + ", ".join(f"{name} {mb:.0f}" for name, mb in sorted(rss.items())))


if __name__ == "__main__":
    main()
