"""Caffe2's protobuf messages (``caffe2_pb2``), wire-compatible with ``caffe2/proto/caffe2.proto``."""
