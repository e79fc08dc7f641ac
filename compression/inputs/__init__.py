"""Inputs: what a run starts from — datasets and their cards, the model zoo and its cards, the shipped
pretrained samples, and the guards for untrusted files (safe model loading, zip safety).

Datasets: ``data.load_dataset`` is the entry point; ``dataset`` (the type), ``builtin_datasets`` (the
registry and its loaders), ``user_npz`` (the user's own files; image folders go beside it), ``layout``
(image / sequence / tokens, fitting a dataset to a model's input).

May import: the core modules of ``compression`` (config, results, errors, progress, validation, _io, _tf, …).
"""
