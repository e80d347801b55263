"""CLI cold-start figures (not a test): wall time of fresh `imageroute` processes.

    uv run python bench/bench_cli.py [--repeat 5]

`--help` shows the import cost of the CLI alone (adapters and SDKs load only when a route of
their kind is used); `gen` on the demo route is the README's first command after install.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "bot"]


def timed(args: list[str], cwd: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(CLI + args, cwd=cwd, check=True, capture_output=True, env=os.environ.copy())
    return time.perf_counter() - t0


def main(repeat: int) -> None:
    root = Path(__file__).resolve().parents[1]
    os.environ["PYTHONPATH"] = str(root)
    with tempfile.TemporaryDirectory() as tmp:
        for label, args in (
            ("imageroute --help", ["--help"]),
            ("imageroute gen (demo, SQLite, local assets)", ["gen", "a red bicycle on a beach"]),
            ("imageroute advise", ["advise", "we are on GCP and need transparent logos"]),
        ):
            times = [timed(args, tmp) for _ in range(repeat)]
            print(
                f"{label}: median {statistics.median(times):.2f} s, "
                f"min {min(times):.2f} s over {repeat} fresh processes"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    main(parser.parse_args().repeat)
