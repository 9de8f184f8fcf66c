"""``python -m caffe2ops.compat script.py [args]`` (or ``-m module [args]``): run an unmodified
Caffe2 script with ``caffe2.*`` imports resolved to caffe2ops."""

from __future__ import annotations

import os
import runpy
import sys

from caffe2ops import compat

USAGE = "usage: python -m caffe2ops.compat (script.py | -m module) [args ...]"


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not argv else sys.stdout)
        return 0 if argv else 2
    if argv[0] == "-m":
        if len(argv) < 2:
            print(USAGE, file=sys.stderr)
            return 2
        compat.install()
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return 0
    script = argv[0]
    if not os.path.exists(script):
        print(f"caffe2ops.compat: no such script: {script}", file=sys.stderr)
        return 2
    compat.install()
    sys.argv = list(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
