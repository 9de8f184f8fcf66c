"""``GradientClipping``: Caffe2's per-parameter gradient clipping net modifier
(``caffe2/python/modeling/gradient_clipping.py``), emitting the same operators.

By norm, per parameter: ``n = ‖grad‖_p`` (``LpNorm``, then ``Pow(exponent=0.5)`` for l2);
``grad *= threshold/n`` where ``n > threshold`` (``ClipTensorByScaling``, in place). With
``use_parameter_norm`` the threshold is ``clip_threshold·‖param‖_p`` (the parameter's norm is the
operator's third input); ``compute_norm_ratio`` adds ``Div(grad_norm, param_norm)`` into
``<param>_norm_ratio`` for inspection. By value: ``Clip(grad, min=clip_min, max=clip_max)`` in
place. Sparse gradients (``GradientSlice``) are skipped. Unlike Caffe2, the threshold never
compounds across runs of a created net.
"""

from __future__ import annotations

from caffe2ops import core
from caffe2ops.modeling.net_modifier import NetModifier
from caffe2ops.proto import caffe2_pb2

GradientSlice = core.GradientSlice


def is_gradient_slice(grad) -> bool:
    """True for a sparse gradient: any object with ``indices`` and ``values`` attributes
    (``GradientSlice`` here or Caffe2's namedtuple of the same name).

    >>> is_gradient_slice(GradientSlice("idx", "vals")), is_gradient_slice("w_grad")
    (True, False)
    """
    return hasattr(grad, "indices") and hasattr(grad, "values")


def get_param_device(param_name, grad, param_to_device=None, default_device=None):
    """Caffe2's ``optimizer.get_param_device`` (``caffe2ops.optimizer`` imports this one): the
    device of ``param_name`` where an op creates it, else its gradient's (values, then indices,
    for a sparse one), else ``default_device``; ``AssertionError`` if none."""
    device = default_device
    param_to_device = param_to_device or {}
    if param_name in param_to_device:
        device = param_to_device[param_name]
    elif is_gradient_slice(grad):
        if str(grad.values) in param_to_device:
            device = param_to_device[str(grad.values)]
        elif str(grad.indices) in param_to_device:
            device = param_to_device[str(grad.indices)]
    elif str(grad) in param_to_device:
        device = param_to_device[str(grad)]
    if device is None:
        raise AssertionError(f"Cannot infer device for {param_name}: no op creates it")
    return device


class GradientClipping(NetModifier):
    """Clip each parameter's gradient in place: by norm, ``g *= t/‖g‖_p`` when ``‖g‖_p > t``
    with ``t = clip_threshold`` (times ``‖param‖_p`` with ``use_parameter_norm``); by value,
    ``g = clip(g, clip_min, clip_max)``.

    ``grad_clip_method`` is ``'by_norm'`` or ``'by_value'``; ``clip_norm_type`` ``'l2_norm'`` or
    ``'l1_norm'``. ``blobs_to_include`` (parameters the net must define) restricts the
    parameters of ``grad_map``; ``blobs_to_exclude`` removes some. Per parameter it adds 3 ops
    (l2), 2 (l1), 5 (l2 with the parameter norm), 6 (and the ratio) or 1 (by value); each
    inside ``core.DeviceScope(blob_to_device.get(param, CPU))``. Sparse gradients are skipped.
    Call it as ``GradientClipping(...)(net, grad_map=grad_map)``.

    >>> import numpy as np
    >>> from caffe2ops import core, workspace
    >>> net = core.Net("gradient_clipping_example")
    >>> y = net.Cos(["w"], ["y"])
    >>> loss = net.LpNorm([y], ["loss"])
    >>> grad_map = net.AddGradientOperators([loss])
    >>> GradientClipping("by_norm", clip_threshold=0.1)(net, grad_map={"w": grad_map["w"]})
    >>> [op.type for op in net.Proto().op][-3:]
    ['LpNorm', 'Pow', 'ClipTensorByScaling']
    >>> workspace.FeedBlob("w", np.array([1.0, 2.0], dtype=np.float32))
    True
    >>> workspace.RunNetOnce(net)
    True
    >>> round(float(np.linalg.norm(workspace.FetchBlob("w_grad"))), 6)
    0.1
    """

    L1_NORM = "l1_norm"
    L2_NORM = "l2_norm"

    BY_NORM = "by_norm"
    BY_VALUE = "by_value"

    GRAD_CLIP_METHODS = [BY_NORM, BY_VALUE]
    CLIP_GRADIENT_NORM_TYPES = [L2_NORM, L1_NORM]

    def __init__(self, grad_clip_method, clip_norm_type="l2_norm", clip_threshold=0.1,
                 use_parameter_norm=False, compute_norm_ratio=False, clip_max=1, clip_min=-1,
                 blobs_to_include=None, blobs_to_exclude=None):
        if grad_clip_method not in self.GRAD_CLIP_METHODS:
            raise AssertionError(
                f"This method of clipping, {grad_clip_method!r}, has not been implemented; "
                f"expected one of {self.GRAD_CLIP_METHODS}."
            )
        if clip_norm_type is not None and clip_norm_type not in self.CLIP_GRADIENT_NORM_TYPES:
            raise AssertionError(
                f"This type of norm, {clip_norm_type!r}, has not been implemented; expected "
                f"one of {self.CLIP_GRADIENT_NORM_TYPES}."
            )
        if grad_clip_method == self.BY_NORM and clip_norm_type is None:
            raise AssertionError(
                "Clipping by_norm needs clip_norm_type 'l2_norm' or 'l1_norm'; got None."
            )
        self.grad_clip_method = grad_clip_method
        self.clip_norm_type = clip_norm_type
        self.clip_threshold = float(clip_threshold)
        self.use_parameter_norm = use_parameter_norm
        self.compute_norm_ratio = compute_norm_ratio
        self.clip_max = float(clip_max)
        self.clip_min = float(clip_min)
        self.blobs_to_include = blobs_to_include
        self.blobs_to_exclude = blobs_to_exclude

    def _params(self, net, grad_map) -> dict:
        if self.blobs_to_include is None:
            final_param_map = dict(grad_map)
        else:
            final_param_map = {}
            for blob in self.blobs_to_include:
                param = core.BlobReference(blob)
                if not net.BlobIsDefined(param):
                    raise ValueError(f"param {param} is not defined in net {net.Name()}")
                if param not in grad_map:
                    raise KeyError(f"param {param} has no gradient in grad_map")
                final_param_map[param] = grad_map[param]
        for blob in self.blobs_to_exclude or ():
            final_param_map.pop(blob, None)
        return final_param_map

    def modify_net(self, net, init_net=None, grad_map=None, blob_to_device=None,
                   modify_output_record=False):
        """Append the clipping operators for every selected dense gradient of ``grad_map``."""
        if grad_map is None:
            raise AssertionError("GradientClipping needs grad_map ({param: gradient blob})")
        cpu = core.DeviceOption(caffe2_pb2.CPU)
        for param, grad in self._params(net, grad_map).items():
            if is_gradient_slice(grad):  # sparse gradients are not clipped (as in Caffe2)
                continue
            device = get_param_device(param, grad, param_to_device=blob_to_device,
                                      default_device=cpu)
            with core.DeviceScope(device):
                if self.grad_clip_method == self.BY_NORM:
                    self._clip_by_norm(net, param, grad)
                else:
                    net.Clip([grad], [grad], max=self.clip_max, min=self.clip_min)

    def _clip_by_norm(self, net, param, grad) -> None:
        p = 2 if self.clip_norm_type == self.L2_NORM else 1
        grad_norm = net.LpNorm(
            [grad], net.NextScopedBlob(prefix=f"{grad}_l{p}_norm"), p=p,
        )
        if p == 2:
            grad_norm = net.Pow([grad_norm], exponent=0.5)
        op_inputs = [grad, grad_norm]
        if self.use_parameter_norm:
            param_norm = net.LpNorm(
                [param], net.NextScopedBlob(prefix=f"{param}_l{p}_norm"), p=p,
            )
            if p == 2:
                param_norm = net.Pow([param_norm], exponent=0.5)
            op_inputs.append(param_norm)
            if self.compute_norm_ratio:
                net.Div([grad_norm, param_norm], [net.NextScopedBlob(prefix=f"{param}_norm_ratio")])
        net.ClipTensorByScaling(op_inputs, [grad], threshold=self.clip_threshold)
