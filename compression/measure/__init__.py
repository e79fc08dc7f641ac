"""Measurements of a model or a ``.tflite``: LiteRT accuracy/latency/throughput (``litert``), TensorFlow
Lite Micro's arena, flash and accuracy (``tflm``), board budgets and fit (``boards``), per-layer weight
statistics of a Keras model (``weight_stats``).

May import: core, ``inputs``, ``tflite``.
"""
