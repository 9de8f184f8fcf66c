"""Caffe2's protobuf messages (``caffe2_pb2``), wire-compatible with Caffe2's ``caffe2.proto``."""
