"""Differential tests against PyTorch (2.13.0 CPU) as an independent oracle.

Documented, expected differences (peer-systems §2 and §8), each pinned by a test below:

* ``clamp``: on a bound torch's gradient is 1 (inclusive), ours 0 (Caffe2's strict
  ``lo < Y < hi`` on the output); with one bound omitted torch keeps ±inf where we give
  ±FLT_MAX (the omitted bound is the dtype's finite limit).
* ``F.threshold(x, alpha, 0)``: NaN stays NaN in torch, ours (like ONNX and Caffe2) gives +0.
* ``F.cosine_similarity``: torch's epsilon (1e-8 on each norm) differs from Caffe2's (1e-12 on
  the squared norms); away from zero vectors the results agree to rounding.
* ``torch.embedding_renorm_`` divides by ``norm + 1e-7``, SparseNormalize by ``norm + 1e-12``:
  relative difference ~1e-7.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from optable import assert_same  # noqa: E402

import caffe2ops as c2  # noqa: E402
from caffe2ops import core, workspace  # noqa: E402

FLT_MAX = float(np.finfo(np.float32).max)
SEEDS = range(4)


pytestmark = pytest.mark.usefixtures("fresh_workspace")


def _x(seed, n=200, dtype=np.float32, specials=True):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 2).astype(dtype)
    if specials:
        x[:6] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0]
    return x


def _t(a, grad=False):
    return torch.tensor(a, requires_grad=grad)


# ---- clamp -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("lo,hi", [(-1.0, 1.0), (0.0, 0.5), (1.0, -1.0), (-3.0, 2.5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_clamp_forward(lo, hi, seed, dtype):
    x = _x(seed, dtype=dtype)
    ours = c2.clip(x, lo, hi)
    theirs = torch.clamp(_t(x), lo, hi).numpy()
    np.testing.assert_array_equal(ours, theirs)  # NaN kept; min > max gives max in both
    assert ours.dtype == theirs.dtype


@pytest.mark.parametrize("seed", SEEDS)
def test_clamp_one_bound_divergence_on_infinities(seed):
    x = _x(seed)
    ours_min = c2.clip(x, min=-1.0)
    theirs_min = torch.clamp(_t(x), min=-1.0).numpy()
    finite = ~np.isposinf(x)
    np.testing.assert_array_equal(ours_min[finite], theirs_min[finite])
    assert np.all(ours_min[np.isposinf(x)] == np.float32(FLT_MAX))  # ours: omitted max = FLT_MAX
    assert np.all(np.isposinf(theirs_min[np.isposinf(x)]))  # torch keeps +inf
    ours_max = c2.clip(x, max=1.0)
    theirs_max = torch.clamp(_t(x), max=1.0).numpy()
    finite = ~np.isneginf(x)
    np.testing.assert_array_equal(ours_max[finite], theirs_max[finite])
    assert np.all(ours_max[np.isneginf(x)] == np.float32(-FLT_MAX))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("lo,hi", [(-1.0, 1.0), (-0.25, 2.0)])
def test_clamp_gradient_away_from_bounds(lo, hi, seed):
    x = _x(seed, specials=False).astype(np.float64)
    x = x[(np.abs(x - lo) > 1e-3) & (np.abs(x - hi) > 1e-3)]
    dy = np.random.default_rng(seed + 100).standard_normal(x.size)
    xt = _t(x, grad=True)
    torch.clamp(xt, lo, hi).backward(_t(dy))
    ours = c2.clip_gradient(c2.clip(x, lo, hi), dy, lo, hi)
    np.testing.assert_array_equal(ours, xt.grad.numpy())
    # and through the runtime's gradient registry
    net = core.Net("clamp_grad")
    y = net.Clip(["x"], ["y"], min=lo, max=hi)
    net.AddGradientOperators({y: "dy"})
    workspace.FeedBlob("x", x)
    workspace.FeedBlob("dy", dy)
    workspace.RunNetOnce(net)
    np.testing.assert_array_equal(workspace.FetchBlob("x_grad"), xt.grad.numpy())


def test_clamp_gradient_on_the_bound_is_documented_divergence():
    x = np.array([-1.0, -0.5, 1.0, 2.0])
    dy = np.array([3.0, 3.0, 3.0, 3.0])
    xt = _t(x, grad=True)
    torch.clamp(xt, -1.0, 1.0).backward(_t(dy))
    np.testing.assert_array_equal(xt.grad.numpy(), [3.0, 3.0, 3.0, 0.0])  # torch: inclusive
    ours = c2.clip_gradient(c2.clip(x, -1.0, 1.0), dy, -1.0, 1.0)
    assert_same(ours, np.array([0.0, 3.0, 0.0, 0.0]))  # ours (Caffe2): strict, 0 on a bound


def test_clamp_min_greater_than_max_gradient_zero_in_both():
    x = np.array([-2.0, 0.0, 0.5, 3.0])
    xt = _t(x, grad=True)
    torch.clamp(xt, 1.0, -1.0).backward(torch.ones(4, dtype=torch.float64))
    ours = c2.clip_gradient(c2.clip(x, 1.0, -1.0), np.ones(4), 1.0, -1.0)
    np.testing.assert_array_equal(ours, xt.grad.numpy())
    np.testing.assert_array_equal(ours, np.zeros(4))


# ---- threshold -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alpha", [1.0, 0.0, -0.5, 2.0])
def test_threshold_forward_except_nan(alpha, seed):
    x = _x(seed)
    x[6:9] = np.float32(alpha)  # x == alpha -> 0 in both
    ours = c2.thresholded_relu(x, alpha)
    theirs = F.threshold(_t(x), alpha, 0.0).numpy()
    nan = np.isnan(x)
    np.testing.assert_array_equal(ours[~nan], theirs[~nan])
    assert np.all(np.isnan(theirs[nan]))  # torch keeps NaN
    assert_same(ours[nan], np.zeros(nan.sum(), np.float32))  # ours: +0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alpha", [1.0, 0.25, -0.5, -1.5])
def test_threshold_gradient_matches_autograd_for_any_alpha(alpha, seed):
    x = _x(seed, specials=False).astype(np.float64)
    x = x[np.abs(x - alpha) > 1e-6]
    x[:2] = [0.0, -0.0]
    dy = np.random.default_rng(seed + 7).standard_normal(x.size)
    xt = _t(x, grad=True)
    F.threshold(xt, alpha, 0.0).backward(_t(dy))
    expected = xt.grad.numpy()
    y = c2.thresholded_relu(x, alpha)
    np.testing.assert_array_equal(c2.thresholded_relu_gradient(y, dy, x=x, alpha=alpha),
                                  expected)
    if alpha >= 0:  # from Y alone the rule is exact only for alpha >= 0
        np.testing.assert_array_equal(c2.thresholded_relu_gradient(y, dy), expected)
    net = core.Net("threshold_grad")
    yb = net.ThresholdedRelu(["x"], ["y"], alpha=alpha)
    net.AddGradientOperators({yb: "dy"})
    workspace.FeedBlob("x", x)
    workspace.FeedBlob("dy", dy)
    workspace.RunNetOnce(net)
    np.testing.assert_array_equal(workspace.FetchBlob("x_grad"), expected)


# ---- cos -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-15)])
def test_cos_forward_and_gradient(dtype, tol, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(300) * 10 ** rng.uniform(-2, 3, 300)).astype(dtype)
    x[:3] = [np.nan, np.inf, -np.inf]
    dy = rng.standard_normal(300).astype(dtype)
    xt = _t(x, grad=True)
    yt = torch.cos(xt)
    yt.backward(_t(dy))
    np.testing.assert_allclose(c2.cos(x), yt.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(c2.cos_gradient(x, dy), xt.grad.numpy(), rtol=tol, atol=tol)
    assert np.all(np.isnan(c2.cos(x)[:3])) and np.all(np.isnan(yt.detach().numpy()[:3]))


# ---- cosine similarity -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(5, 8), (1, 3), (7, 1), (4, 30)])
def test_cosine_similarity_and_gradient_2d(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, shape)
    y = rng.uniform(-1, 1, shape)
    if shape[0] > 2:
        y[1] = 3 * x[1]  # parallel rows -> 1
        y[2] = -x[2]  # opposite -> -1
    dz = rng.standard_normal(shape[0])
    xt, yt = _t(x, grad=True), _t(y, grad=True)
    zt = F.cosine_similarity(xt, yt, dim=1)
    zt.backward(_t(dz))
    np.testing.assert_allclose(c2.cosine_similarity(x, y), zt.detach().numpy(),
                               rtol=1e-12, atol=1e-12)
    dx, dy = c2.cosine_similarity_gradient(x, y, dz)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(dy, yt.grad.numpy(), rtol=1e-9, atol=1e-10)
    # float32 through the runtime's gradient registry
    x32, y32, dz32 = x.astype(np.float32), y.astype(np.float32), dz.astype(np.float32)
    net = core.Net("cos_sim_grad")
    z = net.CosineSimilarity(["X", "Y"], ["Z"])
    net.AddGradientOperators({z: "dZ"})
    for name, v in (("X", x32), ("Y", y32), ("dZ", dz32)):
        workspace.FeedBlob(name, v)
    workspace.RunNetOnce(net)
    np.testing.assert_allclose(workspace.FetchBlob("Z"), zt.detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(workspace.FetchBlob("X_grad"), xt.grad.numpy(), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(workspace.FetchBlob("Y_grad"), yt.grad.numpy(), rtol=1e-4,
                               atol=1e-5)


def test_cosine_similarity_zero_vector_both_give_zero():
    x = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    y = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    theirs = F.cosine_similarity(_t(x), _t(y), dim=1).numpy()
    assert_same(c2.cosine_similarity(x, y), np.zeros(2))
    np.testing.assert_array_equal(theirs, np.zeros(2))


# ---- cosine embedding loss -------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("margin", [0.0, 0.3, -0.4])
def test_cosine_embedding_loss_on_torch_similarity(margin, seed):
    rng = np.random.default_rng(seed)
    x1 = rng.standard_normal((16, 5))
    x2 = rng.standard_normal((16, 5))
    x2[0] = 2 * x1[0]  # S = 1
    target = rng.choice([-1, 1], 16)
    theirs = F.cosine_embedding_loss(_t(x1), _t(x2), _t(target), margin=margin,
                                     reduction="none").numpy()
    s = F.cosine_similarity(_t(x1), _t(x2), dim=1, eps=0.0).numpy()
    ours = c2.cosine_embedding_criterion(s, target.astype(np.int32), margin)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("margin", [0.0, 0.3, -0.4])
def test_cosine_embedding_loss_gradient_wrt_similarity(margin, seed):
    """Torch's own loss op with S as a leaf: x1 = [S, sqrt(1 - S²)], x2 = [1, 0] makes
    torch's internal cosine equal S (up to its 1e-12 epsilon), so autograd yields dLoss/dS."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(-0.9, 0.9, 24)
    s = s[np.abs(s - margin) > 1e-3]
    target = rng.choice([-1, 1], s.size)
    dloss = rng.standard_normal(s.size)
    st = _t(s, grad=True)
    x1 = torch.stack([st, torch.sqrt(1 - st * st)], dim=1)
    x2 = torch.tensor([[1.0, 0.0]], dtype=torch.float64).expand(s.size, 2)
    loss = F.cosine_embedding_loss(x1, x2, _t(target), margin=margin, reduction="none")
    loss.backward(_t(dloss))
    label = target.astype(np.int32)
    np.testing.assert_allclose(c2.cosine_embedding_criterion(s, label, margin),
                               loss.detach().numpy(), rtol=1e-10, atol=1e-10)
    ours = c2.cosine_embedding_criterion_gradient(s, label, dloss, margin)
    np.testing.assert_allclose(ours, st.grad.numpy(), rtol=1e-9, atol=1e-9)


def test_cosine_embedding_loss_labels_other_than_pm1_differ():
    """torch gives 0 for a label outside {1, -1}; ours treats any label != 1 as dissimilar."""
    x1 = np.array([[1.0, 0.0], [0.0, 1.0]])
    x2 = np.array([[1.0, 1.0], [0.0, 1.0]])
    target = np.array([0, 2])
    theirs = F.cosine_embedding_loss(_t(x1), _t(x2), _t(target), reduction="none").numpy()
    np.testing.assert_array_equal(theirs, [0.0, 0.0])
    s = c2.cosine_similarity(x1, x2)
    ours = c2.cosine_embedding_criterion(s, target.astype(np.int32), 0.0)
    np.testing.assert_allclose(ours, [np.sqrt(0.5), 1.0], rtol=1e-12)


# ---- embedding_renorm_ -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("max_norm", [0.5, 1.0, 2.5])
@pytest.mark.parametrize("index_dtype", [np.int64, np.int32])
def test_embedding_renorm_vs_sparse_normalize(max_norm, index_dtype, seed):
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((12, 6)) * rng.uniform(0.05, 1.5, (12, 1))).astype(np.float32)
    idx = rng.integers(0, 12, 10).astype(index_dtype)  # duplicates included
    theirs = torch.tensor(w)
    with torch.no_grad():
        torch.embedding_renorm_(theirs, torch.tensor(idx), max_norm, 2.0)
    ours = c2.sparse_normalize(w.copy(), idx, norm=max_norm, use_max_norm=True)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-6, atol=1e-7)
    untouched = np.setdiff1d(np.arange(12), idx)
    assert_same(ours[untouched], w[untouched])
    norms = np.linalg.norm(ours[np.unique(idx)].astype(np.float64), axis=1)
    assert np.all(norms <= max_norm * (1 + 1e-6))
