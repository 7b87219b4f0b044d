"""``--method srste`` (SR-STE's learned masks) and ``--freeze-variance`` (STEP): the mask moves during
training and the run passes ``check``; Adam's frozen variance does not change after the switch and
survives a kill and ``--resume``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from nxm_deploy import nm
from nxm_deploy.admm.checkpoints import is_complete, staging_dir
from nxm_deploy.admm.registry import Budget, Phase, get_method
from nxm_deploy.admm.srste import FrozenVarianceAdamW, SrsteState
from nxm_deploy.cli import cli
from nxm_deploy.errors import UserError


def test_plan_splits_the_budget() -> None:
    def plan(epochs: float, masked: float | None = None, init: float = 0) -> list[Phase]:
        m = get_method("srste")
        return m.plan(Budget(epochs, init), m.options(masked_epochs=masked))

    assert plan(3) == [Phase("srste", 2), Phase("masked", 1)]
    assert plan(3, masked=0) == [Phase("srste", 3)]  # the run hard-prunes at its end
    assert plan(4, masked=1, init=1) == [Phase("srste", 2), Phase("masked", 1)]
    with pytest.raises(UserError, match="masked_epochs 3 does not fit the budget"):
        plan(3, masked=3)


def test_forward_uses_the_mask_and_the_gradient_passes_straight_through() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 4)
    dense = layer.weight.detach().clone()
    srste = SrsteState({"l": layer.weight}, nm.parse_pattern("2:4"), 0.0, False, 1)
    srste.begin()
    x = torch.randn(5, 8)
    with srste.masked_weights():
        out = layer(x)
        out.sum().backward()
    sparse = nm.project(dense, "2:4", axis=1)
    assert torch.allclose(out, x @ sparse.T + layer.bias)  # the forward saw W * mask
    assert torch.equal(layer.weight.detach(), dense)  # the dense weights are back
    # the gradient of the masked weight, on every entry (pruned ones too): d/dW sum(x W^T) = sum_rows x
    assert torch.allclose(layer.weight.grad, x.sum(0).expand(4, 8))


def test_frozen_variance_adamw_is_adamw_until_the_switch_then_keeps_v() -> None:
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(16))
    b = torch.nn.Parameter(a.detach().clone())
    ours = FrozenVarianceAdamW([a], lr=1e-2, weight_decay=0.01, fused=True)
    ref = torch.optim.AdamW([b], lr=1e-2, weight_decay=0.01)
    for _ in range(5):
        g = torch.randn(16)
        for p, opt in ((a, ours), (b, ref)):
            p.grad = g.clone()
            opt.step()
    assert torch.allclose(a, b)  # before the switch: AdamW's trajectory
    assert ours.freeze_variance() == 5
    v = ours.state[a]["exp_avg_sq"].clone()
    m = ours.state[a]["exp_avg"].clone()
    for _ in range(3):
        a.grad = torch.randn(16) * 10
        ours.step()
    assert torch.equal(ours.state[a]["exp_avg_sq"], v)  # frozen
    assert not torch.equal(ours.state[a]["exp_avg"], m)  # the first moment still moves
    saved = ours.state_dict()
    assert saved["param_groups"][0]["variance_frozen_at"] == 5


def _args(model: Path, glue: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--model", str(model), "--task", "rte", "--data-dir", str(glue), "--method", "srste",
            "--out", str(out), "--epochs", "2", "--max-train-samples", "48", "--max-eval-samples", "24",
            "--batch-size", "8", "--max-seq-len", "32", "--lr", "1e-2", "--save-steps", "4",
            "--logging-steps", "2", "--no-progress", *extra]  # fmt: skip


def test_the_mask_moves_and_the_run_passes_check(tiny_bert_dir: Path, glue_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "srste"
    result = CliRunner().invoke(cli, _args(tiny_bert_dir, glue_dir, run, "--keep-checkpoints"),
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads((run / "nxm.json").read_text())
    assert [p["kind"] for p in manifest["phases"]] == ["srste", "masked"]
    assert manifest["phases"][0]["mask_flipped"] > 0  # the learned mask left the first top-N-of-M
    assert manifest["hyperparameters"]["srste_decay_mode"] == "grad"
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    flips = [r["mask_flipped"] for r in log if r["phase"] == 0 and "mask_flipped" in r]
    assert flips and flips[-1] > 0, flips
    assert not any("mask_flipped" in r for r in log if r["phase"] == 1)  # fixed mask after the prune
    # checkpoints hold plain weights (the masking is not registered on the model)
    ckpt = run / "checkpoints" / "phase-0-srste" / "checkpoint-4"
    assert set(load_file(str(ckpt / "model.safetensors"))) == set(load_file(str(run / "model.safetensors")))
    check = CliRunner().invoke(cli, ["check", str(run)], catch_exceptions=False)
    assert check.exit_code == 0, check.output


def _optimizer_state(checkpoint: Path) -> dict:
    return torch.load(checkpoint / "optimizer.pt", map_location="cpu", weights_only=True)


def _frozen_ckpt(stage: Path) -> Path | None:
    phase0 = stage / "checkpoints" / "phase-0-srste"
    done = [p for p in phase0.glob("checkpoint-*") if is_complete(p)] if phase0.exists() else []
    return next((p for p in done if p.name == "checkpoint-6"), None)


@pytest.mark.slow
def test_frozen_variance_stays_frozen_and_survives_resume(tiny_bert_dir: Path, glue_dir: Path,
                                                          tmp_path: Path) -> None:  # fmt: skip
    # 32 rows / batch 8 = 4 steps per epoch; SR-STE for all 3 epochs = 12 steps (then the hard prune),
    # the switch at a quarter of them: step 3; killed once checkpoint-6 is complete
    out = tmp_path / "step"
    args = [sys.executable, "-m", "nxm_deploy",
            *_args(tiny_bert_dir, glue_dir, out, "--freeze-variance", "--epochs", "3", "--masked-epochs", "0",
                   "--max-train-samples", "32", "--save-steps", "3")]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and _frozen_ckpt(staging_dir(out)) is None:
        time.sleep(0.005)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ckpt = _frozen_ckpt(staging_dir(out))
    assert ckpt is not None
    before = _optimizer_state(ckpt)
    assert [g["variance_frozen_at"] for g in before["param_groups"]] == [3, 3]
    assert json.loads((ckpt / "nxm_state.json").read_text())["srste"]["switch_step"] == 3

    resumed = CliRunner().invoke(cli, [*args[3:], "--resume", "--keep-checkpoints"], catch_exceptions=False)
    assert resumed.exit_code == 0, resumed.output
    after = _optimizer_state(out / "checkpoints" / "phase-0-srste" / "checkpoint-12")
    assert [g["variance_frozen_at"] for g in after["param_groups"]] == [3, 3]
    for k, s in before["state"].items():
        assert torch.equal(after["state"][k]["exp_avg_sq"], s["exp_avg_sq"]), k  # frozen, 6 steps later
    moved = [not torch.equal(after["state"][k]["exp_avg"], s["exp_avg"]) for k, s in before["state"].items()]
    assert any(moved)  # the first moment (and the weights) kept training
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r.get("event") == "variance_frozen"] == [3]
    manifest = json.loads((out / "nxm.json").read_text())
    assert [p["kind"] for p in manifest["phases"]] == ["srste", "hard_prune"]
    assert manifest["phases"][0]["variance_frozen_at"] == 3 and manifest["phases"][0]["mask_flipped"] > 0
    check = CliRunner().invoke(cli, ["check", str(out)], catch_exceptions=False)
    assert check.exit_code == 0, check.output
