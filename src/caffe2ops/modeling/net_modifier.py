"""``NetModifier``: the base class of objects that add operators to an existing net (Caffe2's
``caffe2/python/modeling/net_modifier.py``)."""

from __future__ import annotations

import abc


class NetModifier(metaclass=abc.ABCMeta):
    """Adds operators to a built net: subclasses implement :meth:`modify_net`; calling the
    modifier, ``modifier(net, init_net=None, grad_map=None, blob_to_device=None,
    modify_output_record=False)``, forwards every argument to it.

    >>> from caffe2ops import core
    >>> class AddClip(NetModifier):
    ...     def modify_net(self, net, init_net=None, grad_map=None, blob_to_device=None,
    ...                    modify_output_record=False):
    ...         net.Clip(["x"], ["x"], min=0.0)
    >>> net = core.Net("net_modifier_example")
    >>> AddClip()(net)
    >>> [op.type for op in net.Proto().op]
    ['Clip']
    """

    @abc.abstractmethod
    def modify_net(self, net, init_net=None, grad_map=None, blob_to_device=None,
                   modify_output_record=False):
        """Add this modifier's operators to ``net`` (``init_net`` for initializers)."""

    def __call__(self, net, init_net=None, grad_map=None, blob_to_device=None,
                 modify_output_record=False):
        self.modify_net(
            net,
            init_net=init_net,
            grad_map=grad_map,
            blob_to_device=blob_to_device,
            modify_output_record=modify_output_record,
        )
