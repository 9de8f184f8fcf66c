"""What the parity suite accepts, in one place: ulp bounds per operator and the documented
departures (README, "Where we differ from Caffe2").

A bound of 0 means bit-identical (NaN payloads aside). A case that Caffe2 refuses, or whose
numbers differ beyond the bound, passes only when a departure below names it; the run records it
as that departure in RESULTS.md, never as a silent skip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)

# operator -> max ulp difference from Caffe2 (0: bit-identical). Why each is not 0:
ULP_BOUNDS: dict[str, int] = {
    # Caffe2's Cos is Eigen's vectorized polynomial; ours is fl(cos(double x)).
    "Cos": 2,
    "CosGradient": 2,  # sin likewise
    # Caffe2 sums dot products and norms in float32 (Eigen); ours in float64, rounded once.
    "CosineSimilarity": 2,
    "CosineSimilarityGradient": 8,
    "SparseNormalize": 2,
    # Caffe2 sums in float32, so its error grows with the size: 4 ulp at 10^4 and 3·10^5.
    "LpNorm": 4,
    # Caffe2's Pow is Eigen's pow in float32; ours is fl(pow(double x, double e)).
    "Pow": 1,
    "Log": 1,  # Eigen's vectorized log in float32; ours fl(log(double x))
    # Caffe2 reduces broadcast dimensions with float32 sums; ours sum in float64.
    "AddGradient": 2,
    "SubGradient": 2,
    "SumReduceLike": 2,
    # GradientClipping's test net (Cos -> CosineSimilarity -> Div -> LpNorm, backward, then
    # LpNorm/Pow/ClipTensorByScaling per gradient): the few-ulp differences above, propagated
    # through CosineSimilarityGradient's cancellation, reach 38-64 ulp on small gradients.
    "GradientClipping": 64,
}


def bound(op: str) -> int:
    return ULP_BOUNDS.get(op, 0)


@dataclass(frozen=True)
class Departure:
    """A documented difference: ``applies(case)`` says whether it explains ``case``."""

    key: str
    readme: str  # words of the README bullet it refers to (test_departures_are_documented)
    applies: Callable[[object], bool]


def _dtype_not_registered(registered: tuple) -> Callable[[object], bool]:
    return lambda case: any(
        np.asarray(x).dtype.kind == "f" and np.asarray(x).dtype not in registered
        for x in case.inputs
    )


FLOAT32_ONLY = _dtype_not_registered((F32,))
FLOAT32_64 = _dtype_not_registered((F32, F64))

DTYPES = "Every float dtype (float16/32/64) keeps its own dtype"
DEPARTURES: dict[str, list[Departure]] = {}


def _add(ops, departure: Departure) -> None:
    for op in ops:
        DEPARTURES.setdefault(op, []).append(departure)


# Dense EnsureClipped has no type check in Caffe2: it reads float16/float64 bytes as float32.
_add(("EnsureClipped",),
     Departure("float16/float64 kept (Caffe2 read their bytes as float32)", DTYPES,
               lambda case: len(case.inputs) == 1 and FLOAT32_ONLY(case)))
# Caffe2 1.5.0's CPU build registered these for float32 only (float64 where FLOAT32_64).
_add(("Clip", "ClipGradient", "ThresholdedRelu", "ThresholdedReluGradient", "Cos",
      "CosGradient", "CosineEmbeddingCriterion", "CosineEmbeddingCriterionGradient",
      "CosineSimilarity", "CosineSimilarityGradient", "SparseNormalize", "ClipTensorByScaling",
      "EnsureClipped", "LpNorm", "LpNormGradient", "Pow", "Scale", "Sum", "DivGradient",
      "MulGradient", "AddGradient", "SubGradient", "Log", "SumReduceLike"),
     Departure("float16/float64 accepted", DTYPES, FLOAT32_ONLY))
_add(("Div", "Mul", "Add", "Sub"), Departure("float16 accepted", DTYPES, FLOAT32_64))
_add(("Clip", "ClipGradient", "EnsureClipped"),
     Departure("integer arrays accepted", "Clip and EnsureClipped accept integer arrays",
               lambda case: any(np.asarray(x).dtype.kind in "iu" for x in case.inputs[:1])))
_add(("ClipTensorByScaling",),
     Departure("empty input accepted", "ClipTensorByScaling",
               lambda case: np.asarray(case.inputs[0]).size == 0))
_add(("ConstantFill",),
     Departure("dtype FLOAT16 accepted", "ConstantFill", lambda case: case.args.get("dtype") == 12))
_add(("CosineEmbeddingCriterion", "CosineEmbeddingCriterionGradient"),
     Departure("any integer label dtype", "CosineEmbeddingCriterion",
               lambda case: np.asarray(case.inputs[1]).dtype != np.int32))
_add(("ThresholdedReluGradient",),
     Departure("masked entries are +0 (Caffe2: dY*sign(Y))", "ThresholdedRelu's gradient",
               lambda case: len(case.inputs) == 2
               and bool(np.any(~(np.asarray(case.inputs[0]) >= 0))
                        or np.any(~np.isfinite(np.asarray(case.inputs[1]))))))
_add(("Sum",),
     Departure("int8/float64/int64 accepted", DTYPES,
               lambda case: case.inputs[0].dtype not in (F32, np.dtype(np.int32))))
_add(("Clip", "EnsureClipped"),
     Departure("NaN bound ignored", "A NaN Clip bound is ignored",
               lambda case: any(isinstance(v, float) and v != v
                                for k, v in case.args.items() if k in ("min", "max"))))
_add(("ThresholdedReluGradient",),
     Departure("3-input form (Y, dY, X)", "ThresholdedRelu's gradient is right for negative "
               "alpha", lambda case: len(case.inputs) == 3))
_add(("SparseNormalize",),
     Departure("optional grad input / duplicates normalized once", "SparseNormalize",
               lambda case: len(case.inputs) == 3 or _has_duplicates(case)))
_add(("Float16SparseNormalize",),
     Departure("not in Caffe2 1.5.0's CPU build", "Float16SparseNormalize is not in Caffe2 "
               "1.5.0's CPU build", lambda case: True))
_add(("ConstantFill",),
     Departure("a float fill keeps a float input's dtype", "ConstantFill",
               lambda case: bool(case.inputs) and case.inputs[0].dtype.kind == "f"
               and case.inputs[0].dtype != F32 and "dtype" not in case.args))
_add(("Pow",),
     Departure("exponent rounded to float16/float64 input", "Float arguments accept ints",
               FLOAT32_ONLY))


_add(("Div", "DivGradient"),
     Departure("every integer dtype accepted (Caffe2: int32, int64)", "every integer dtype for "
               "Div and DivGradient",
               lambda case: any(np.asarray(x).dtype.kind in "iu" and np.asarray(x).dtype
                                not in (np.dtype(np.int32), np.dtype(np.int64))
                                for x in case.inputs)))
_add(("Div",),
     Departure("A broadcast over a larger B: Caffe2 multiplies by 1/B", "Div of an A broadcast "
               "over a larger B divides",
               lambda case: len(case.inputs) == 2 and not case.args.get("broadcast")
               and np.asarray(case.inputs[0]).size < np.asarray(case.inputs[1]).size))
_add(("DivGradient",),
     Departure("A is not read (any dtype)", "DivGradient does not read A",
               lambda case: len(case.inputs) == 4
               and np.asarray(case.inputs[1]).dtype != np.asarray(case.inputs[2]).dtype))
_add(("LpNorm", "LpNormGradient"),
     Departure("an integral float p accepted", "LpNorm's p may be an integral float",
               lambda case: isinstance(case.args.get("p"), float)))
_add(("EnsureClipped",),
     Departure("sparse mode without the grad input", "sparse EnsureClipped runs without its grad "
               "input", lambda case: len(case.inputs) == 2))
_add(("LpNormGradient",),
     Departure("dN of any shape with one element", "LpNormGradient takes dN of any shape",
               lambda case: np.asarray(case.inputs[1]).ndim != 1))


def _has_duplicates(case) -> bool:
    idx = np.asarray(case.inputs[1]).reshape(-1)
    return len(np.unique(idx)) != idx.size


def departure_for(op: str, case) -> Departure | None:
    for departure in DEPARTURES.get(op, ()):
        if departure.applies(case):
            return departure
    return None


# Gradient definitions that differ from Caffe2's on purpose (GetGradientForOp and the backward
# pass's NetDef), and gradient values beyond the bound.
GRADIENT_DEPARTURES: dict[str, list[Departure]] = {
    "ThresholdedRelu": [Departure(
        "negative alpha: the gradient also reads X", "ThresholdedRelu's gradient is right for "
        "negative alpha", lambda case: float(case.args.get("alpha", 1.0)) < 0)],
    "Div": [Departure(
        "in place on B: Caffe2's schema refuses Div(A, B) -> B", "Div(A, B) -> B in place",
        lambda case: True)],
    "CosineSimilarity": [Departure(
        "float64 sums: beyond 8 ulp where the gradient cancels to ~0", "Reductions accumulate "
        "in float64", lambda case: True)],
}


def gradient_departure_for(op: str, case) -> Departure | None:
    for departure in GRADIENT_DEPARTURES.get(op, ()):
        if departure.applies(case):
            return departure
    return None
