"""benchmarks/glue_methods.py's aggregation (glue_methods_report.py): per-seed averages and paired
(task, seed) differences. benchmarks/ is on pytest's ``pythonpath``, as on a script's own path."""

from __future__ import annotations

import glue_methods
import glue_methods_report as gmr


def entry(values: dict[int, float]) -> dict:
    return {"metric": "x", "seeds": list(values), "values": list(values.values())}


def test_per_seed_average_uses_only_seeds_that_every_task_has():
    tasks = {
        "A": {"admm": entry({1: 60.0, 2: 70.0}), "asp": entry({1: 50.0})},
        "B": {"admm": entry({2: 80.0, 1: 40.0}), "asp": entry({1: 52.0, 2: 54.0})},
    }
    out = gmr.per_seed_average(tasks, ("A", "B"), glue_methods.METHODS)
    assert out["admm"] == {"1": 50.0, "2": 75.0}  # seeds matched by number, not by position
    assert out["asp"] == {"1": 51.0}  # seed 2 is missing on task A
    assert "dense" not in out


def test_paired_compares_the_same_task_and_seed():
    tasks = {
        "A": {"admm": entry({1: 60.0, 2: 70.0}), "asp": entry({2: 71.0, 1: 58.0})},
        "B": {"admm": entry({1: 40.0}), "asp": entry({1: 41.0, 2: 99.0})},  # B seed 2: asp only
    }
    out = gmr.paired(tasks, "admm", ("asp", "oneshot"))
    assert out == {"asp": {"pairs": 3, "wins": 1, "mean": round((2 - 1 - 1) / 3, 2), "min": -1.0, "max": 2.0}}
