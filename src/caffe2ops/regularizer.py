"""Regularizers applied after the optimizer (Caffe2's ``caffe2/python/regularizer.py``, the
part that uses this package's operators).

``MaxNorm(norm)`` and ``ConstantNorm(norm)`` renormalize the embedding rows a sparse gradient
touched, after the parameter update: ``SparseNormalize([param, grad.indices], [param])`` with
``use_max_norm`` True (rows with ``‖row‖₂ > norm`` are scaled to ``norm``) or False (every
touched row is scaled to ``norm``). Dense gradients raise ``NotImplementedError``, as in Caffe2.
"""

from __future__ import annotations

from caffe2ops import core
from caffe2ops.modeling.gradient_clipping import GradientSlice, is_gradient_slice

__all__ = [
    "ConstantNorm",
    "GradientSlice",
    "MaxNorm",
    "RegularizationBy",
    "Regularizer",
]


class RegularizationBy:
    """When a regularizer runs: on the loss, or on the parameter after the optimizer."""

    AFTER_OPTIMIZER = "after_optimizer"
    ON_LOSS = "on_loss"


_BY = (RegularizationBy.AFTER_OPTIMIZER, RegularizationBy.ON_LOSS)


class Regularizer:
    """Base class: ``reg(net, param_init_net, param, grad=None, by=...)`` dispatches to
    ``_run_<by>`` (``_run_after_optimizer`` / ``_run_on_loss``), which add operators to ``net``
    and return what they produce (None here: the base class adds nothing).

    ``param`` is a ``core.BlobReference`` (a str is accepted too); ``by`` is one of
    :class:`RegularizationBy`'s values.

    >>> from caffe2ops import core
    >>> net = core.Net("regularizer_base_example")
    >>> Regularizer()(net, None, core.BlobReference("w"), by=RegularizationBy.ON_LOSS) is None
    True
    """

    def __init__(self) -> None:
        self.kEpsilon = 1e-9  # noqa: N815 - Caffe2's attribute name

    def __call__(self, net, param_init_net, param, grad=None, by=None):
        if isinstance(param, str):
            param = core.BlobReference(param)
        if not isinstance(param, core.BlobReference):
            raise AssertionError(
                f"param must be a core.BlobReference (or str); got {type(param).__name__}"
            )
        if by not in _BY:
            raise AssertionError(
                f"Regularizer of type {self.__class__} is called with invalid by={by}, "
                f"not in {list(_BY)}"
            )
        run_func = "_run_" + by
        if not hasattr(self, run_func):
            raise AssertionError(
                f"Regularizer of type {self.__class__} does not implement function {run_func}"
            )
        return getattr(self, run_func)(net, param_init_net, param, grad)

    def _run_on_loss(self, net, param_init_net, param, grad=None):
        return None

    def _run_after_optimizer(self, net, param_init_net, param, grad):
        return None


class _SparseNorm(Regularizer):
    use_max_norm = True

    def __init__(self, norm: float = 1.0, dtype: str | None = None) -> None:
        super().__init__()
        self.norm = norm
        self.dtype = dtype

    def _run_after_optimizer(self, net, param_init_net, param, grad):
        if not self.norm > 0:
            raise AssertionError("norm should be bigger than 0.")
        if not is_gradient_slice(grad):
            raise NotImplementedError(
                f"{type(self).__name__} is not supported for dense parameters"
            )
        op = "Float16SparseNormalize" if self.dtype == "fp16" else "SparseNormalize"
        getattr(net, op)(
            [param, grad.indices], [param], use_max_norm=self.use_max_norm, norm=self.norm,
        )


class MaxNorm(_SparseNorm):
    """After the update, every row ``r`` of ``param`` that the sparse gradient touched with
    ``‖r‖₂ > norm`` becomes ``r·norm/(‖r‖₂ + 1e-12)``; other rows are unchanged.

    ``norm`` must be > 0; ``dtype='fp16'`` emits ``Float16SparseNormalize``. Dense gradients
    raise ``NotImplementedError``.

    >>> import numpy as np
    >>> from caffe2ops import core, workspace
    >>> net = core.Net("max_norm_example")
    >>> grad = GradientSlice(indices="idx", values="vals")
    >>> MaxNorm(norm=1.0)(net, None, core.BlobReference("emb"), grad,
    ...                   by=RegularizationBy.AFTER_OPTIMIZER)
    >>> workspace.FeedBlob("emb", np.array([[3.0, 4.0], [3.0, 4.0]], dtype=np.float32))
    True
    >>> workspace.FeedBlob("idx", np.array([1], dtype=np.int64))
    True
    >>> workspace.RunNetOnce(net)
    True
    >>> workspace.FetchBlob("emb")
    array([[3. , 4. ],
           [0.6, 0.8]], dtype=float32)
    """

    use_max_norm = True


class ConstantNorm(_SparseNorm):
    """After the update, every row ``r`` of ``param`` that the sparse gradient touched becomes
    ``r·norm/(‖r‖₂ + 1e-12)`` (norm exactly ``norm``, up to rounding).

    ``norm`` must be > 0; ``dtype='fp16'`` emits ``Float16SparseNormalize``. Dense gradients
    raise ``NotImplementedError``.

    >>> from caffe2ops import core
    >>> net = core.Net("constant_norm_example")
    >>> ConstantNorm(2.0)(net, None, core.BlobReference("emb"), GradientSlice("i", "v"),
    ...                   by=RegularizationBy.AFTER_OPTIMIZER)
    >>> op = net.Proto().op[0]
    >>> op.type, list(op.input), list(op.output)
    ('SparseNormalize', ['emb', 'i'], ['emb'])
    """

    use_max_norm = False
