"""benchmarks/glue_study.py: the methods as train options, the stratified bootstrap, the report (JSON,
doc section, targets) built from result files, the base profile, the random-layer control, and (slow)
the smoke profile's real tiny runs: dense_long from the P1 dense run, the SparseGPT and Wanda prunes,
dev predictions and the per-example tests.

benchmarks/ is on pytest's ``pythonpath`` (pyproject.toml), as it is first on a script's own path."""

from __future__ import annotations

import json
from types import ModuleType

import glue_study
import glue_study_report
import glue_study_runs
import glue_study_setup as setup
import glue_study_stats
import pytest

from nxm_deploy import origin


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
    assert p2["paired"]["asp"]["mean"] == 4.5 and p2["paired"]["asp"]["ci95_t"][0] > 0
    assert p2["p1_dense"] == 81.5 and p2["of_dense_long"] == {}  # no dense_long yet
    assert p2["three_tasks"]["average"] == {"asp": 75.0, "asp_admm_prune": 79.5}  # MRPC only
    # targets: not yet measured while dense_long and the free_* prunes are missing
    assert {k: t["met"] for k, t in data["targets"].items() if k != "date"} == {
        "chosen_over_dense_long": None, "chosen_minus_asp": True, "chosen_minus_asp_three_tasks": True,
        "free_admm_vs_free_sparsegpt": None}  # fmt: skip
    assert "- `chosen_over_dense_long`: P2: the chosen recipe >= 99.0% of dense_long" in doc
    assert p2["prune"]["RTE"]["asp"] == {"start": 81.5, "before_prune": 81.5, "final": 75.0}
    assert json.loads((tmp_path / "s.json").read_text())["protocols"]["P2"]["average"]["asp"] == 75.0
    doc = (tmp_path / "RESULTS.md").read_text()
    assert doc.count("<!-- glue_study:begin -->") == 1 and "after" in doc and "before" in doc
    assert "not met, missed by" in doc and "| asp | 4 | 4 | +4.50 |" in doc
    lc = data["layer_choice"]  # FFN only: 12 of MiniLM's 36 linears, 2/3 of their FLOPs
    keys = ("average", "flops_share", "tasks", "average_over_seeds")
    assert {k: lc["ffn_only"]["asp"][k] for k in keys} == {
        "average": 77.0, "flops_share": 0.666667, "tasks": {"MRPC": 77.0, "RTE": 77.0},
        "average_over_seeds": None}  # fmt: skip
    assert lc["targets"]["ffn_only_asp_over_dense"]["value"] == round(77.0 / 81.0, 4)
    # per task, seed 1: P1 dense, all linears (the chosen P2 recipe, asp), FFN only, sensitivity (none yet)
    assert "| RTE | 81.00 | 79.00 | 75.00 | – | 77.00 | – | – | – |" in doc


def test_a_result_reused_from_the_first_study_is_not_counted(gs, tmp_path, monkeypatch):
    monkeypatch.setattr(setup, "tuning", lambda: TUNING)
    monkeypatch.setattr(glue_study_report, "_plots", lambda lay, data: [])
    profile = gs.Profile("test", ("RTE",), (1,))
    lay = gs.Layout(tmp_path / "r", tmp_path / "w", tmp_path / "s.json", tmp_path / "RESULTS.md", tmp_path)
    write(gs, lay, profile, "P1", "RTE", "asp", 1, 70.0)
    write(gs, lay, profile, "P1", "RTE", "dense", 1, 80.0)
    path = gs.result_path(lay, "P1", "RTE", "dense", 1)
    r = json.loads(path.read_text())
    gs.save(path, {**r, "reused_from": "benchmarks/results/glue_methods/full/RTE/dense-seed1.json"})
    p1 = gs.report(profile, lay)["protocols"]["P1"]
    assert "dense" not in p1["tasks"]["RTE"] and "RTE dense seed 1" in p1["missing"] and not p1["complete"]
    assert setup.current(path, gs.config(profile, "P1", "RTE", "dense", 1)) is None
    assert "RTE asp seed 1" in p1["without_predictions"]


def test_p2_methods_seeds_and_budgets(gs, monkeypatch):
    monkeypatch.setattr(setup, "tuning", lambda: TUNING)
    full = gs.PROFILES["full"]

    def opts(method):
        return gs.canonical(gs.method_args(full, "P2", "RTE", method, 1))

    assert opts("dense_long")["--method"] == "dense" and opts("dense_long")["--epochs"] == 6.0
    assert (
        opts("free_sparsegpt")["--prune-solver"] == "sparsegpt" and opts("free_sparsegpt")["--epochs"] == 3.0
    )
    assert "--prune-solver" not in opts("free_magnitude") and opts("free_magnitude")["--epochs"] == 3.0
    assert opts("wanda_ft")["--method"] == "asp" and opts("wanda_ft")["--epochs"] == 6.0
    assert full.seeds_of("P2", "asp_admm_prune") == (1, 2, 3, 4, 5)  # the chosen recipe
    assert full.seeds_of("P2", "srste") == (1, 2, 3) and full.seeds_of("P1", "asp") == (1, 2, 3)
    plan = glue_study.plan(full, ["P2"], ["RTE"], [4], None)
    five = {"dense_long", "asp", "asp_admm_prune", "free_admm", "free_sparsegpt", "free_wanda",
            "sparsegpt_ft", "wanda_ft"}  # fmt: skip
    assert {m for _, _, m, _ in plan} == five
    base = gs.PROFILES["base"]
    assert list(setup.methods_of("P2", base)) == ["dense_long", "asp", "asp_admm_prune", "free_magnitude",
                                                  "free_wanda", "free_sparsegpt", "free_admm"]  # fmt: skip
    assert gs.canonical(gs.method_args(base, "P1", "SST-2", "dense", 1))["--lr"] == 2e-5


def test_the_base_profile_needs_a_model_directory_and_reports_with_no_results(gs, tmp_path, capsys):
    for argv in (["--profile", "base"], ["--profile", "base", "--model", str(tmp_path / "none")]):
        with pytest.raises(SystemExit) as e:
            glue_study.main([*argv, "--protocols", "P1,P2", "--tasks", "SST-2", "--seeds", "1"])
        assert "\n" not in str(e.value) and "python scripts/fetch_base_model.py --out DIR" in str(e.value)
    base = gs.PROFILES["base"]
    lay = gs.Layout(tmp_path / "r", tmp_path / "w", tmp_path / "study.json", None, tmp_path / "plots")
    data = gs.report(base, lay)
    assert data["protocols"]["P2"]["tasks"] == {} and data["targets"]["chosen_over_dense_long"]["met"] is None
    assert (tmp_path / "study.json").is_file() and not (tmp_path / "plots").exists()
    assert gs.Layout.of(base).json.relative_to(setup.runs.RESULTS).as_posix() == "base_size/study.json"


def test_the_random_layer_control_draws_the_flop_share_of_its_choice():
    from glue_study_layers import _layers, random_choice

    model = setup.runs.model_path()
    layers, total = _layers(model)
    biggest = max(m for _, m in layers) / total
    for share, seed in ((0.666667, 1), (0.8, 2), (0.35, 3)):
        r = random_choice(model, share, seed)
        assert abs(r["flops_share"] - share) <= biggest, (share, r["flops_share"])
        assert len(r["drawn"]) + len(r["exclude"]) == len(layers) and r["draw_seed"] == 1000 + seed
        assert random_choice(model, share, seed) == r  # a fixed draw
    assert random_choice(model, 0.5, 1)["drawn"] != random_choice(model, 0.5, 2)["drawn"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke profile's real tiny runs (RTE, 64 rows, 0.2 epochs) into a temporary layout: P1 dense,
    then dense_long and the training-free ADMM, SparseGPT and Wanda prunes from it."""
    root = tmp_path_factory.mktemp("smoke")
    profile = glue_study.PROFILES["smoke"]
    lay = glue_study.Layout(root / "results", root / "work", root / "s.json", root / "RESULTS.md", root)
    glue = setup.runs.data_dir(None)
    methods = ["dense", "dense_long", "free_admm", "free_sparsegpt", "free_wanda"]
    mp = pytest.MonkeyPatch()
    mp.setattr(glue_study_report, "_plots", lambda lay, data: [])
    try:
        glue_study.study(profile, lay, glue, ["P1", "P2"], ["RTE"], [1], methods, None, "/nonexistent")
        data = glue_study.report(profile, lay)
    finally:
        mp.undo()
    return profile, lay, data


@pytest.mark.slow
def test_smoke_dense_long_and_the_solvers(smoke):
    _, lay, data = smoke
    dense_long = json.loads(setup.result_path(lay, "P2", "RTE", "dense_long", 1).read_text())
    assert dense_long["init_from"]["epochs"] == 0.2 and dense_long["epochs_total"] == 0.4
    assert [p["epochs"] for p in dense_long["phases"]] == [0.2]  # 0.2 more epochs, dense
    assert dense_long["init_from"]["run"].endswith("P1/RTE/dense-seed1")
    for solver in ("sparsegpt", "wanda", "admm"):
        r = json.loads(setup.result_path(lay, "P2", "RTE", f"free_{solver}", 1).read_text())
        assert r["prune"]["solver"] == solver and r["layers"] == 36
        assert r["peak_rss_mib"] > 100 and r["provenance"]["tool_version"] and r["provenance"]["command"]
        assert setup.predictions_path(lay, "P2", "RTE", f"free_{solver}", 1).is_file()
    assert data["protocols"]["P2"]["of_dense_long"]["free_admm"] > 0


@pytest.mark.slow
def test_smoke_predictions_and_the_mcnemar_block(smoke):
    from nxm_deploy.admm.predictions import read_predictions

    _, lay, data = smoke
    rows = read_predictions(setup.predictions_path(lay, "P1", "RTE", "dense", 1))["dev"]
    assert len(rows.index) == 32  # the smoke's dev cap
    ex = data["examples"]["free_admm-free_sparsegpt"]["RTE"]
    assert (
        ex["per_seed"]["1"]["test"] == "exact McNemar (correct or not)"
        and ex["per_seed"]["1"]["examples"] == 32
    )
    assert ex["pooled"]["label"] == "pooled over seeds (pairs not independent)"
    assert data["examples"]["asp_admm_prune-asp"]["RTE"]["per_seed"] == {"1": "missing"}
    assert "### Per-example tests" in lay.doc.read_text()
    met = {k: t["met"] for k, t in data["targets"].items() if k != "date"}
    assert met.pop("free_admm_vs_free_sparsegpt") in (True, False)  # both there: measured
    assert set(met.values()) == {None}  # asp, the chosen recipe and dense_long's pairs missing


@pytest.mark.slow
def test_a_dev_pass_of_a_kept_run_gives_its_own_predictions(smoke, tmp_path):
    """common.predict, for P1 dense runs made before runs kept predictions: on a run that kept them,
    one dev pass of its saved weights writes the same predictions."""
    from common.predict import predict_run

    from nxm_deploy.admm.predictions import read_predictions

    _, lay, _ = smoke
    run = setup.run_dir(lay, "P1", "RTE", "dense", 1)
    out = predict_run(run, setup.runs.data_dir(None), tmp_path / "again.tsv")
    kept, again = read_predictions(run)["dev"], read_predictions(out)["dev"]
    assert (kept.label == again.label).all() and (kept.prediction == again.prediction).mean() >= 0.97


@pytest.mark.slow
def test_a_p2_result_from_other_p1_weights_is_trained_again_from_those_on_disk(smoke, tmp_path):
    """Every P2 method of a (task, seed) must continue the same P1 dense weights. A P1 run retrained
    since a P2 result was made (on a CPU another thread count gives another value) makes that result
    stale: it is trained again from the run on disk, the old value kept as ``earlier``."""
    import shutil

    profile, lay, _ = smoke
    new = glue_study.Layout(tmp_path / "results", tmp_path / "work", tmp_path / "s.json", None, tmp_path)
    shutil.copytree(lay.results, new.results)
    shutil.copytree(lay.work, new.work)
    glue = setup.runs.data_dir(None)
    p1 = setup.run_dir(new, "P1", "RTE", "dense", 1) / "nxm.json"
    old = json.loads(setup.result_path(new, "P2", "RTE", "dense_long", 1).read_text())
    assert old["start_created"] == json.loads(p1.read_text())["created"]
    assert glue_study._complete(profile, new, glue, "P2", "RTE", "dense_long", 1) == (True, None)

    man = json.loads(p1.read_text())  # what a retraining that gave another value leaves on disk
    man["created"], man["metrics"]["accuracy"] = (
        "2099-01-01T00:00:00+00:00",
        man["metrics"]["accuracy"] + 0.01,
    )
    p1.write_text(json.dumps(man))
    for method in ("dense_long", "free_admm"):
        done, earlier = glue_study._complete(profile, new, glue, "P2", "RTE", method, 1)
        assert not done and earlier["same_config"] is False and "those on disk give" in earlier["note"]
    glue_study.study(profile, new, glue, ["P2"], ["RTE"], [1], ["dense_long"], None, "/nonexistent")
    again = json.loads(setup.result_path(new, "P2", "RTE", "dense_long", 1).read_text())
    assert again["start_created"] == man["created"] and again["start_value"] == round(
        100 * man["metrics"]["accuracy"], 2
    )
    assert again["earlier"]["value"] == old["value"] and again["earlier"]["start_value"] == old["start_value"]
    assert glue_study._complete(profile, new, glue, "P2", "RTE", "dense_long", 1) == (True, None)


@pytest.mark.slow
def test_kept_p2_results_from_two_starts_and_no_p1_run_on_disk_retrain_it_first(smoke, tmp_path):
    """The run directories can go while the results stay (a new checkout). When the kept P2 results
    of a (task, seed) then record two different P1 starts, nothing on disk tells which are stale:
    the study trains the P1 run again first, and the results that did not continue it are stale."""
    import shutil

    profile, lay, _ = smoke
    new = glue_study.Layout(tmp_path / "results", tmp_path / "work", tmp_path / "s.json", None, tmp_path)
    shutil.copytree(lay.results, new.results)  # the results, and none of the run directories
    glue = setup.runs.data_dir(None)
    assert glue_study._complete(profile, new, glue, "P2", "RTE", "dense_long", 1) == (True, None)
    assert not (setup.run_dir(new, "P1", "RTE", "dense", 1) / "nxm.json").exists()  # one start: kept

    path = setup.result_path(new, "P2", "RTE", "free_admm", 1)
    other = json.loads(path.read_text())
    other["start_value"], other["start_created"] = other["start_value"] + 5.0, "2000-01-01T00:00:00+00:00"
    path.write_text(json.dumps(other))
    start = json.loads(setup.result_path(new, "P2", "RTE", "dense_long", 1).read_text())["start_value"]
    assert glue_study_runs.mixed_starts(profile, new, "RTE", 1) == sorted([start, other["start_value"]])

    assert glue_study._complete(profile, new, glue, "P2", "RTE", "dense_long", 1) == (True, None)
    p1 = json.loads(setup.result_path(new, "P1", "RTE", "dense", 1).read_text())
    assert (setup.run_dir(new, "P1", "RTE", "dense", 1) / "nxm.json").is_file()
    assert p1["reruns"][-1]["value"] == start and p1["reproduces"]  # same thread count: same weights
    assert p1["reruns"][-1]["cpu_id"] == origin.cpu_id() and p1["reruns"][-1]["cpu_isa"]  # and CPU
    done, earlier = glue_study._complete(profile, new, glue, "P2", "RTE", "free_admm", 1)
    assert not done and earlier["start_value"] == other["start_value"] and earlier["same_config"] is False
    assert glue_study_runs.mixed_starts(profile, new, "RTE", 1) == []  # the P1 run on disk tells now


def test_a_kept_sensitivity_scan_that_does_not_say_where_its_rows_came_from_is_scanned_again() -> None:
    # the second edition's SST-2 and CoLA scans scored the dense run's own training rows and did not
    # say so; the layer choice must rest on rows the run did not train on where the task has them
    old = {"rows": {"split": "train", "rows": 1000, "of_train_rows": 8551, "seed": 0}}
    assert not glue_study_runs.scan_says_rows(old) and not glue_study_runs.scan_says_rows({})
    for rows_from, in_sample in (("unseen", False), ("train", True)):
        new = {"rows": {**old["rows"], "rows_from": rows_from, "in_sample": in_sample}}
        assert glue_study_runs.scan_says_rows(new)


def test_reruns_count_the_results_that_give_back_their_recorded_value() -> None:
    # a study retrained by new code says how many of its earlier values came back, and by how much not
    every = [
        {"value": 84.05, "earlier": {"value": 84.05}},
        {"value": 83.90, "earlier": {"value": 83.89}},
        {"value": 60.00, "earlier": {"value": 61.25}},
        {"value": 70.00},
    ]
    assert glue_study_stats.reruns(every) == {"count": 3, "reproduce": 2, "max_abs_diff": 1.25}
    assert glue_study_stats.reruns([{"value": 1.0}]) == {"count": 0, "reproduce": 0, "max_abs_diff": None}
    # a P1 dense run retrained twice over a first-study copy: the copy's value, its reruns and the new
    # value all count against the first; a value made with another config is no rerun
    history = {"value": 55.60, "earlier": {"value": 55.60, "reused_from": "x.json",
                                           "reruns": [{"value": 55.60}, {"value": 55.61}]}}  # fmt: skip
    other = {"value": 70.0, "earlier": {"value": 60.0, "same_config": False}, "reruns": [{"value": 70.5}]}
    assert glue_study_stats.reruns([history, other]) == {"count": 4, "reproduce": 3, "max_abs_diff": 0.5}


def test_a_result_that_is_replaced_stays_on_record_as_earlier(tmp_path) -> None:
    # a first-study copy (or another config) retrained: the new result keeps what it replaces
    path, cfg = tmp_path / "dense-seed1.json", {"train_args": ["--epochs", "3"]}
    assert setup.superseded(path, cfg) is None
    kept = {"value": 83.72, "date": "d", "reused_from": "first.json", "reruns": [{"value": 83.72}]}
    path.write_text(json.dumps(kept | {"config": cfg}))
    assert setup.current(path, cfg) is None  # a copy counts as missing: it is trained again
    assert setup.superseded(path, cfg) == kept | {"same_config": True}
    assert setup.superseded(path, {"train_args": ["--epochs", "6"]})["same_config"] is False


def test_the_base_profile_keeps_the_run_its_chain_exports() -> None:
    # base_size.py exports the chosen P2 run after the study recorded it: the study must not remove it
    base, full, chosen = setup.PROFILES["base"], setup.PROFILES["full"], setup.chosen_of("P2")
    assert chosen is not None
    assert base.keeps("P2", chosen) and base.keeps("P1", "dense") and not base.keeps("P2", "asp")
    assert full.keeps("P1", "dense") and not full.keeps("P2", chosen)
