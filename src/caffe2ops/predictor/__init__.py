"""Caffe2's ``caffe2/python/predictor`` package: exporting a trained net for a ``Predictor``."""
