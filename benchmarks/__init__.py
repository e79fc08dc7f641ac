"""Compression Lab's benchmark suite: ``python -m benchmarks [--quick]`` rewrites benchmarks/RESULTS.md.

Modules, one per benchmark (each ``TITLE`` and ``run(ctx) -> section``), in the order they run:
experiment_e, frontier, eval_speed, time_to_result, measurement, app_render, board_fit,
time_to_result_cache, ray_bench, lessons, search; shared helpers in common, the Markdown in report.
"""
