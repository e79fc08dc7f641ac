"""Exploring the settings: per-layer sensitivity, the automatic search for the smallest model within a
budget (Optuna), and the classroom lessons' recipes.

May import: every floor below (core, ``inputs``, ``tflite``, ``measure``, ``techniques``, ``views``,
``store``, ``run``).
"""
