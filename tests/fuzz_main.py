"""``make fuzz MINUTES=5``: run tests/test_fuzz.py over and over, with many examples per test and
larger arrays, until the time is up; stops at the first failure (non-zero exit).

Each round is a fresh interpreter with fresh Hypothesis seeds, so rounds explore different
inputs (protobuf bytes and text, random nets, both APIs, threads, fork).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--examples", type=int, default=300,
                        help="Hypothesis examples per test and round")
    ns = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, CAFFE2OPS_FUZZ_EXAMPLES=str(ns.examples))
    deadline = time.monotonic() + 60 * ns.minutes
    rounds = 0
    while True:
        rounds += 1
        print(f"fuzz round {rounds} ({ns.examples} examples per test)", flush=True)
        cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
               str(root / "tests" / "test_fuzz.py")]
        code = subprocess.call(cmd, cwd=root, env=env)
        if code != 0:
            print(f"fuzz: failure in round {rounds}", flush=True)
            return code
        if time.monotonic() >= deadline:
            break
    print(f"fuzz: {rounds} rounds in {ns.minutes:g} min, no failure", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
