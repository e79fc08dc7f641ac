"""Inputs: what a run starts from — datasets and their cards, the model zoo and its cards, the shipped
pretrained samples, and the guards for untrusted files (safe model loading, zip safety).

May import: the core modules of ``compression`` (config, results, errors, progress, validation, _io, _tf, …).
"""
