"""Smoke tests of the benchmark suite's pure parts: report generation, targets, entropy, recipes. No timing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks import report
from benchmarks.common import (
    NEEDS_FASHION_MNIST,
    fmt,
    needs_fashion_mnist,
    not_measured,
    section,
    table,
    target,
)
from benchmarks.frontier import (
    FULL,
    QUICK,
    binary_entropy,
    choose,
    empirical_entropy_bits,
    pareto,
    push_variants,
    sweep_variants,
)


def _timed(s: dict, key: str, started: str, seconds: float, load_start: list, load_end: list) -> dict:
    """What ``python -m benchmarks`` adds to every section."""
    s.update(key=key, started=started, seconds=seconds, load_average_start=load_start, load_average_end=load_end)
    return s


def tiny_results(only: list[str] | None = None):
    return {
        "quick": True, "started": "2025-01-01T00:00:00+00:00", "finished": "2025-01-01T00:01:00+00:00",
        "command": "python -m benchmarks --quick", "git": {"commit": "abc1234", "dirty": False, "modified": []},
        "registry": ["a", "fashion_only", "partly", "other"], "only": only,
        "seconds": 60.0, "machine": {"cpu": "Test CPU", "logical_cores": 2, "usable_cores": 2, "ram_gib": 4.0,
                                    "avx2": True, "avx512": False, "os": "Linux", "python": "3.11",
                                    "load_average": [0.1, 0.2, 0.3]},
        "load_average_end": [0.4, 0.5, 0.6], "versions": {"tensorflow": "2.21.0"},
        "sections": [
            _timed(section("A", targets=[target("speed-up", 7.5, 5.0, unit="×", higher_is_better=True),
                                         target("time", 12.0, 10.0, unit="s"),
                                         target("not run", None, 1.0)],
                           tables=[table("cap | with pipe", ["x", "y"], [[1, 2.5], [None, "a|b"]])],
                           notes=["a note"], seconds=3.0),
                   "a", "2025-01-01T00:00:01+00:00", 3.0, [0.1, 0.2, 0.3], [1.25, 0.5, 0.25]),
            _timed(needs_fashion_mnist("B", targets=[target("ratio", None, 20.0, unit="×", higher_is_better=True)]),
                   "fashion_only", "2025-01-01T00:00:04+00:00", 0.2, [2.0, 1.0, 0.5], [2.5, 1.5, 0.75]),
            _timed(section("C", tables=[table("digits", ["x"], [[1]])],
                           missing=[not_measured(NEEDS_FASHION_MNIST, "Fashion-MNIST × seed CNN")]),
                   "partly", "2025-01-01T00:00:05+00:00", 50.0, [3.0, 2.0, 1.0], [3.5, 2.5, 1.5]),
        ],
    }


def test_render_puts_every_figure_next_to_its_target():
    text = report.render(tiny_results())
    assert text.startswith("# Benchmark results")
    assert "do not edit by hand" in text
    assert "Test CPU" in text and "tensorflow 2.21.0" in text
    assert "| A | speed-up | 7.5 × | ≥ 5 × | ✅ met |" in text
    assert "| A | time | 12 s | ≤ 10 s | ❌ missed |" in text
    assert "— not measured" in text
    assert "a\\|b" in text  # pipes in cells do not break the table
    assert "- a note" in text


NEEDS_LINE = "needs Fashion-MNIST (`sudo apt-get install -y dataset-fashion-mnist`); not measured"


def test_render_says_one_run_its_commit_and_each_sections_own_time_and_load():
    text = report.render(tiny_results())
    # one generation date, one run, its command and its commit
    assert text.count("Generated 2025-01-01: one run, 2025-01-01T00:00:00+00:00 → 2025-01-01T00:01:00+00:00") == 1
    assert "Generated 20" not in text.replace("Generated 2025-01-01:", "")  # no second generation date
    assert "`python -m benchmarks --quick`" in text
    assert "commit abc1234, clean tree" in text
    dirty = tiny_results()
    dirty["git"] = {"commit": "abc1234", "dirty": True, "modified": ["compression/x.py"]}
    assert "commit abc1234 **with uncommitted changes** to `compression/x.py`" in report.render(dirty)
    # every section its own start, seconds and load average at its start and end
    assert ("_Started 2025-01-01T00:00:01+00:00; took 3 s; load average (1, 5, 15 min) [0.1, 0.2, 0.3] at its "
            "start, [1.25, 0.5, 0.25] at its end._") in text
    assert ("_Started 2025-01-01T00:00:05+00:00; took 50 s; load average (1, 5, 15 min) [3, 2, 1] at its start, "
            "[3.5, 2.5, 1.5] at its end._") in text
    # a full run names the sections it did not reach
    assert "- Sections: all 4 of the suite; not reached: other" in text


def test_render_says_what_needs_fashion_mnist_instead_of_figures():
    assert NEEDS_FASHION_MNIST == NEEDS_LINE
    text = report.render(tiny_results())
    b = text[text.index("## B"):text.index("## C")]
    assert f"> {NEEDS_LINE}" in b
    assert "**" not in b and "| ratio | — | ≥ 20 × | — not measured |" in b  # no figures, its target not measured
    assert "| B | ratio | — | ≥ 20 × | — not measured |" in text
    c = text[text.index("## C"):]
    assert f"> Fashion-MNIST × seed CNN: {NEEDS_LINE}" in c and "**digits**" in c  # the rest still measured
    assert "- Not measured in this run: B; C (Fashion-MNIST × seed CNN)" in text


def test_render_of_a_subset_says_it_holds_only_those():
    results = tiny_results(only=["a", "fashion_only", "partly"])
    text = report.render(results)
    assert "- Sections: **only a, fashion_only, partly** (`--only`); the suite's other sections (other) were not run" \
        in text


def test_fashion_mnist_check_is_the_engines(tmp_path, monkeypatch):
    """The suite asks the engine's own locator: an env folder without the IDX files means absent."""
    from benchmarks.common import fashion_mnist_available, fashion_mnist_dir
    from compression.inputs.builtin_datasets import FASHION_MNIST_ENV, IDX_FILES

    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path))
    assert fashion_mnist_dir() is None and not fashion_mnist_available()
    for stem in IDX_FILES.values():
        (tmp_path / f"{stem}.gz").write_bytes(b"")
    assert fashion_mnist_dir() == tmp_path


def test_every_registered_benchmark_is_a_section_module():
    from benchmarks.__main__ import BENCHMARKS

    assert {"search", "ray", "time_to_result_cache", "lessons"} <= set(BENCHMARKS)
    for name, module in BENCHMARKS.items():
        assert callable(module.run) and module.TITLE, name
    titles = [m.TITLE for m in BENCHMARKS.values()]
    assert len(set(titles)) == len(titles)


def test_target_direction():
    assert target("x", 3.0, 2.0, higher_is_better=True)["met"] is True
    assert target("x", 3.0, 2.0)["met"] is False
    assert target("x", float("nan"), 2.0)["met"] is None


def test_fmt():
    assert fmt(None) == "—"
    assert fmt(1234567) == "1 234 567"
    assert fmt(0.5) == "0.5"
    assert fmt(0.77051) == "0.7705"
    assert fmt(-0.0001) == "-0.0001"
    assert fmt(True) == "yes"


def test_entropy_helpers():
    assert binary_entropy(0.5) == pytest.approx(1.0)
    assert binary_entropy(0.0) == 0.0 and binary_entropy(1.0) == 0.0
    assert empirical_entropy_bits(np.array([1, 1, 2, 2], dtype=np.int8)) == pytest.approx(4.0)
    assert empirical_entropy_bits(np.array([3, 3, 3], dtype=np.int8)) == 0.0
    assert empirical_entropy_bits(np.array([], dtype=np.int8)) == 0.0
    assert binary_entropy(0.1) == pytest.approx(-(0.1 * math.log2(0.1) + 0.9 * math.log2(0.9)))


def test_pareto_and_choice():
    rows = [{"name": "a", "gzip_bytes": 100, "accuracy": 0.80, "delta_accuracy": -5.0},
            {"name": "b", "gzip_bytes": 200, "accuracy": 0.84, "delta_accuracy": -0.9},
            {"name": "c", "gzip_bytes": 300, "accuracy": 0.83, "delta_accuracy": -1.5},
            {"name": "d", "gzip_bytes": 400, "accuracy": 0.85, "delta_accuracy": 0.1}]
    assert [r["name"] for r in pareto(rows)] == ["a", "b", "d"]
    assert choose(rows)["name"] == "b"
    assert choose(rows[:1]) is None


@pytest.mark.parametrize("settings", [FULL, QUICK])
def test_sweep_is_a_valid_recipe(settings):
    from compression.config import MAX_VARIANTS, Recipe

    variants = sweep_variants(settings)
    recipe = Recipe.from_dict({"dataset": {"name": "digits"}, "variants": variants})
    assert len(recipe.variants) <= MAX_VARIANTS
    Recipe.from_dict({"dataset": {"name": "digits"}, "variants": push_variants(settings)})
    pcqat = [v for v in recipe.variants if v.pruning and v.clustering and v.qat]
    assert pcqat and all(v.quantization.value == "int8" for v in pcqat)


def test_experiment_e_and_app_recipes_validate():
    from benchmarks.app_render import N_VARIANTS, fifty_variants
    from benchmarks.experiment_e import e_variants
    from compression.config import Recipe

    assert len(Recipe.from_dict({"variants": e_variants(2)}).variants) == 11
    assert len(Recipe.from_dict({"variants": fifty_variants()}).variants) == N_VARIANTS


def test_paired_runs_swap_the_order_and_account_child_cpu(tmp_path):
    """paired_runs times whole processes, A B then B A; CPU comes from the children's accounting."""
    import sys

    from benchmarks.common import paired_runs, timed_process

    log = tmp_path / "runs.log"
    spin = [sys.executable, "-c", "import time\nt=time.process_time()\nwhile time.process_time()-t<0.3: pass\n"
            "print('spun')"]
    idle = [sys.executable, "-c", "print('idle')"]
    out = paired_runs(spin, idle, 2, log=log)
    assert [p["order"] for p in out["pairs"]] == ["AB", "BA"]
    assert out["A cpu s"]["min"] >= 0.3 > out["B cpu s"]["max"]
    assert out["A/B cpu"]["min"] > 1
    assert log.read_text().count("spun") == 2 and log.read_text().count("idle") == 2
    wall, cpu = timed_process(spin)
    assert wall >= cpu * 0.5 and cpu >= 0.3
    with pytest.raises(RuntimeError, match="exited 3"):
        timed_process([sys.executable, "-c", "raise SystemExit(3)"])
