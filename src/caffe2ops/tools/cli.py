"""The ``caffe2ops`` command line.

``caffe2ops ops [NAME]``, ``describe OP`` (``--all --markdown`` writes docs/operators.md),
``plot OP``, ``run PREDICT_NET``, ``draw NET``, ``export-onnx``, ``import-onnx``, ``train`` (the
main job: trains a model on handwritten digits), ``check`` (the gradient-check tour) and
``--version``. Net files may be binary
(``.pb``) or text (``.pbtxt``) protobuf: the content decides, not the name.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import caffe2ops
from caffe2ops.errors import OperatorError


class CommandError(Exception):
    """A user error the command line reports in one line (no traceback)."""


def _key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    if not key:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return key, value


def parse_number(text: str) -> int | float | str:
    """``"2"`` -> 2, ``"0.5"`` -> 0.5, ``"true"`` -> True, anything else stays a string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caffe2ops", description="Caffe2's operators without Caffe2: inspect operators, "
        "plot them, run, draw and convert nets.")
    parser.add_argument("--version", action="version", version=f"caffe2ops {caffe2ops.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    text = "run the gradient-check tour (finite differences, every gradient)"
    p = sub.add_parser("check", help=text, description=text)
    p.add_argument("--seed", type=int, default=0)

    from caffe2ops.tools import train

    p = sub.add_parser("train", help="the main job: train a similarity model on handwritten "
                       "digits and show what gradient clipping buys",
                       description=train.__doc__.split("\n\n")[0])
    train.add_arguments(p)

    p = sub.add_parser("ops", help="list the registered operators (or one)")
    p.add_argument("name", nargs="?", help="an operator type")

    p = sub.add_parser("describe", help="an operator's schema, gradient and a runnable example")
    p.add_argument("name", nargs="?", help="an operator type")
    p.add_argument("--all", action="store_true", help="every registered operator")
    p.add_argument("--markdown", action="store_true", help="Markdown (docs/operators.md)")
    p.add_argument("-o", "--output", help="write to this file instead of standard output")

    p = sub.add_parser("plot", help="plot an operator and its derivative (needs the plot extra)")
    p.add_argument("name", help="an element-wise operator type, e.g. Clip")
    p.add_argument("--arg", action="append", type=_key_value, default=[], metavar="K=V",
                   help="an operator argument, e.g. --arg min=-1 (repeatable)")
    p.add_argument("--range", nargs=2, type=float, metavar=("A", "B"), default=None,
                   help="x range (default: around the operator's thresholds)")
    p.add_argument("--points", type=int, default=2001, help="number of samples")
    p.add_argument("-o", "--output", default=None, help="PNG file (default: OP.png)")

    p = sub.add_parser("run", help="run a saved net on .npy inputs")
    p.add_argument("predict_net", help="the net to run (.pb or .pbtxt)")
    p.add_argument("--init", dest="init_net", help="a net run once before (parameters)")
    p.add_argument("--feed", action="append", type=_key_value, default=[],
                   metavar="NAME=FILE.npy", help="an input blob (repeatable)")
    p.add_argument("--fetch", action="append", default=[], metavar="NAME",
                   help="a blob to fetch (repeatable; default: the net's external outputs)")
    p.add_argument("-o", "--output", help="save the fetched blobs to this .npz file")

    p = sub.add_parser("draw", help="draw a net as a graph of operators and blobs")
    p.add_argument("net", help="a net file (.pb or .pbtxt)")
    p.add_argument("-o", "--output", required=True, help="FILE.dot, FILE.svg or FILE.png")
    p.add_argument("--rankdir", default="LR", choices=["LR", "TB", "RL", "BT"])

    p = sub.add_parser("export-onnx", help="convert an init net and a predict net to ONNX")
    p.add_argument("init_net")
    p.add_argument("predict_net")
    p.add_argument("-o", "--output", required=True, help="MODEL.onnx")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the newest "
                   "the tables cover)")
    p.add_argument("--value-info", action="append", type=_key_value, default=[],
                   metavar="NAME=dtype:shape", help="an input's dtype and shape, e.g. "
                   "X=float32:2,3 (repeatable)")

    p = sub.add_parser("import-onnx", help="convert an ONNX model to an init and a predict net")
    p.add_argument("model", help="MODEL.onnx")
    p.add_argument("-o", "--output", required=True, help="the predict net file to write")
    p.add_argument("--init", dest="init_net", required=True, help="the init net file to write")
    return parser


def _ops(args) -> str:
    from caffe2ops.tools.describe import list_ops

    return list_ops(args.name)


def _describe(args) -> str:
    from caffe2ops.tools import describe

    if args.all:
        if args.markdown:
            return describe.markdown_all()
        from caffe2ops.runtime.schema import registered_types

        return "\n\n\n".join(describe.describe(n) for n in registered_types())
    if not args.name:
        raise CommandError("describe: name an operator (see `caffe2ops ops`) or pass --all")
    if args.markdown:
        raise CommandError("describe: --markdown goes with --all")
    return describe.describe(args.name)


def _emit(text: str, output: str | None) -> None:
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")
        print(f"wrote {output}")
    else:
        print(text)


def _plot(args) -> int:
    from caffe2ops.tools.plot import plot

    kwargs = {k: parse_number(v) for k, v in args.arg}
    path = args.output or f"{args.name}.png"
    summary = plot(args.name, kwargs, args.range, path, points=args.points)
    print(summary)
    return 0


def _run(args) -> int:
    from caffe2ops.tools.run import run_files

    results = run_files(args.predict_net, args.init_net, dict(args.feed), args.fetch,
                        args.output)
    for name, value in results.items():
        print(f"{name}: {getattr(value, 'dtype', type(value).__name__)} "
              f"{list(getattr(value, 'shape', []))}")
        if not args.output:
            print(value)
    if args.output:
        print(f"wrote {args.output}")
    return 0


def _draw(args) -> int:
    from caffe2ops import load_net
    from caffe2ops.net_drawer import write_graph

    print(write_graph(load_net(args.net), args.output, rankdir=args.rankdir))
    return 0


def _export(args) -> int:
    import onnx

    from caffe2ops import load_net
    from caffe2ops.onnx import export_model, parse_value_info

    model = export_model(load_net(args.init_net), load_net(args.predict_net), opset=args.opset,
                         value_info=parse_value_info(dict(args.value_info)))
    onnx.save(model, args.output)
    ops = ", ".join(sorted({n.op_type for n in model.graph.node}))
    print(f"wrote {args.output}: opset {model.opset_import[0].version}, "
          f"{len(model.graph.node)} ONNX nodes ({ops}), {len(model.graph.initializer)} "
          "initializers")
    return 0


def _import(args) -> int:
    import onnx

    from caffe2ops import save_net
    from caffe2ops.onnx import import_model

    init_net, predict_net = import_model(onnx.load(args.model))
    save_net(init_net, args.init_net)
    save_net(predict_net, args.output)
    print(f"wrote {args.init_net} ({len(init_net.op)} operators) and {args.output} "
          f"({len(predict_net.op)} operators: "
          f"{', '.join(sorted({op.type for op in predict_net.op}))})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command
    try:
        if command == "check":
            from caffe2ops.tools.check import main as check_main

            return check_main(args.seed)
        if command == "train":
            from caffe2ops.tools.train import run as train_run

            return train_run(args)
        if command == "ops":
            print(_ops(args))
            return 0
        if command == "describe":
            _emit(_describe(args), args.output)
            return 0
        handlers = {"plot": _plot, "run": _run, "draw": _draw, "export-onnx": _export,
                    "import-onnx": _import}
        return handlers[command](args)
    except (CommandError, OperatorError, OSError, ValueError, ImportError) as exc:
        message = str(exc)
        prefix = f"{command}: "
        print(f"caffe2ops: error: {message if message.startswith(prefix) else prefix + message}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
