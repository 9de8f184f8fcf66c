"""Comparison in ulps and the per-operator record that becomes RESULTS.md."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("RESULTS.md")
_INT_OF = {2: np.int16, 4: np.int32, 8: np.int64}


def _ordered(x: np.ndarray) -> np.ndarray:
    """Float bits as integers ordered like the floats (±0 both map to 0), as Python ints."""
    i = x.view(_INT_OF[x.dtype.itemsize]).astype(object)
    low = -(1 << (8 * x.dtype.itemsize - 1))
    return np.where(i < 0, low - i, i)


def ulp_distance(got: np.ndarray, want: np.ndarray) -> float:
    """The largest ulp distance between same-shape, same-dtype arrays; NaN against non-NaN, or
    an infinity against anything else, is ``inf``; +0 against -0 counts 1."""
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype != want.dtype or got.shape != want.shape:
        return math.inf
    if got.size == 0:
        return 0
    if got.dtype.kind != "f":
        return 0 if np.array_equal(got, want) else math.inf
    nan_g, nan_w = np.isnan(got), np.isnan(want)
    if (nan_g != nan_w).any():
        return math.inf
    keep = ~nan_g
    g, w = got[keep], want[keep]
    if g.size == 0:
        return 0
    inf_g, inf_w = np.isinf(g), np.isinf(w)
    if (inf_g | inf_w).any() and not np.array_equal(g[inf_g | inf_w], w[inf_g | inf_w]):
        return math.inf
    dist = np.abs(_ordered(g) - _ordered(w))
    zero_sign = (g == 0) & (w == 0) & (np.signbit(g) != np.signbit(w))
    dist = np.where(zero_sign, 1, dist)
    return int(dist.max())


def bits_equal(got: np.ndarray, want: np.ndarray) -> bool:
    """Same dtype, shape and bytes, NaN payloads aside."""
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype != want.dtype or got.shape != want.shape:
        return False
    if got.dtype.kind == "f":
        got, want = got.copy(), want.copy()
        got[np.isnan(got)] = np.nan
        want[np.isnan(want)] = np.nan
    return got.tobytes() == want.tobytes()


@dataclass
class OpRecord:
    cases: int = 0
    bit_identical: int = 0
    max_ulp: float = 0
    bound: int = 0
    both_refuse: int = 0
    departures: dict = field(default_factory=lambda: defaultdict(int))
    failures: list = field(default_factory=list)


class Recorder:
    """Collects, per row (an operator, or a NetDef/gradient-def check), what the run saw."""

    def __init__(self) -> None:
        self.rows: dict[str, OpRecord] = {}

    def row(self, name: str, bound: int = 0) -> OpRecord:
        rec = self.rows.setdefault(name, OpRecord())
        rec.bound = bound
        return rec

    def write(self, path: Path = RESULTS) -> None:
        lines = [
            "# Parity with real Caffe2 1.5.0",
            "",
            "Written by `make parity` (tests/parity/conftest.py) from its last run; do not edit.",
            "Cases: compared cases (both sides ran, our fast and reference kernels counted apart);",
            "both refuse: cases that Caffe2 and we both reject. Max ulp: the largest",
            "ulp distance over the compared outputs. Bound: tests/parity/bounds.py. Departures:",
            "cases Caffe2 refuses or computes otherwise on purpose (README, *Where we differ",
            "from Caffe2*), with their count.",
            "",
            "The training operators (FC, activations, losses, fillers; sparse lookups, counters,",
            "optimizers) are compared in test_dense_ops.py and test_sparse_ops.py, whole Caffe2",
            "scripts in test_scripts.py and the main job's training net in test_train_parity.py,",
            "each with the bounds stated in that file; they pass when this table is written.",
            "",
            "| operator / check | cases | bit-identical | both refuse | max ulp | bound | verdict "
            "| documented departures |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name in sorted(self.rows):
            r = self.rows[name]
            if r.failures:
                verdict = f"FAIL ({len(r.failures)})"
            elif r.cases and r.bit_identical == r.cases:
                verdict = "bit-identical"
            elif r.cases:
                verdict = f"within {r.bound} ulp"
            elif r.departures:
                verdict = "documented departure"
            else:
                verdict = "both refuse"
            deps = "; ".join(f"{k} ({n})" for k, n in sorted(r.departures.items())) or "-"
            ulp = "inf" if r.max_ulp == math.inf else str(r.max_ulp)
            lines.append(f"| {name} | {r.cases} | {r.bit_identical} | {r.both_refuse} | {ulp} "
                         f"| {r.bound} | {verdict} | {deps} |")
        failures = [(n, f) for n, r in sorted(self.rows.items()) for f in r.failures]
        if failures:
            lines += ["", "## Failures", ""]
            lines += [f"- {n}: {f}" for n, f in failures[:200]]
        path.write_text("\n".join(lines) + "\n")


RECORDER = Recorder()
