"""benchmarks/glue_study.py without training: reuse of the first study, the stratified bootstrap,
and the report (JSON, doc section) built from synthetic result files.

benchmarks/ is on pytest's ``pythonpath`` (pyproject.toml), as it is first on a script's own path."""

from __future__ import annotations

import json
from types import ModuleType

import glue_study
import glue_study_report
import glue_study_setup as setup
import glue_study_stats
import pytest


@pytest.fixture(scope="module")
def gs() -> ModuleType:
    return glue_study


TUNING = {
    "settings": {
        "admm decoupled rho100 x1.3 every32": {
            "args": "--method admm --admm-penalty decoupled --rho-max 1e4 --rho 100".split()
        },
        "ft: asp, admm prune": {"args": "--method asp --prune-solver admm".split()},
    },
    "default_recipe": {
        "pretrained": {"winner": "admm decoupled rho100 x1.3 every32"},
        "fine-tuned": {"winner": "ft: asp, admm prune"},
    },
}


def entry(values: dict[int, float]) -> dict:
    return {"metric": "x", "seeds": list(values), "values": list(values.values())}


def test_first_study_results_are_reused_only_when_their_options_match(gs):
    old = {"task": "RTE", "method": "dense", "teacher": None, "seed": 1, "epochs": 3.0,
           "max_train_samples": None, "lr": 0.0001, "batch_size": 32, "max_seq_len": 128,
           "pattern": "2:4", "train_args": ["--rho", "1e-4"]}  # fmt: skip
    full = gs.PROFILES["full"]
    for method in ("dense", "oneshot", "asp"):
        cfg = {**old, "method": method}
        new = gs.method_args(full, "P1", "RTE", method, 1)
        assert gs.canonical(setup.first_study_args(cfg)) == gs.canonical(new), method
    old_admm = setup.first_study_args({**old, "method": "admm"})
    assert gs.canonical(old_admm) != gs.canonical(gs.method_args(full, "P1", "RTE", "admm", 1))
    sst2 = gs.method_args(full, "P1", "SST-2", "asp", 2)
    assert gs.canonical(sst2)["--max-train-samples"] == 5000.0


def test_default_recipe_names_the_listed_method_with_the_same_options(gs, monkeypatch):
    monkeypatch.setattr(setup, "tuning", lambda: TUNING)
    assert setup.chosen_of("P1") == "admm"  # the same options as P1's admm, in another order
    assert setup.chosen_of("P2") == "asp_admm_prune"
    p2 = gs.canonical(gs.method_args(gs.PROFILES["full"], "P2", "RTE", "free_admm", 1))
    assert p2["--epochs"] == 3.0  # training-free: no epochs beyond the dense run's
    monkeypatch.setattr(setup, "tuning", lambda: {})
    assert setup.chosen_of("P1") is None
    assert gs.method_args(gs.PROFILES["full"], "P1", "RTE", "default", 1) is None


def test_bootstrap_is_stratified_by_task(gs):
    # every pair of task A differs by 1 and of task B by 3: resampling within tasks keeps the mean at 2
    tasks = {
        "A": {"c": entry({1: 61.0, 2: 71.0, 3: 51.0}), "o": entry({1: 60.0, 2: 70.0, 3: 50.0})},
        "B": {"c": entry({1: 43.0, 2: 53.0, 3: 63.0}), "o": entry({1: 40.0, 2: 50.0, 3: 60.0})},
    }
    out = glue_study_stats.paired(tasks, "c", ["o", "missing"])
    assert out == {
        "o": {"mean": 2.0, "ci95": [2.0, 2.0], "ci95_t": [2.0, 2.0], "df": None, "wins": 6, "pairs": 6}
    }
    tasks["A"]["c"] = entry({1: 65.0, 2: 68.0, 3: 52.0})  # differences 5, -2, 2
    a, b = glue_study_stats.paired(tasks, "c", ["o"])["o"], glue_study_stats.paired(tasks, "c", ["o"])["o"]
    assert a == b  # fixed seed
    assert a["ci95"][0] < a["mean"] < a["ci95"][1] and a["wins"] == 5
    assert a["ci95_t"][0] < a["ci95"][0] and a["ci95_t"][1] > a["ci95"][1]  # few pairs: the t is wider


def test_no_interval_while_a_task_has_one_pair(gs):
    # one seed per task so far: resampling within each task always draws the same pair, so the
    # "interval" would be a point; it is withheld (and with it the interval target) until seed 2
    tasks = {
        "A": {"c": entry({1: 61.0}), "o": entry({1: 60.0})},
        "B": {"c": entry({1: 43.0, 2: 50.0}), "o": entry({1: 40.0, 2: 52.0})},
    }
    expected = {"mean": 0.67, "ci95": None, "ci95_t": None, "df": None, "wins": 2, "pairs": 3}
    assert glue_study_stats.paired(tasks, "c", ["o"]) == {"o": expected}


def write(gs, lay, profile, protocol, task, method, seed, value, phases=None, start=None):
    r = {"protocol": protocol, "task": task, "method": method, "seed": seed, "metric": gs.METRIC[task],
         "value": value, "phases": phases or [], "config": gs.config(profile, protocol, task, method, seed),
         "wall_time_s": 10, "date": "2026-12-02T00:00:00"}  # fmt: skip
    if start is not None:
        r["start_value"] = start
    gs.save(gs.result_path(lay, protocol, task, method, seed), r)


def test_report_from_result_files(gs, tmp_path, monkeypatch):
    monkeypatch.setattr(setup, "tuning", lambda: TUNING)
    # matplotlib: the smoke run draws them
    monkeypatch.setattr(glue_study_report, "_plots", lambda lay, data: [])
    profile = gs.Profile("test", ("MRPC", "RTE"), (1, 2))
    lay = gs.Layout(tmp_path / "r", tmp_path / "w", tmp_path / "s.json", tmp_path / "RESULTS.md", tmp_path)
    (tmp_path / "RESULTS.md").write_text("# Results\n\nbefore\n\n## INT8 with 2:4\n\nafter\n")
    data = gs.report(profile, lay)  # nothing has run
    assert data["protocols"]["P1"]["tasks"] == {} and data["layer_choice"]["ffn_only"] == {}
    doc = (tmp_path / "RESULTS.md").read_text()
    assert doc.count("Nothing has run yet.") == 3 and doc.index("glue_study:end") < doc.index("## INT8")
    for task in profile.tasks:
        for seed in profile.seeds:
            write(gs, lay, profile, "P1", task, "dense", seed, 80.0 + seed)
            write(gs, lay, profile, "P1", task, "asp", seed, 70.0 + seed)
            write(gs, lay, profile, "P1", task, "admm", seed, 71.0 + seed)
            masked = [{"kind": "masked", "epochs": 3, "metrics": {gs.METRIC[task]: 0.7}}]
            write(gs, lay, profile, "P2", task, "asp", seed, 75.0, masked, start=80.0 + seed)
            write(gs, lay, profile, "P2", task, "asp_admm_prune", seed, 78.0 + seed, masked, 80.0 + seed)
        write(gs, lay, profile, "layers", task, "ffn_only:asp", 1, 77.0)
    data = gs.report(profile, lay)
    assert set(data) >= {"model", "pattern", "date", "machine", "budget", "protocols", "layer_choice"}
    p1, p2 = data["protocols"]["P1"], data["protocols"]["P2"]
    assert p1["chosen"] == "admm" and p2["chosen"] == "asp_admm_prune"
    assert p1["tasks"]["RTE"]["dense"] == {"metric": "accuracy", "values": [81.0, 82.0], "seeds": [1, 2],
                                           "mean": 81.5, "sd": 0.71}  # fmt: skip
    assert p1["average"] == {"dense": 81.5, "asp": 71.5, "admm": 72.5}
    assert p1["per_seed_average"]["admm"] == {"1": 72.0, "2": 73.0}
    assert p1["targets"]["chosen_minus_asp"] == {"value": 1.0, "target": 0.5, "unit": "points", "met": True,
                                                 "missed_by": None}  # fmt: skip
    expected = {"mean": 1.0, "ci95": [1.0, 1.0], "ci95_t": [1.0, 1.0], "df": None, "wins": 4, "pairs": 4}
    assert p1["paired"]["asp"] == expected
    assert p2["paired"]["asp"]["mean"] == 4.5 and p2["targets"]["chosen_minus_asp_ci95_low"]["met"]
    ratio = p2["targets"]["chosen_over_p1_dense"]
    assert ratio["value"] == round(79.5 / 81.5, 4) and not ratio["met"] and ratio["missed_by"] > 0
    assert p2["prune"]["RTE"]["asp"] == {"start": 81.5, "before_prune": 81.5, "final": 75.0}
    assert json.loads((tmp_path / "s.json").read_text())["protocols"]["P2"]["average"]["asp"] == 75.0
    doc = (tmp_path / "RESULTS.md").read_text()
    assert doc.count("<!-- glue_study:begin -->") == 1 and "after" in doc and "before" in doc
    assert "not met, missed by" in doc and "| asp | 4 | 4 | +4.50 |" in doc
    lc = data["layer_choice"]  # FFN only: 12 of MiniLM's 36 linears, 2/3 of their FLOPs
    assert lc["ffn_only"]["asp"] == {
        "average": 77.0,
        "flops_share": 0.666667,
        "tasks": {"MRPC": 77.0, "RTE": 77.0},
    }
    assert lc["targets"]["ffn_only_asp_over_dense"]["value"] == round(77.0 / 81.0, 4)
    # per task, seed 1: P1 dense, all linears (the chosen P2 recipe, asp), FFN only, sensitivity (none yet)
    assert "| RTE | 81.00 | 79.00 | 75.00 | – | 77.00 | – | – | – |" in doc


def test_reuse_copies_a_matching_first_study_result(gs, tmp_path):
    lay = gs.Layout(tmp_path / "r", tmp_path / "w", tmp_path / "s.json", tmp_path / "RESULTS.md", tmp_path)
    full = gs.PROFILES["full"]
    r = gs.reuse_first_study(full, lay, "RTE", "dense", 1)
    assert r["reused_from"] == "benchmarks/results/glue_methods/full/RTE/dense-seed1.json"
    assert gs.load_result(
        gs.result_path(lay, "P1", "RTE", "dense", 1), gs.config(full, "P1", "RTE", "dense", 1)
    )
    assert gs.reuse_first_study(full, lay, "RTE", "admm", 1) is None  # the loss penalty, rho 1e-4
