"""The gradient-check tour: a Caffe2 net of the seed operators, its gradients, numerical checks.

``caffe2ops check`` (alias ``caffe2ops demo``) builds the net below with ``core.Net``, adds
gradient operators, runs forward and backward in a workspace, checks every operator's gradient
(and the whole net's) against
central finite differences, and prints one table. It returns 1 if any check fails::

    X -> Clip(-0.8, 0.8) -> ThresholdedRelu(alpha=-0.5) --+
                                                          +-> CosineSimilarity -> S
    Y -> Cos -------------------------------------------+
    S, label -> CosineEmbeddingCriterion(margin=0.1) -> loss      (gradients of Σ loss)
    emb, emb_idx -> SparseNormalize(norm=1.0) -> emb              (after the backward pass)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from caffe2ops import core, workspace
from caffe2ops.gradient_checker import GradientChecker, central_difference

STEP, TOL = 1e-4, 1e-6


@dataclass
class Row:
    operator: str
    output: str
    check: str
    error: float | None
    ok: bool


def _summary(a: np.ndarray) -> str:
    return f"{a.dtype}{list(a.shape)} min {a.min():+.3f} max {a.max():+.3f}"


def _away(a: np.ndarray, kinks, gap: float = 0.05) -> np.ndarray:
    """Move entries within ``gap`` of a kink away from it (Caffe2's tests do the same)."""
    for k in kinks:
        a = np.where(np.abs(a - k) < gap, a + 2 * gap, a)
    return a


def _inputs(rng: np.random.Generator):
    n, d = 6, 4
    x = _away(rng.uniform(-1.2, 1.2, (n, d)), [-0.8, 0.8])
    x = _away(x, [-0.5, 0.0])
    y = rng.uniform(-2.0, 2.0, (n, d))
    label = np.array([1, -1, 1, -1, -1, 1], dtype=np.int32)
    emb = rng.normal(0.0, 1.0, (10, d)).astype(np.float32)
    emb_idx = np.array([0, 3, 3, 7], dtype=np.int64)
    return x, y, label, emb, emb_idx


def build_net() -> tuple[core.Net, dict]:
    net = core.Net("caffe2ops_demo")
    xc = net.Clip(["X"], ["X_clipped"], min=-0.8, max=0.8)
    xt = net.ThresholdedRelu([xc], ["X_thresholded"], alpha=-0.5)
    yc = net.Cos(["Y"], ["Y_cos"])
    s = net.CosineSimilarity([xt, yc], ["S"])
    loss = net.CosineEmbeddingCriterion([s, "label"], ["loss"], margin=0.1)
    grads = net.AddGradientOperators([loss])
    net.SparseNormalize(["emb", "emb_idx"], ["emb"], norm=1.0, use_max_norm=True)
    return net, grads


def _check_op(rows, name, op, inputs, wrt, outputs=(0,)) -> None:
    fetched = [workspace.FetchBlob(b) for b in inputs]
    checker = GradientChecker(STEP, TOL)
    for i in wrt:
        ok, grad, est = checker.CheckSimple(op, fetched, i, list(outputs))
        err = float(np.max(np.abs(grad - est))) if grad.size else 0.0
        out = workspace.FetchBlob(op.output[outputs[0]])
        rows.append(Row(name, _summary(out), f"d/d{op.input[i]}", err, ok))


def _net_gradient_check(x, loss_fn, analytic) -> float:
    est = central_difference(loss_fn, x, STEP)
    return float(np.max(np.abs(est - analytic)))


def run_demo(seed: int = 0) -> tuple[list[Row], bool]:
    rng = np.random.default_rng(seed)
    x, y, label, emb, emb_idx = _inputs(rng)
    workspace.SwitchWorkspace("caffe2ops_demo", True)
    workspace.ResetWorkspace()
    for name, value in [("X", x), ("Y", y), ("label", label), ("emb", emb),
                        ("emb_idx", emb_idx)]:
        workspace.FeedBlob(name, value)
    net, grads = build_net()
    workspace.CreateNet(net, overwrite=True)
    workspace.RunNet(net)

    rows: list[Row] = []
    op = core.CreateOperator
    _check_op(rows, "Clip", op("Clip", ["X"], ["X_clipped"], min=-0.8, max=0.8), ["X"], [0])
    _check_op(rows, "ThresholdedRelu", op("ThresholdedRelu", ["X_clipped"], ["X_thresholded"],
                                          alpha=-0.5), ["X_clipped"], [0])
    _check_op(rows, "Cos", op("Cos", ["Y"], ["Y_cos"]), ["Y"], [0])
    _check_op(rows, "CosineSimilarity", op("CosineSimilarity", ["X_thresholded", "Y_cos"], ["S"]),
              ["X_thresholded", "Y_cos"], [0, 1])
    s = workspace.FetchBlob("S")
    if np.min(np.abs(s - 0.1)) > STEP * 10:
        _check_op(rows, "CosineEmbeddingCriterion",
                  op("CosineEmbeddingCriterion", ["S", "label"], ["loss"], margin=0.1),
                  ["S", "label"], [0])

    before = emb.astype(np.float64)
    after = workspace.FetchBlob("emb").astype(np.float64)
    touched = np.unique(emb_idx)
    norms = np.linalg.norm(after[touched], axis=1)
    untouched = np.setdiff1d(np.arange(len(emb)), touched)
    want = np.where(np.linalg.norm(before[touched], axis=1, keepdims=True) > 1.0,
                    before[touched] / np.linalg.norm(before[touched], axis=1, keepdims=True),
                    before[touched])
    err = float(np.max(np.abs(after[touched] - want)))
    ok = bool(np.all(norms <= 1 + 1e-6) and np.array_equal(after[untouched], before[untouched])
              and err < 1e-6)
    rows.append(Row("SparseNormalize", _summary(workspace.FetchBlob("emb")),
                    "rows vs formula (no gradient)", err, ok))

    def total_loss(xv: np.ndarray, yv: np.ndarray) -> float:
        workspace.FeedBlob("X", xv)
        workspace.FeedBlob("Y", yv)
        workspace.RunNetOnce(_forward_only(net))
        return float(np.sum(workspace.FetchBlob("loss")))

    xg, yg = workspace.FetchBlob(str(grads["X"])), workspace.FetchBlob(str(grads["Y"]))
    loss = workspace.FetchBlob("loss")
    for blob, value, grad in (("X", x, xg), ("Y", y, yg)):
        if blob == "X":
            err = _net_gradient_check(value, lambda v: total_loss(v, y), grad)
        else:
            err = _net_gradient_check(value, lambda v: total_loss(x, v), grad)
        rows.append(Row("whole net", _summary(loss), f"d(Σloss)/d{blob}", err, err < 1e-5))
    workspace.ResetWorkspace()
    workspace.SwitchWorkspace("default", True)
    return rows, all(r.ok for r in rows)


def _forward_only(net: core.Net):
    proto = net.Proto().__class__()
    proto.CopyFrom(net.Proto())
    del proto.op[:]
    proto.op.extend(op for op in net.Proto().op if not op.is_gradient_op
                    and op.type not in ("ConstantFill", "SparseNormalize"))
    proto.name = net.Name() + "_forward"
    return proto


def format_table(rows: list[Row]) -> str:
    head = ["operator", "output", "check", "max error", "result"]
    body = [[r.operator, r.output, r.check, "-" if r.error is None else f"{r.error:.2e}",
             "pass" if r.ok else "FAIL"] for r in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body, strict=True)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths,  # noqa: E731
                                                                         strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), sep, *map(line, body)])


def main(seed: int = 0) -> int:
    net, _ = build_net()
    print(f"caffe2ops demo: net '{net.Name()}' with {len(net.Proto().op)} operators "
          f"({sum(op.is_gradient_op for op in net.Proto().op)} gradient operators)")
    print("  " + " -> ".join(op.type for op in net.Proto().op))
    rows, ok = run_demo(seed)
    print()
    print(format_table(rows))
    print()
    failed = [r for r in rows if not r.ok]
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
