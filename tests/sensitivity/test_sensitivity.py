"""``nxm-deploy sensitivity`` on a tiny random BERT dense run and real RTE training rows: one row per
layer and per kind, finite drops, a ranking, an exclude list that ``train --exclude`` takes and whose
measured drop is within the budget, the FLOPs share, the JSON and its plot, the CLI.

The tiny model's weights are drawn wide (``initializer_range=0.5``) so that its predictions vary
from row to row and pruning a layer moves them; seed 2 makes its 2:4 model lose points on these rows.
"""

from __future__ import annotations

import csv
import json
import math
import shlex
from pathlib import Path

import pytest
import torch
from conftest import make_tiny_model, write_run_dir

from nxm_deploy import nm
from nxm_deploy.cli import main
from nxm_deploy.manifest import SensitivityManifest
from nxm_deploy.models import load_model, select_layers
from nxm_deploy.sensitivity import SensitivityConfig, sensitivity
from nxm_deploy.sensitivity.layers import pruned

ROWS = 128
KINDS = ["query", "key", "value", "attention output", "FFN in", "FFN out"]


@pytest.fixture(scope="module")
def dense_run(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("sensitivity") / "dense"
    out.mkdir()
    model = make_tiny_model("bert", seed=2, initializer_range=0.5)
    return write_run_dir(out, model, minilm_dir, sparse=False, max_seq_len=64)


@pytest.fixture(scope="module")
def result(dense_run: Path, glue_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("sensitivity-out") / "rte-sensitivity.json"
    cfg = SensitivityConfig(run_dir=dense_run, out=out, data_dir=glue_dir, rows=ROWS, budget=0.0)
    return sensitivity(cfg)


def test_one_row_per_layer_and_per_kind(result, dense_run: Path) -> None:
    r = result.report
    model, _ = load_model(dense_run)
    names = select_layers(model, "2:4")  # what train would make 2:4
    assert [row["name"] for row in r["layers"]] == names
    assert len(names) == 12  # 2 blocks x 6 kinds
    assert [k["label"] for k in r["kinds"]] == KINDS
    assert all(k["layers"] == 2 for k in r["kinds"])
    assert sorted({row["block"] for row in r["layers"]}) == [0, 1]
    drops = [row["drop"] for row in r["layers"]] + [k["drop"] for k in r["kinds"]]
    assert all(math.isfinite(d) for d in drops)
    assert any(d != 0 for d in drops)  # pruning moved the metric: the measurement is real
    assert [x["drop"] for x in r["ranking"]] == sorted((row["drop"] for row in r["layers"]), reverse=True)


def test_rows_are_training_rows_drawn_with_the_seed(result) -> None:
    r = result.report
    assert r["rows"]["split"] == "train" and r["rows"]["rows"] == ROWS and r["seed"] == 0
    assert r["rows"]["source"].endswith("RTE/train.tsv")
    assert r["task"] == "RTE" and r["metric"] == "accuracy" and 0 <= r["baseline"] <= 100


def test_exclude_list_keeps_the_measured_drop_within_budget(result, dense_run: Path) -> None:
    r = result.report
    assert r["combined_drop"] <= r["budget"] == 0.0
    steps = r["greedy"]
    assert steps[0]["excluded"] == [] and steps[-1]["excluded"] == r["exclude"]
    assert all(s["drop"] > r["budget"] for s in steps[:-1])  # it stopped at the first step within budget
    assert r["exclude"] == [x["name"] for x in r["ranking"][: len(r["exclude"])]]  # most sensitive first
    assert r["exclude"], "seed 2's tiny model needs at least one layer kept dense"
    # train --exclude takes the printed options as they are; they leave exactly the kept layers
    args = shlex.split(r["train_exclude"])
    assert args[0::2] == ["--exclude"] * len(r["exclude"]) and args[1::2] == r["exclude"]
    model, _ = load_model(dense_run)
    kept = select_layers(model, "2:4", exclude=args[1::2])
    assert kept == [row["name"] for row in r["layers"] if row["name"] not in r["exclude"]]
    # FLOPs share: in x out of the kept layers over every linear of the encoder blocks
    macs = {row["name"]: row["macs_per_token"] for row in r["layers"]}
    assert r["flops_share"] == pytest.approx(sum(macs[n] for n in kept) / sum(macs.values()), abs=1e-6)
    assert 0 < r["flops_share"] < r["flops_share_all_nm"] == 1.0


def test_json_and_plot_are_written(result) -> None:
    assert result.out.is_file() and result.plot.is_file()
    assert result.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    body = json.loads(result.out.read_text(encoding="utf-8"))
    assert body["plot"] == result.plot.name and result.plot.parent == result.out.parent
    assert body["kind"] == "nxm-deploy/sensitivity" and body["pattern"] == "2:4"
    assert body["config"]["rows"] == ROWS and body["tool_version"] and body["created"] and body["command"]
    assert body["exclude"] == result.report["exclude"]
    typed = SensitivityManifest.read(result.out)  # the typed reader keeps every key
    assert typed.to_json() == body and list(typed.exclude) == body["exclude"]


def test_pruning_is_undone_exactly(dense_run: Path) -> None:
    model, _ = load_model(dense_run)
    names = select_layers(model, "2:4")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    mods = dict(model.named_modules())
    with pruned(model, names[:2], "2:4"):
        assert nm.check(mods[names[0]].weight, "2:4", axis=1).ok
        assert not nm.check(mods[names[2]].weight, "2:4", axis=1).ok  # the others stay dense
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())


def test_cli(dense_run: Path, glue_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.json"
    args = ["sensitivity", str(dense_run), "--out", str(out), "--data-dir", str(glue_dir), "--rows", "64",
            "--budget", "100"]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 0
    captured = capsys.readouterr()
    assert f"sensitivity written to {out}" in captured.out
    assert "exclude 0 of 12 layers" in captured.out and "100.0% of encoder linear FLOPs" in captured.out
    assert "[nxm-deploy] layer 12/12" in captured.err and "[nxm-deploy] kind 6/6" in captured.err
    assert "task RTE (the run's own)" in captured.err
    body = json.loads(out.read_text(encoding="utf-8"))
    assert body["exclude"] == [] and body["measurements"] == 1 + 12 + 6 + 1
    with pytest.raises(SystemExit) as again:  # an existing --out needs --overwrite
        main(args)
    assert again.value.code == 1 and "already exists; pass --overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit) as replaced:
        main([*args, "--overwrite"])
    assert replaced.value.code == 0


def test_own_data_run_reads_the_data_it_recorded(tmp_path: Path, minilm_dir: Path, glue_dir: Path) -> None:
    from nxm_deploy.data import load_split
    from nxm_deploy.data.own import DataOptions, load_own

    sst = load_split("sst2", "train", glue_dir).select(80)
    data = tmp_path / "reviews.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["review", "verdict"])
        w.writerows([a, ["thumbs-down", "thumbs-up"][y]] for a, _, y in sst.rows())
    options = DataOptions(str(data), text_column="review", label_column="verdict", validation_fraction=0.25)
    run = write_run_dir(
        tmp_path / "own", make_tiny_model("bert", seed=2), minilm_dir, sparse=False, max_seq_len=64
    )
    manifest = json.loads((run / "nxm.json").read_text(encoding="utf-8"))
    manifest.update(task="data:reviews.csv", dataset=load_own(options).record)
    (run / "nxm.json").write_text(json.dumps(manifest), encoding="utf-8")
    r = sensitivity(SensitivityConfig(run_dir=run, out=tmp_path / "s.json", rows=1000, budget=100.0)).report
    assert r["task"] == "data:reviews.csv" and r["rows"]["source"].endswith("reviews.csv")
    assert (
        r["rows"]["rows"] == r["rows"]["of_train_rows"] == 60
    )  # all 60 training rows; the 20 held out never
    assert len(r["layers"]) == 12 and len(r["kinds"]) == 6


def test_rows_the_run_did_not_train_on_score_out_of_sample(
    dense_run: Path, glue_dir: Path, tmp_path: Path
) -> None:
    """A run trained on a subset is scored on training rows outside it (out of sample), labelled so;
    a run trained on every row is scored in sample and says so, and "unseen" is then refused."""
    import shutil

    from nxm_deploy.data import get_task, load_split
    from nxm_deploy.data.encode import rows_fingerprint, subset_indices
    from nxm_deploy.errors import UserError
    from nxm_deploy.manifest import RunManifest
    from nxm_deploy.sensitivity.rows import training_rows

    subset_run = tmp_path / "subset"
    shutil.copytree(dense_run, subset_run)
    manifest = json.loads((subset_run / "nxm.json").read_text())
    train = load_split(get_task("RTE"), "train", str(glue_dir))
    idx = subset_indices(len(train), 2000)
    trained = {train.texts_a[i] + "\t" + train.texts_b[i] for i in idx}
    manifest["hyperparameters"] = {"max_train_samples": 2000}  # as train records them
    sha = rows_fingerprint([train.texts_a[i] for i in idx], [train.texts_b[i] for i in idx],
                           [train.labels[i] for i in idx])  # fmt: skip
    manifest["data"] = {**manifest.get("data", {}), "train_sha256": sha}
    (subset_run / "nxm.json").write_text(json.dumps(manifest))

    cfg = SensitivityConfig(run_dir=subset_run, out=tmp_path / "s.json", data_dir=glue_dir, rows=ROWS)
    _, rows = training_rows(cfg, RunManifest.read(subset_run))
    assert len(rows.texts_a) == ROWS and rows.to_json()["in_sample"] is False
    drawn = {a + "\t" + b for a, b in zip(rows.texts_a, rows.texts_b or [], strict=True)}
    assert not drawn & trained  # none of them did the run see

    manifest["data"]["train_sha256"] = "0" * 64  # the training file changed since: no proof of what it saw
    (subset_run / "nxm.json").write_text(json.dumps(manifest))
    _, rows_changed = training_rows(cfg, RunManifest.read(subset_run))
    assert rows_changed.to_json()["in_sample"] is True

    cfg_all = SensitivityConfig(run_dir=dense_run, out=tmp_path / "a.json", data_dir=glue_dir, rows=ROWS)
    _, rows_all = training_rows(cfg_all, RunManifest.read(dense_run))
    assert rows_all.to_json()["in_sample"] is True and rows_all.to_json()["rows_from"] == "train"
    unseen = SensitivityConfig(
        run_dir=dense_run, out=tmp_path / "u.json", data_dir=glue_dir, rows_from="unseen"
    )
    with pytest.raises(UserError, match="none is known to be unseen"):
        training_rows(unseen, RunManifest.read(dense_run))
