"""Operator cases shared by the CUDA simulator tests and the real-GPU tests.

Each case is one OperatorDef on small inputs; the test runs it with the CPU reference kernels on
NumPy arrays and with the CUDA runner on device arrays, and compares every output.
``ulps``: 0 = bit-exact; otherwise the largest allowed distance in units in the last place of
the output dtype (NaN positions must match exactly in every case).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from caffe2ops import core
from caffe2ops.ops._dispatch import reference_kernels
from caffe2ops.runtime.operator import Operator

SPECIALS = (np.nan, np.inf, -np.inf, -0.0, 0.0, 0.5, -0.5, 2.0)


@dataclass
class Case:
    op_type: str
    make: object  # (rng, dtype) -> list of inputs
    args: dict = field(default_factory=dict)
    outputs: int = 1
    inplace: tuple = ()  # output k is input inplace[k] (names shared)
    ulps: int = 0
    ulps64: int | None = None  # float64 outputs of sums: the float64 summation order differs
    dtypes: tuple = (np.float32, np.float64, np.float16)

    @property
    def name(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in self.args.items())
        return f"{self.op_type}({extra})" if extra else self.op_type


def _vec(rng, dtype, n=200, specials=True):
    x = rng.standard_normal(n).astype(dtype)
    if specials:
        x[: len(SPECIALS)] = np.array(SPECIALS, dtype)
    return x


def _pos(rng, dtype, shape):
    return (np.abs(rng.standard_normal(shape)) + 0.1).astype(dtype)


def _mat(rng, dtype, shape=(7, 19)):
    return rng.standard_normal(shape).astype(dtype)


IDX = np.array([1, 5, 1, 0, 6, 1], np.int64)  # duplicates on purpose
LENGTHS = np.array([2, 0, 3, 1], np.int32)


def _lr(dtype):
    return np.array([-0.05], dtype)


CASES = [
    Case("Clip", lambda r, d: [_vec(r, d)], {"min": -0.75, "max": 0.5}),
    Case("Clip", lambda r, d: [_vec(r, d)]),
    Case("Clip", lambda r, d: [(r.integers(-50, 50, 100)).astype(np.int32)],
         {"min": -7.5, "max": 20.5}, dtypes=(np.int32,)),
    Case("ClipGradient", lambda r, d: [_vec(r, d), _vec(r, d, specials=False)],
         {"min": -0.5, "max": 0.5}),
    Case("ThresholdedRelu", lambda r, d: [_vec(r, d)], {"alpha": 0.5}),
    Case("ThresholdedReluGradient", lambda r, d: [_vec(r, d), _vec(r, d, specials=False)]),
    Case("ThresholdedReluGradient",
         lambda r, d: [_vec(r, d), _vec(r, d, specials=False), _vec(r, d)], {"alpha": -0.25}),
    Case("Cos", lambda r, d: [_vec(r, d)]),
    Case("CosGradient", lambda r, d: [_vec(r, d), _vec(r, d, specials=False)]),
    Case("Relu", lambda r, d: [_vec(r, d)]),
    Case("ReluGradient", lambda r, d: [_vec(r, d), _vec(r, d, specials=False)]),
    Case("Sigmoid", lambda r, d: [_vec(r, d)], ulps=2),
    Case("SigmoidGradient", lambda r, d: [_vec(r, d), _vec(r, d)], ulps=1),
    Case("Tanh", lambda r, d: [_vec(r, d)], ulps=2),
    Case("TanhGradient", lambda r, d: [_vec(r, d), _vec(r, d)], ulps=1),
    Case("CosineEmbeddingCriterion",
         lambda r, d: [_vec(r, d), (np.arange(200) % 3 - 1).astype(np.int32)], {"margin": 0.25}),
    Case("CosineEmbeddingCriterionGradient",
         lambda r, d: [_vec(r, d), (np.arange(200) % 3 - 1).astype(np.int32),
                       _vec(r, d, specials=False)], {"margin": 0.25}),
    Case("CosineSimilarity", lambda r, d: [_mat(r, d), _mat(r, d)], ulps=1, ulps64=16),
    Case("CosineSimilarityGradient",
         lambda r, d: [_mat(r, d), _mat(r, d), _vec(r, d, 7, False)], outputs=2, ulps=2,
         ulps64=256),  # float64: cancellation in a·y − b·x
    Case("SparseNormalize", lambda r, d: [_mat(r, d), IDX], {"norm": 1.0}, inplace=(0,),
         ulps=1, ulps64=16),
    Case("SparseNormalize", lambda r, d: [_mat(r, d) * d(0.1), IDX],
         {"norm": 1.0, "use_max_norm": False}, inplace=(0,),
         ulps=1, ulps64=16),
    Case("EnsureClipped", lambda r, d: [_mat(r, d), IDX, _mat(r, d, (6, 19))],
         {"min": -0.3, "max": 0.4}, inplace=(0,)),
    Case("EnsureClipped", lambda r, d: [_vec(r, d)], {"min": -0.3, "max": 0.4}),
    Case("ClipTensorByScaling", lambda r, d: [_vec(r, d, specials=False), np.array([9.0], d)],
         {"threshold": 2.0}),
    Case("ClipTensorByScaling",
         lambda r, d: [_vec(r, d, specials=False), np.array([9.0], d), np.array([1.5], d)],
         {"threshold": 2.0}),
    Case("LpNorm", lambda r, d: [_vec(r, d, 333, False)], {"p": 2}, ulps=1, ulps64=16),
    Case("LpNorm", lambda r, d: [_vec(r, d, 333, False)], {"p": 1, "average": True},
         ulps=1, ulps64=16),
    Case("LpNormGradient", lambda r, d: [_vec(r, d), np.array([1.5], d)], {"p": 2}),
    Case("LpNormGradient", lambda r, d: [_vec(r, d), np.array([1.5], d)],
         {"p": 1, "average": True}),
    Case("SumElements", lambda r, d: [_pos(r, d, 333)], ulps=1, ulps64=16),
    Case("SumElements", lambda r, d: [_pos(r, d, 333)], {"average": True}, ulps=1, ulps64=16),
    Case("SumSqrElements", lambda r, d: [_vec(r, d, 333, False)], ulps=1, ulps64=16),
    Case("AveragedLoss", lambda r, d: [_pos(r, d, 333)], ulps=1, ulps64=16),
    Case("SumElementsGradient", lambda r, d: [_vec(r, d), np.array(3.0, d)],
         {"average": True}),
    Case("AveragedLossGradient", lambda r, d: [_vec(r, d), np.array(3.0, d)]),
    Case("SquaredL2Distance", lambda r, d: [_mat(r, d), _mat(r, d)], ulps=1, ulps64=16),
    Case("SquaredL2DistanceGradient", lambda r, d: [_mat(r, d), _mat(r, d),
                                                    _vec(r, d, 7, False)], outputs=2),
    Case("FC", lambda r, d: [_mat(r, d, (5, 12)), _mat(r, d, (3, 12)), _vec(r, d, 3, False)],
         ulps=64, dtypes=(np.float32, np.float64)),
    Case("FCGradient", lambda r, d: [_mat(r, d, (5, 12)), _mat(r, d, (3, 12)),
                                     _mat(r, d, (5, 3))], outputs=3, ulps=64,
         dtypes=(np.float32, np.float64)),
    Case("Gather", lambda r, d: [_mat(r, d), IDX.reshape(2, 3)]),
    Case("SparseLengthsSum", lambda r, d: [_mat(r, d), IDX, LENGTHS]),
    Case("SparseLengthsMean", lambda r, d: [_mat(r, d), IDX, LENGTHS]),
    Case("SparseLengthsWeightedSum",
         lambda r, d: [_mat(r, d), _vec(r, d, 6, False), IDX, LENGTHS]),
    Case("SparseLengthsIndicesInGradientSumGradient",
         lambda r, d: [_mat(r, d, (4, 19)), LENGTHS, IDX]),
    Case("SparseLengthsIndicesInGradientMeanGradient",
         lambda r, d: [_mat(r, d, (4, 19)), LENGTHS, IDX]),
    Case("Sub", lambda r, d: [_vec(r, d), _vec(r, d, specials=False)]),
    Case("Log", lambda r, d: [_vec(r, d)]),
    Case("Copy", lambda r, d: [_vec(r, d)]),
    Case("AddGradient", lambda r, d: [_vec(r, d), _vec(r, d), _vec(r, d)], outputs=2),
    Case("SubGradient", lambda r, d: [_vec(r, d), _vec(r, d), _vec(r, d)], outputs=2),
    Case("MulGradient", lambda r, d: [_vec(r, d), _vec(r, d, specials=False), _vec(r, d)],
         outputs=2),
    Case("WeightedSumGradient", lambda r, d: [_vec(r, d), _vec(r, d), np.array([0.5], d),
                                              _vec(r, d), np.array([-3.0], d)], outputs=2),
    Case("GivenTensorFill", lambda r, d: [], {"shape": [2, 3], "values": [1., 2., 3., 4., 5., 6.]},
         dtypes=(np.float32,)),
    Case("ConstantFill", lambda r, d: [_mat(r, d)], {"value": 2.5}, dtypes=(np.float32,)),
    Case("SparseAdam", lambda r, d: [_mat(r, d), _mat(r, d), _pos(r, d, (7, 19)), IDX,
                                     _mat(r, d, (6, 19)), _lr(d), np.array([2], np.int64)],
         outputs=3, inplace=(0, 1, 2)),
    Case("SparseAdam", lambda r, d: [_mat(r, d, (7, 1)), _mat(r, d, (7, 1)), _pos(r, d, (7, 1)),
                                     IDX, _mat(r, d, (6, 1)), _lr(d), np.array([2], np.int64)],
         outputs=3, inplace=(0, 1, 2)),
    Case("SparseLengthsIndicesInGradientWeightedSumGradient",
         lambda r, d: [_vec(r, d, 6, False), _mat(r, d, (4, 19)), LENGTHS, IDX]),
    Case("LearningRate", lambda r, d: [np.array([5], np.int64)],
         {"base_lr": -0.1, "policy": "step", "stepsize": 2, "gamma": 0.5},
         dtypes=(np.float32,)),
    Case("Max", lambda r, d: [_vec(r, d), _vec(r, d)[::-1].copy(), _vec(r, d, specials=False)]),
    Case("MaxGradient", lambda r, d: [_vec(r, d), _vec(r, d, specials=False), _vec(r, d),
                                      np.roll(_vec(r, d), 3)], outputs=2),
    Case("SparseToDense", lambda r, d: [IDX, _mat(r, d, (6, 19))]),
    Case("SparseToDense", lambda r, d: [IDX, _vec(r, d, 6, False), _mat(r, d, (9, 2))]),
    Case("Sum", lambda r, d: [_vec(r, d), _vec(r, d, specials=False), _vec(r, d)]),
    Case("Scale", lambda r, d: [_vec(r, d)], {"scale": 0.3}),
    Case("Add", lambda r, d: [_vec(r, d), _vec(r, d, specials=False)]),
    Case("Mul", lambda r, d: [_vec(r, d), _vec(r, d, specials=False)]),
    Case("WeightedSum", lambda r, d: [_vec(r, d), np.array([0.5], d), _vec(r, d, specials=False),
                                      np.array([0.3], d)]),
    Case("ScatterWeightedSum",
         lambda r, d: [_mat(r, d), np.array([0.5], d), IDX, _mat(r, d, (6, 19)),
                       np.array([2.0], d)], inplace=(0,)),
    Case("Adagrad", lambda r, d: [_mat(r, d), _pos(r, d, (7, 19)), _mat(r, d), _lr(d)],
         {"epsilon": 1e-4}, outputs=2, inplace=(0, 1)),
    Case("Adagrad", lambda r, d: [_mat(r, d), _pos(r, d, (7, 19)), _mat(r, d), _lr(d)],
         {"epsilon": 1e-4, "decay": 0.9}, outputs=4, inplace=(0, 1)),
    Case("SparseAdagrad",
         lambda r, d: [_mat(r, d), _pos(r, d, (7, 19)), IDX, _mat(r, d, (6, 19)), _lr(d)],
         outputs=2, inplace=(0, 1)),
    Case("RowWiseSparseAdagrad",
         lambda r, d: [_mat(r, d), _pos(r, d, 7), IDX, _mat(r, d, (6, 19)), _lr(d)],
         outputs=2, inplace=(0, 1)),
    Case("Adam", lambda r, d: [_mat(r, d), _mat(r, d), _pos(r, d, (7, 19)), _mat(r, d), _lr(d),
                               np.array([4], np.int64)], outputs=3, inplace=(0, 1, 2)),
    Case("Adam", lambda r, d: [_mat(r, d), _mat(r, d), _pos(r, d, (7, 19)), _mat(r, d), _lr(d),
                               np.array([0], np.int64)], outputs=4, inplace=(0, 1, 2)),
]

# float16 computes in float32 and rounds once (the contract), while the reference rounds after
# each float16 operation: float16 results are compared with the reference run on the inputs
# widened to float32, rounded to float16, within 1 ulp (a double rounding).
FLOAT16_ULPS = 1


def allowed_ulps(case: Case, dtype: np.dtype) -> int:
    if dtype == np.float16:
        return max(case.ulps, FLOAT16_ULPS)
    if dtype == np.float64 and case.ulps64 is not None:
        return case.ulps64
    return case.ulps


def widened(inputs: list) -> list:
    return [x.astype(np.float32) if x.dtype == np.float16 else x for x in inputs]


def operator_for(case: Case) -> Operator:
    ins = [f"in{k}" for k in range(len(case.make(np.random.default_rng(0), np.float32)))]
    outs = [ins[case.inplace[k]] if k < len(case.inplace) else f"out{k}"
            for k in range(case.outputs)]
    return Operator(core.CreateOperator(case.op_type, ins, outs, **case.args))


def run_reference(op: Operator, inputs: list) -> list:
    with reference_kernels():
        return [np.asarray(o) for o in op.kernel(op, [np.array(x, copy=True) for x in inputs],
                                                 [None] * len(op.outputs))]


def ulp_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Largest distance between ``a`` and ``b`` in ulps of ``a``'s dtype; NaN where only one
    of them is NaN (callers assert it is finite)."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.dtype.kind != "f":
        return 0.0 if np.array_equal(a, b) else np.inf
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if not np.array_equal(nan_a, nan_b):
        return np.nan
    keep = ~nan_a
    a64, b64 = a[keep].astype(np.float64), b[keep].astype(np.float64)
    same = (a64 == b64) & (np.signbit(a[keep]) == np.signbit(b[keep]))
    if same.all():
        return 0.0
    spacing = np.spacing(np.maximum(np.abs(a[keep]), np.finfo(a.dtype).tiny)).astype(np.float64)
    dist = np.abs(a64 - b64) / spacing
    dist[same] = 0.0
    dist[(a64 == b64) & ~same] = np.inf  # -0.0 vs +0.0
    return float(dist.max())


def check_case(case: Case, dtype: np.dtype, run, to_device, to_host) -> None:
    """Run ``case`` with the CUDA runner ``run`` on device copies and assert the outputs agree
    with the CPU reference within :func:`allowed_ulps` (shared by the simulator and GPU tests)."""
    rng = np.random.default_rng(1234)
    inputs = case.make(rng, dtype.type)
    op = operator_for(case)
    want = run_reference(op, inputs)
    # float16: bit-exact with the float16 reference, or within 1 ulp of the reference computed
    # in float32 and rounded once (the contract's "float16 computes in float32")
    wide = ([w.astype(np.float16) if w.dtype == np.float32 else w
             for w in run_reference(op, widened(inputs))] if dtype == np.float16 else want)
    got = [to_host(g) for g in run(op, [to_device(np.asarray(x)) for x in inputs],
                                   [None] * len(op.outputs))]
    assert len(got) == len(want)
    allowed = allowed_ulps(case, dtype)
    for k, (w, g) in enumerate(zip(want, got, strict=True)):
        assert g.dtype == w.dtype and g.shape == w.shape, (k, g.dtype, g.shape, w.shape)
        dist = ulp_distance(w, g)
        if dtype == np.float16 and not dist == 0:
            dist = ulp_distance(wide[k], g)
        assert dist <= allowed, f"output {k}: {dist} ulps (allowed {allowed})\n{w}\n{g}"


def case_params(pytest):
    return [pytest.param(case, np.dtype(dt), id=f"{case.name}-{np.dtype(dt).name}")
            for case in CASES for dt in case.dtypes]
