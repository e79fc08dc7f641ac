"""Techniques: training and the compressions applied to a Keras model, each with the same verbs (wrap →
fine-tune → strip): train, pruning, clustering, QAT (QAT / PQAT / CQAT / PCQAT), distillation; and the
script that trains the shipped samples.

May import: core, ``inputs``, ``tflite``, ``measure``.
"""
