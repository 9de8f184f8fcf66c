"""Command line: ``caffe2ops demo`` (the main job) and ``caffe2ops ops`` (operator list)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="caffe2ops", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build, differentiate, run and check a net of every op")
    demo.add_argument("--seed", type=int, default=0)
    sub.add_parser("ops", help="list the registered operators")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from caffe2ops.demo import main as demo_main

        return demo_main(args.seed)
    from caffe2ops.runtime.schema import get_schema, registered_types

    for name in registered_types():
        schema = get_schema(name)
        alias = f" (alias of {schema.type})" if schema.type != name else ""
        text = " ".join(schema.doc.split())
        first = text.split(". ")[0].rstrip(".") + "."
        print(f"{name}{alias}: {first}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
