"""Checks the workspace makes before it stores or runs anything (contract §4)."""

from __future__ import annotations

from collections.abc import Container
from typing import Any

import numpy as np

from caffe2ops.errors import BlobNotFoundError, OperatorError, OperatorTypeError


def parse_proto(message, data: bytes):
    """``message.FromString(data)``; bytes that do not parse raise :class:`OperatorError`.

    >>> from caffe2ops.proto import caffe2_pb2
    >>> try:
    ...     parse_proto(caffe2_pb2.OperatorDef, b"\\xff\\xff")
    ... except OperatorError as exc:
    ...     print(str(exc)[:41])
    cannot parse 2 bytes as a OperatorDef: Er
    """
    from google.protobuf.message import DecodeError

    try:
        return message.FromString(data)
    except (DecodeError, ValueError, RecursionError) as exc:
        raise OperatorError(
            f"cannot parse {len(data)} bytes as a {message.DESCRIPTOR.name}: {exc}"
        ) from None


def as_message(obj, message):
    """A ``message`` from itself, its serialized bytes (checked) or an object with ``Proto()``
    (``core.Net``)."""
    if isinstance(obj, message):
        return obj
    if isinstance(obj, bytes):
        return parse_proto(message, obj)
    if hasattr(obj, "Proto"):
        return obj.Proto()
    raise OperatorTypeError(f"expected a {message.DESCRIPTOR.name}, got {type(obj).__name__}")


def feedable_array(what: str, arr: Any) -> np.ndarray:
    """``arr`` as a new array; object arrays may hold only bytes/str (string tensors, as in
    Caffe2); anything else non-numeric raises naming ``what``.

    >>> feedable_array("FeedBlob('x')", [1, 2]).tolist()
    [1, 2]
    >>> try:
    ...     feedable_array("FeedBlob('x')", [b"ok", object()])
    ... except TypeError as exc:
    ...     print(str(exc).split("; ")[1])
    got a list holding an element of type 'object'
    """
    try:
        value = np.array(arr, copy=True)
    except (TypeError, ValueError) as exc:
        raise OperatorTypeError(
            f"{what}: cannot convert a {type(arr).__name__} to an array: {exc}"
        ) from None
    if value.dtype.kind == "O":
        bad = next((v for v in value.flat if not isinstance(v, bytes | str)), None)
        if bad is not None:
            raise OperatorTypeError(
                f"{what}: only numeric arrays and bytes/str tensors can be fed; got a "
                f"{type(arr).__name__} holding an element of type '{type(bad).__name__}'"
            )
    if value.dtype.kind == "V":
        raise OperatorTypeError(f"{what}: structured dtype {value.dtype} is not supported")
    return value


def check_inputs_exist(what: str, net_def, blobs: Container, workspace: str) -> None:
    """Caffe2's check at net creation: every input exists or an earlier operator writes it."""
    produced: set[str] = set()
    for idx, op in enumerate(net_def.op):
        for name in op.input:
            if name not in blobs and name not in produced:
                raise BlobNotFoundError(
                    f"{what}: operator #{idx} ({op.type}) of net '{net_def.name}' reads blob "
                    f"'{name}', which neither exists in workspace '{workspace}' nor is written "
                    "by an earlier operator (feed it, run the init net first, or pass it in "
                    "input_blobs)"
                )
        produced.update(op.output)
