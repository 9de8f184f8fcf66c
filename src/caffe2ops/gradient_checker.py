"""Caffe2's gradient checker: analytic gradients against central finite differences.

The loss is ``½Σ y²`` over the outputs that receive gradients, so ``dY = Y``; the estimate of
``dL/dx_i`` is ``(L(x + h·e_i) − L(x − h·e_i)) / 2h``, compared with
``np.isclose(analytic, estimate, atol=threshold, rtol=threshold)``, as in Caffe2's
``caffe2/python/gradient_checker.py``. Runs in its own workspace and switches back.
:func:`central_difference` is that estimate on its own, for any loss (the test suite's checkers
and ``caffe2ops check`` use it too).

>>> import numpy as np
>>> from caffe2ops import core
>>> from caffe2ops.gradient_checker import GradientChecker
>>> op = core.CreateOperator("Cos", ["X"], ["Y"])
>>> ok, grad, estimate = GradientChecker(1e-3, 1e-5).CheckSimple(op, [np.array([0.5, 1.0])], 0, [0])
>>> bool(ok)
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from caffe2ops import workspace
from caffe2ops.runtime.gradient import GetGradientForOp, grad_name


def central_difference(
    loss: Callable[[np.ndarray], float], x: np.ndarray, stepsize: float
) -> np.ndarray:
    """The central-difference estimate of ``dL/dx``: ``(L(x + h·e_i) − L(x − h·e_i)) / 2h``.

    ``loss`` is called twice per entry of ``x``, with a copy of ``x`` whose entry ``i`` is
    ``x_i + stepsize``, then ``x_i − stepsize``, as NumPy adds them to that entry and stores them
    in ``x``'s dtype (the copy is restored before the next entry and changed in place between
    calls: ``loss`` must not keep it). ``x`` itself is left as it is. Returns a float64 array of
    ``x``'s shape.

    >>> import numpy as np
    >>> x = np.array([[1.0, 2.0], [3.0, -1.0]])
    >>> central_difference(lambda v: float(np.sum(v ** 3)), x, 1e-3)  # 3x² + h²
    array([[ 3.000001, 12.000001],
           [27.000001,  3.000001]])
    """
    x = np.array(x, copy=True)
    estimate = np.zeros(x.shape, dtype=np.float64)
    for k in np.ndindex(x.shape):
        original = x[k]
        x[k] = original + stepsize
        plus = loss(x)
        x[k] = original - stepsize
        minus = loss(x)
        x[k] = original
        estimate[k] = (plus - minus) / (2 * stepsize)
    return estimate


class GradientChecker:
    """``CheckSimple(op, inputs, input_to_check, outputs_with_grads)`` as in Caffe2."""

    def __init__(
        self,
        stepsize: float,
        threshold: float,
        device_option=None,
        workspace_name: str = "gradient_check",
        input_device_options=None,
    ) -> None:
        self._stepsize = stepsize
        self._threshold = threshold
        self._device_option = device_option
        self._workspace_name = workspace_name
        self._input_device_options = dict(input_device_options or {})

    def _loss(self, op, outputs_with_grads: Sequence[int]) -> tuple[float, list[np.ndarray]]:
        workspace.RunOperatorOnce(op)
        outs = [workspace.FetchBlob(op.output[i]) for i in outputs_with_grads]
        loss = sum(0.5 * float(np.sum(np.square(o.astype(np.float64)))) for o in outs)
        return loss, outs

    def CheckSimple(  # noqa: N802 - Caffe2's name
        self,
        op,
        inputs: Sequence[np.ndarray],
        input_to_check: int,
        outputs_with_grads: Sequence[int],
        grad_ops=None,
        input_device_options=None,
    ) -> tuple[bool, np.ndarray, np.ndarray]:
        """``(ok, analytic gradient, numeric estimate)`` for input ``input_to_check``.

        Runs in workspace ``workspace_name``, emptied before and after, unless that is the current
        workspace (then, as in Caffe2, it runs there and leaves its blobs alone)."""
        old = workspace.CurrentWorkspace()
        own = self._workspace_name != old
        if own:
            workspace.SwitchWorkspace(self._workspace_name, True)
            workspace.ResetWorkspace()
        self._feed_options = dict(input_device_options or self._input_device_options)
        try:
            return self._check(op, inputs, input_to_check, outputs_with_grads, grad_ops)
        finally:
            if own:
                workspace.ResetWorkspace()
                workspace.SwitchWorkspace(old)

    def _feed(self, name, value) -> None:
        workspace.FeedBlob(name, value, self._feed_options.get(name, self._device_option))

    def _check(self, op, inputs, input_to_check, outputs_with_grads, grad_ops):
        if self._device_option is not None:
            op.device_option.CopyFrom(self._device_option)
        if len(inputs) != len(op.input):
            raise ValueError(f"{op.type}: {len(inputs)} input arrays given for "
                             f"{len(op.input)} inputs {list(op.input)}")
        for name, value in zip(op.input, inputs, strict=True):
            self._feed(name, value)
        if grad_ops is None:
            g_output = [
                grad_name(name) if i in outputs_with_grads else None
                for i, name in enumerate(op.output)
            ]
            grad_ops, g_input = GetGradientForOp(op, g_output)
        else:
            g_input = [grad_name(n) for n in op.input]
        _, outs = self._loss(op, outputs_with_grads)
        for i, out in zip(outputs_with_grads, outs, strict=True):
            workspace.FeedBlob(grad_name(op.output[i]), out, self._device_option)
        workspace.RunOperatorsOnce(grad_ops)
        analytic = workspace.FetchBlob(g_input[input_to_check])

        x = np.array(inputs[input_to_check], copy=True)
        name = op.input[input_to_check]

        def loss_at(value) -> float:
            # Every input is fed again (as Caffe2 did): an operator running in place on another
            # input must not see that input already overwritten by the previous run.
            for other, other_value in zip(op.input, inputs, strict=True):
                if other != name:
                    self._feed(other, other_value)
            self._feed(name, value)
            return self._loss(op, outputs_with_grads)[0]

        estimate = central_difference(loss_at, x, self._stepsize)
        self._feed(name, x)
        ok = bool(np.all(np.isclose(analytic, estimate, atol=self._threshold,
                                    rtol=self._threshold)))
        return ok, analytic, estimate.astype(analytic.dtype)


def getGradientForOp(op):  # noqa: N802 - Caffe2's name
    """``(gradient ops, g_input)`` of ``op`` with every output's gradient ``<output>_grad``."""
    return GetGradientForOp(op, [grad_name(s) for s in op.output])
