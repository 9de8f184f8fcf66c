"""Caffe2's ``caffe2.python.modeling``: net modifiers that add operators to a built net.

``GradientClipping(...)(net, grad_map=grad_map)`` clips each parameter's gradient in place, by
norm (``LpNorm``, ``Pow``, ``ClipTensorByScaling``) or by value (``Clip``).
"""

from caffe2ops.modeling.gradient_clipping import GradientClipping, GradientSlice
from caffe2ops.modeling.net_modifier import NetModifier

__all__ = ["GradientClipping", "GradientSlice", "NetModifier"]
