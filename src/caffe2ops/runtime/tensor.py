"""Conversions between NumPy arrays and ``TensorProto`` / dtypes and Caffe2 DataType codes."""

from __future__ import annotations

import numpy as np

from caffe2ops.proto import caffe2_pb2

TP = caffe2_pb2.TensorProto
DTYPE_TO_TP = {
    np.dtype(np.float32): TP.FLOAT, np.dtype(np.int32): TP.INT32, np.dtype(np.uint8): TP.UINT8,
    np.dtype(np.bool_): TP.BOOL, np.dtype(np.int8): TP.INT8, np.dtype(np.uint16): TP.UINT16,
    np.dtype(np.int16): TP.INT16, np.dtype(np.int64): TP.INT64, np.dtype(np.float16): TP.FLOAT16,
    np.dtype(np.float64): TP.DOUBLE,
}
TP_TO_DTYPE = {v: k for k, v in DTYPE_TO_TP.items()}


def dtype_from_tp(code: int) -> np.dtype:
    try:
        return TP_TO_DTYPE[code]
    except KeyError:
        raise ValueError(f"TensorProto data type {code} has no NumPy equivalent here") from None


def tensor_proto_to_array(t) -> np.ndarray:
    """A ``TensorProto`` as a NumPy array (Caffe2's ``utils.Caffe2TensorToNumpyArray``)."""
    dtype = dtype_from_tp(t.data_type)
    shape = tuple(t.dims)
    if t.data_type in (TP.FLOAT,):
        data = np.asarray(t.float_data, dtype=np.float32)
    elif t.data_type == TP.DOUBLE:
        data = np.asarray(t.double_data, dtype=np.float64)
    elif t.data_type == TP.INT64:
        data = np.asarray(t.int64_data, dtype=np.int64)
    elif t.data_type == TP.FLOAT16:
        data = np.asarray(t.int32_data, dtype=np.uint16).view(np.float16)
    elif t.data_type == TP.UINT8 and t.byte_data:
        data = np.frombuffer(t.byte_data, dtype=np.uint8)
    else:
        data = np.asarray(t.int32_data).astype(dtype)
    return data.reshape(shape).copy()


def array_to_tensor_proto(arr: np.ndarray, name: str = ""):
    """A NumPy array as a ``TensorProto`` (Caffe2's ``utils.NumpyArrayToCaffe2Tensor``)."""
    arr = np.ascontiguousarray(arr)
    code = DTYPE_TO_TP.get(arr.dtype)
    if code is None:
        raise TypeError(f"no TensorProto data type for dtype {arr.dtype}")
    t = TP(dims=arr.shape, data_type=code, name=name)
    flat = arr.ravel()
    if code == TP.FLOAT:
        t.float_data.extend(flat.tolist())
    elif code == TP.DOUBLE:
        t.double_data.extend(flat.tolist())
    elif code == TP.INT64:
        t.int64_data.extend(flat.tolist())
    elif code == TP.FLOAT16:
        t.int32_data.extend(flat.view(np.uint16).tolist())
    else:
        t.int32_data.extend(flat.astype(np.int64).tolist())
    return t
