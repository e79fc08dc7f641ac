"""Running work: a recipe run (baseline, variants built and measured, the row-writer pipeline, results
writers, replay from the cache), where variants run (local or Ray executors), the result cache, and the
runner that starts one worker process per run.

May import: core, ``inputs``, ``tflite``, ``measure``, ``techniques``, ``views``, ``store``. The jobs of
``explore`` are named by string (``"compression.explore.search:run_search"``) and loaded by the worker,
never imported here.
"""
