"""Net files: ``load_net(path)`` reads a ``NetDef`` saved as binary protobuf (``.pb``) or as
protobuf text (``.pbtxt``), telling them apart by content, not by name; ``save_net(net, path)``
writes text for a ``.pbtxt``/``.prototxt``/``.txt`` path and binary otherwise.

>>> import os, tempfile
>>> from caffe2ops.proto import caffe2_pb2
>>> net = caffe2_pb2.NetDef(name="saved", external_input=["x"])
>>> folder = tempfile.mkdtemp()
>>> save_net(net, os.path.join(folder, "net.pbtxt"))
>>> os.rename(os.path.join(folder, "net.pbtxt"), os.path.join(folder, "renamed.pb"))
>>> load_net(os.path.join(folder, "renamed.pb")) == net
True
"""

from __future__ import annotations

import os

from google.protobuf import message, text_format

from caffe2ops.errors import OperatorError, OperatorTypeError
from caffe2ops.proto import caffe2_pb2

TEXT_SUFFIXES = (".pbtxt", ".prototxt", ".txt")


def _looks_like_text(data: bytes) -> bool:
    """Protobuf text is printable UTF-8; binary NetDefs almost always hold control bytes."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\t\n\r\f\v" for ch in text)


def parse_net(data: bytes, source: str = "<bytes>"):
    """A ``NetDef`` from binary or text protobuf ``data``; ``OperatorError`` if it is neither."""
    net = caffe2_pb2.NetDef()
    text_error = None
    if _looks_like_text(data):
        try:
            text_format.Parse(data.decode("utf-8"), net)
            return net
        except text_format.ParseError as exc:
            text_error = exc  # printable bytes can still be a binary NetDef
    net = caffe2_pb2.NetDef()
    try:
        net.ParseFromString(data)
    except (message.DecodeError, ValueError, RuntimeError) as exc:
        detail = f"; as text: {text_error}" if text_error is not None else ""
        raise OperatorError(
            f"load_net: {source} is neither a binary nor a text NetDef ({exc}{detail})"
        ) from None
    return net


def load_net(path: str | os.PathLike):
    """The ``NetDef`` stored at ``path`` (binary or text, found from the content)."""
    with open(path, "rb") as f:
        data = f.read()
    return parse_net(data, source=repr(os.fspath(path)))


def save_net(net, path: str | os.PathLike) -> None:
    """Write ``net`` (a NetDef or an object with ``Proto()``) to ``path``: protobuf text for a
    text suffix (``.pbtxt``, ``.prototxt``, ``.txt``), binary otherwise."""
    proto = net.Proto() if hasattr(net, "Proto") else net
    if not isinstance(proto, caffe2_pb2.NetDef):
        raise OperatorTypeError(
            f"save_net: expected a NetDef or core.Net, got {type(net).__name__}"
        )
    if os.fspath(path).lower().endswith(TEXT_SUFFIXES):
        data = text_format.MessageToString(proto).encode("utf-8")
    else:
        data = proto.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
