"""Compression Lab's benchmark suite: ``python -m benchmarks [--quick]`` rewrites benchmarks/RESULTS.md.

Modules, one per benchmark (each ``run(ctx) -> section``): experiment_e, frontier, eval_speed,
time_to_result, measurement, app_render; shared helpers in common, the Markdown in report.
"""
