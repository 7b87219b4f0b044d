"""`nxm-deploy train` end to end on a tiny random BERT and real RTE rows: every method, the run
directory, distillation, --init-from, and one-line errors for bad input."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result
from safetensors.torch import load_file

from nxm_deploy import nm
from nxm_deploy.admm.checkpoints import staging_dir
from nxm_deploy.cli import cli

TOP_LEVEL_ALLOWED = {"config.json", "model.safetensors", "nxm.json", "train_log.jsonl", "predictions.tsv",
                     "tokenizer.json",
                     "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                     ".nxm-files.json"}  # fmt: skip


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def tiny_args(model: Path, glue: Path, out: Path, method: str, *extra: str) -> list[str]:
    return ["train", "--model", str(model), "--task", "rte", "--data-dir", str(glue), "--method", method,
            "--out", str(out), "--epochs", "2", "--max-train-samples", "48", "--max-eval-samples", "24",
            "--batch-size", "8", "--max-seq-len", "32", "--lr", "1e-3",
            *(("--admm-interval", "2") if method == "admm" else ()),
            "--save-steps", "4", "--logging-steps", "2", "--no-progress", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path, glue_dir: Path) -> dict[str, Path]:
    """One run per method (plus the dense one that teaches and initialises the others)."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for method in ("dense", "oneshot", "asp", "admm"):
        out[method] = root / method
        result = run_cli(*tiny_args(tiny_bert_dir, glue_dir, out[method], method))
        assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("method", ["dense", "oneshot", "asp", "admm"])
def test_run_dir_is_checked_and_complete(runs: dict[str, Path], method: str) -> None:
    run = runs[method]
    manifest = json.loads((run / "nxm.json").read_text())
    assert manifest["method"] == method and manifest["task"] == "RTE"
    assert set(manifest["metrics"]) == {"accuracy"} and 0 <= manifest["metrics"]["accuracy"] <= 1
    assert manifest["epochs_total"] == pytest.approx(2)
    assert sum(p["epochs"] for p in manifest["phases"]) == pytest.approx(2)
    assert len(manifest["data"]["train_sha256"]) == 64 and manifest["data"]["train_rows"] == 48
    assert manifest["hyperparameters"]["lr"] == 1e-3 and manifest["wall_time_s"] > 0
    # top level: save_pretrained output, tokenizer, manifest and log only; no pickle, no checkpoints
    assert {p.name for p in run.iterdir()} <= TOP_LEVEL_ALLOWED
    owned = json.loads((run / ".nxm-files.json").read_text())["paths"]  # what --overwrite may delete
    assert set(owned) == {p.name for p in run.iterdir()}
    result = run_cli("check", str(run))
    assert result.exit_code == 0, result.output
    if method == "dense":
        assert manifest["pattern"] is None and manifest["layers"] == []
        assert "dense run" in result.output
    else:
        assert manifest["pattern"] == "2:4" and len(manifest["layers"]) == 12
        assert "all 12 tensors hold 2:4" in result.output


@pytest.mark.parametrize("method", ["dense", "admm"])
def test_kept_dev_predictions_give_the_reported_metric(
    runs: dict[str, Path], glue_dir: Path, method: str
) -> None:
    """predictions.tsv holds one line per dev row in file order, with the gold label from the dev
    file, and its accuracy is the one nxm.json reports: a later per-example test reads the same run."""
    from nxm_deploy.admm.predictions import read_predictions
    from nxm_deploy.data import get_task, load_split

    kept = read_predictions(runs[method])
    assert set(kept) == {"dev"}
    dev = kept["dev"]
    gold = load_split(get_task("RTE"), "dev", str(glue_dir)).labels[:24]
    assert dev.index.tolist() == list(range(24)) and dev.label.tolist() == list(gold)
    manifest = json.loads((runs[method] / "nxm.json").read_text())
    assert dev.correct().mean() == pytest.approx(manifest["metrics"]["accuracy"])


def test_phases_follow_the_method(runs: dict[str, Path]) -> None:
    kinds = {
        m: [p["kind"] for p in json.loads((r / "nxm.json").read_text())["phases"]] for m, r in runs.items()
    }
    assert kinds == {"dense": ["dense"], "oneshot": ["masked"], "asp": ["dense", "masked"],
                     "admm": ["admm", "masked"]}  # fmt: skip


def test_admm_log_has_residuals_every_interval(runs: dict[str, Path]) -> None:
    records = [json.loads(x) for x in (runs["admm"] / "train_log.jsonl").read_text().splitlines()]
    updates = [r for r in records if r.get("event") == "admm_update"]
    # 48 rows / batch 8 = 6 steps per epoch; ADMM phase = 2/3 of 2 epochs = 8 steps; interval 2
    assert [u["step"] for u in updates] == [2, 4, 6, 8]
    assert all(u["primal_residual"] > 0 and u["dual_residual"] >= 0 for u in updates)
    # the default penalty is decoupled, with rho 0.01 / lr (lr 1e-3 here) growing x1.3 per update
    assert [u["rho"] for u in updates] == pytest.approx([10 * 1.3**k for k in range(4)])
    losses = [r for r in records if "loss" in r and r["phase"] == 0]
    assert losses and all("primal_residual" in r and "admm_penalty" not in r for r in losses[1:])


def test_decoupled_penalty_closes_the_gap_before_the_prune(
    runs: dict[str, Path], tiny_bert_dir: Path, glue_dir: Path, tmp_path: Path
) -> None:
    """--admm-penalty decoupled pulls W onto Z after each optimizer step, outside Adam: at the same
    budget the primal residual at the hard prune is clearly smaller than with the penalty in the loss."""
    in_loss = tmp_path / "in-loss"
    result = run_cli(*tiny_args(tiny_bert_dir, glue_dir, in_loss, "admm", "--admm-penalty", "loss"))
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in (in_loss / "train_log.jsonl").read_text().splitlines()]
    assert next(r["rho"] for r in records if r.get("event") == "admm_update") == pytest.approx(1e-4)
    assert any("admm_penalty" in r for r in records)  # the penalty is a term of the loss
    out = tmp_path / "decoupled"
    result = run_cli(*tiny_args(tiny_bert_dir, glue_dir, out, "admm", "--admm-penalty", "decoupled",
                                "--rho", "100", "--rho-max", "1000"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert run_cli("check", str(out)).exit_code == 0
    manifest = json.loads((out / "nxm.json").read_text())
    assert manifest["hyperparameters"]["admm_penalty"] == "decoupled"
    loss_mode = json.loads((in_loss / "nxm.json").read_text())["phases"][0]["primal_residual"]
    decoupled = manifest["phases"][0]["primal_residual"]
    assert decoupled < 0.7 * loss_mode, (decoupled, loss_mode)
    records = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert not any("admm_penalty" in r for r in records)  # nothing added to the loss


def test_oneshot_mask_is_fixed_from_the_pretrained_weights(
    runs: dict[str, Path], tiny_bert_dir: Path
) -> None:
    pre = load_file(str(tiny_bert_dir / "model.safetensors"))
    post = load_file(str(runs["oneshot"] / "model.safetensors"))
    layers = json.loads((runs["oneshot"] / "nxm.json").read_text())["layers"]
    for layer in layers:
        key = f"{layer}.weight"
        keep = nm.mask(pre[key], "2:4", axis=1)
        assert not bool((post[key] != 0)[~keep].any()), f"{layer}: a pruned weight came back"
        assert not torch.equal(post[key], pre[key] * keep), f"{layer}: kept weights were not trained"


def test_distillation_from_a_dense_teacher(runs: dict[str, Path], tiny_bert_dir: Path, glue_dir: Path,
                                           tmp_path: Path) -> None:  # fmt: skip
    out = tmp_path / "kd"
    result = run_cli(*tiny_args(tiny_bert_dir, glue_dir, out, "admm", "--teacher", str(runs["dense"])))
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert any("kd_loss" in r for r in records)
    assert json.loads((out / "nxm.json").read_text())["teacher"] == str(runs["dense"])


def test_asp_init_from_a_dense_run_counts_its_epochs(
    runs: dict[str, Path], glue_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "asp-init"
    args = tiny_args(Path("unused"), glue_dir, out, "asp", "--init-from", str(runs["dense"]), "--epochs", "3")
    args = args[:1] + args[3:]  # drop --model: the dense run names it
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "nxm.json").read_text())
    assert [(p["kind"], p["epochs"]) for p in manifest["phases"]] == [("masked", 1)]
    assert manifest["epochs_total"] == pytest.approx(3) and manifest["init_from"]["epochs"] == 2


# ---- bad input: one line, exit 1, nothing claiming sparsity written ---------------------------


def _one_line_error(result: Result, needle: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [x for x in result.output.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and needle in lines[0], result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (("--task", "nope"), "unknown GLUE task"),
        (("--pattern", "5:4"), "invalid N:M pattern"),
        (("--pattern", "2:7"), "does not fit layer"),
        (("--model", "/no/such/model"), "does not exist"),
        (("--data-dir", "/no/such/glue"), "/no/such/glue"),
        (("--admm-epochs", "5"), "--admm-epochs 5 does not fit the budget"),
    ],
)
def test_bad_input_is_one_line(tiny_bert_dir: Path, glue_dir: Path, tmp_path: Path, change: tuple[str, str],
                               needle: str) -> None:  # fmt: skip
    args = tiny_args(tiny_bert_dir, glue_dir, tmp_path / "run", "admm")
    i = args.index(change[0]) if change[0] in args else None
    if i is None:
        args += list(change)
    else:
        args[i + 1] = change[1]
    _one_line_error(run_cli(*args), needle)
    assert not (tmp_path / "run" / "nxm.json").exists()


def test_unknown_method_is_a_usage_error(tiny_bert_dir: Path, glue_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, tiny_args(tiny_bert_dir, glue_dir, tmp_path / "r", "magic"))
    assert result.exit_code == 2 and "'magic' is not one of" in result.output


def test_teacher_of_another_task_or_label_count(runs: dict[str, Path], tiny_bert_dir: Path, glue_dir: Path,
                                                tmp_path: Path) -> None:  # fmt: skip
    other = tmp_path / "other-task"
    shutil.copytree(runs["dense"], other)
    manifest = json.loads((other / "nxm.json").read_text())
    (other / "nxm.json").write_text(json.dumps({**manifest, "task": "MRPC"}))
    args = tiny_args(tiny_bert_dir, glue_dir, tmp_path / "a", "admm", "--teacher", str(other))
    _one_line_error(run_cli(*args), "was trained on MRPC, not RTE")

    from conftest import make_tiny_model

    three = tmp_path / "three-labels"
    make_tiny_model("bert", num_labels=3).save_pretrained(three)
    shutil.copy(tiny_bert_dir / "tokenizer.json", three)  # the student's tokenizer: only the labels differ
    shutil.copy(tiny_bert_dir / "tokenizer_config.json", three)
    (three / "nxm.json").write_text(json.dumps(manifest))
    args = tiny_args(tiny_bert_dir, glue_dir, tmp_path / "b", "admm", "--teacher", str(three))
    _one_line_error(run_cli(*args), "has 3 labels, the task has 2")


def test_existing_out_is_refused_and_kept(runs: dict[str, Path], tiny_bert_dir: Path, glue_dir: Path) -> None:
    before = (runs["dense"] / "model.safetensors").read_bytes()
    _one_line_error(run_cli(*tiny_args(tiny_bert_dir, glue_dir, runs["dense"], "dense")), "already exists")
    assert (runs["dense"] / "model.safetensors").read_bytes() == before


def test_nonfinite_loss_stops_and_names_the_last_good_checkpoint(tiny_bert_dir: Path, glue_dir: Path,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    out = tmp_path / "nan"
    # rho explodes at each Z/U update until the penalty in the loss overflows float32
    args = tiny_args(tiny_bert_dir, glue_dir, out, "admm", "--admm-penalty", "loss", "--rho", "1e30",
                     "--rho-max", "1e38", "--rho-growth", "1e10", "--save-steps", "2")  # fmt: skip
    result = run_cli(*args)
    _one_line_error(result, "the training loss became inf at step")
    match = re.search(r"Last good checkpoint: (\S+);", result.output)
    assert match, result.output
    good = Path(match.group(1))
    assert good.parent == staging_dir(out) / "checkpoints" / "phase-0-admm" and (good / "COMPLETE").is_file()
    assert not (out / "nxm.json").exists() and not (out / "model.safetensors").exists()


def test_admm_for_the_whole_budget_prunes_at_the_end(
    tiny_bert_dir: Path, glue_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "admm-only"
    result = run_cli(*tiny_args(tiny_bert_dir, glue_dir, out, "admm", "--admm-epochs", "2"))
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "nxm.json").read_text())
    assert [p["kind"] for p in manifest["phases"]] == ["admm", "hard_prune"]
    assert manifest["metrics"] == manifest["phases"][-1]["metrics"]
    assert run_cli("check", str(out)).exit_code == 0


class _MakesADirectory:
    """A pickle that, if it were ever unpickled unsafely, would create a directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        import os

        return (os.makedirs, (str(self.path),))


def test_resume_refuses_a_checkpoint_that_is_not_safe_to_load(tiny_bert_dir: Path, glue_dir: Path,
                                                              tmp_path: Path) -> None:  # fmt: skip
    import pickle

    out = tmp_path / "stopped"
    # the loss overflows after a few Z/U updates: the run stops and stays staged with its checkpoints
    args = tiny_args(tiny_bert_dir, glue_dir, out, "admm", "--admm-penalty", "loss", "--rho", "1e30",
                     "--rho-max", "1e38", "--rho-growth", "1e10", "--save-steps", "2")  # fmt: skip
    _one_line_error(run_cli(*args), "the training loss became inf at step")
    phase = staging_dir(out) / "checkpoints" / "phase-0-admm"
    newest = max(phase.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    marker = tmp_path / "unpickled"
    (newest / "scheduler.pt").write_bytes(pickle.dumps(_MakesADirectory(marker)))
    result = run_cli(*args, "--resume")
    _one_line_error(result, f"--resume: checkpoint {newest} cannot be loaded safely")
    assert not marker.exists(), "the pickle was executed"
