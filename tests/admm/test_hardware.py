"""The hardware options of `train` on CPU: bf16 autocast, gradient accumulation, evaluation during
training, data-loader workers, the metrics logger, and fp16's skipped steps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from conftest import make_tiny_model
from transformers import AutoTokenizer, TrainerCallback, TrainingArguments

from nxm_deploy import nm
from nxm_deploy.admm import TrainConfig, train
from nxm_deploy.admm.callbacks import AdmmCallback
from nxm_deploy.admm.hardware import per_device_batch
from nxm_deploy.admm.penalty import AdmmSchedule, AdmmState
from nxm_deploy.admm.state import SparsityState
from nxm_deploy.admm.trainer import NxmTrainer
from nxm_deploy.admm.trainlog import TrainLog
from nxm_deploy.cli import cli
from nxm_deploy.data.encode import encode
from nxm_deploy.errors import GpuNeededError, UserError
from nxm_deploy.models import select_layers

from .test_train import tiny_args

CUDA = torch.cuda.is_available()


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def records(run: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines() if x.strip()]


def test_bf16_grad_accum_eval_steps_and_workers(tiny_bert_dir: Path, glue_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bf16"
    extra = [
        "--mixed-precision",
        "bf16",
        "--grad-accum",
        "2",
        "--eval-steps",
        "4",
        "--dataloader-workers",
        "1",
    ]
    result = run_cli(*tiny_args(tiny_bert_dir, glue_dir, out, "admm", *extra))
    assert result.exit_code == 0, result.output
    check = run_cli("check", str(out))  # the masks stayed exact under autocast
    assert check.exit_code == 0 and "all 12 tensors hold 2:4" in check.output, check.output
    hyper = json.loads((out / "nxm.json").read_text())["hyperparameters"]
    assert {k: hyper[k] for k in ("mixed_precision", "grad_accum", "eval_steps", "report_to")} == {
        "mixed_precision": "bf16", "grad_accum": 2, "eval_steps": 4, "report_to": "none"}  # fmt: skip
    assert hyper["dataloader_workers"] == 1
    manifest = json.loads((out / "nxm.json").read_text())
    assert manifest["device"] == ("cuda" if CUDA else "cpu")
    log = records(out)
    # 48 rows / global batch 8 = 6 optimizer steps per epoch whatever the accumulation: ADMM phase
    # (2/3 of 2 epochs) = 8 optimizer steps, Z/U every 2 of them
    assert [r["step"] for r in log if r.get("event") == "admm_update"] == [2, 4, 6, 8]
    evals = [(r["phase"], r["step"]) for r in log if "eval_accuracy" in r]
    projected = [(r["phase"], r["step"]) for r in log if "eval_nm_accuracy" in r]
    assert evals == [(0, 4), (0, 8), (1, 4), (1, 5)]  # every 4 steps and at each phase's last one
    assert projected == [(0, 4), (0, 8)]  # the masked phase's weights are N:M already
    assert all(0 <= r["eval_nm_accuracy"] <= 1 for r in log if "eval_nm_accuracy" in r)


@pytest.mark.skipif(CUDA, reason="checks the refusal on a machine without a GPU")
def test_fp16_on_cpu_is_refused_in_one_line(tiny_bert_dir: Path, glue_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fp16"
    result = run_cli(*tiny_args(tiny_bert_dir, glue_dir, out, "admm", "--mixed-precision", "fp16"))
    assert result.exit_code == 3  # README's exit codes: a GPU is needed and missing
    assert result.output.strip().splitlines() == [
        "error: --mixed-precision fp16 needs a CUDA GPU (its loss scaler runs there); on CPU use bf16 or no"
    ]
    assert not out.exists()


@pytest.mark.skipif(CUDA, reason="checks the refusal on a machine without a GPU")
def test_fp16_on_cpu_names_the_parameter_to_a_library_caller(tiny_bert_dir: Path, glue_dir: Path,
                                                               tmp_path: Path) -> None:  # fmt: skip
    """The same refusal through ``train(config)``: the message names ``TrainConfig``'s parameter,
    which a library caller set, not the flag the CLI test above sees."""
    out = tmp_path / "fp16"
    cfg = TrainConfig(task="rte", out=str(out), model=str(tiny_bert_dir), data_dir=str(glue_dir),
                      mixed_precision="fp16", progress=False)  # fmt: skip
    with pytest.raises(GpuNeededError) as caught:
        train(cfg)
    assert str(caught.value) == (
        "mixed_precision fp16 needs a CUDA GPU (its loss scaler runs there); on CPU use bf16 or no"
    )
    assert caught.value.exit_code == 3 and caught.value.params == ("mixed_precision",)
    assert not out.exists()


def test_a_batch_that_does_not_split_names_the_parameters_to_a_library_caller(tmp_path: Path) -> None:
    cfg = TrainConfig(task="rte", out=str(tmp_path / "split"), model="unused", batch_size=8, grad_accum=3)
    with pytest.raises(UserError) as caught:
        per_device_batch(cfg, processes=1)
    assert str(caught.value) == (
        "batch_size 8 does not divide over 1 process(es) x grad_accum 3; pass a multiple of 3"
    )
    assert "--" not in str(caught.value)


def test_batch_that_does_not_split_is_refused_in_one_line(tiny_bert_dir: Path, glue_dir: Path,
                                                          tmp_path: Path) -> None:  # fmt: skip
    out = tmp_path / "split"
    result = run_cli(*tiny_args(tiny_bert_dir, glue_dir, out, "admm", "--grad-accum", "3"))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: --batch-size 8 does not divide over 1 process(es) x --grad-accum 3; pass a multiple of 3"
    ]
    assert not out.exists()


def test_tensorboard_logger(tiny_bert_dir: Path, glue_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "tb"
    args = tiny_args(tiny_bert_dir, glue_dir, out, "dense", "--report-to", "tensorboard", "--epochs", "1")
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        result = run_cli(*args)
        assert result.exit_code == 1 and not out.exists()
        assert result.output.strip() == (
            "error: --report-to tensorboard needs the tensorboard package: "
            "pip install 'nxm-deploy[tensorboard]'"
        )
        pytest.skip("tensorboard is not installed (the `tensorboard` extra): checked the one-line error")
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    assert list((out / "tensorboard" / "phase-0-dense").glob("events.out.tfevents.*"))


# ---- one optimizer step, accumulated or not ------------------------------------------------------


class DumpGrads(TrainerCallback):
    def __init__(self, sparsity: SparsityState, model: torch.nn.Module) -> None:
        self.sparsity, self.model, self.grads = sparsity, model, {}

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.grads = {n: w.grad.detach().clone() for n, w in self.sparsity.weights.items()}
        self.grads["classifier.weight"] = self.model.classifier.weight.grad.detach().clone()


def first_step_grads(tok_dir: Path, tmp_path: Path, per_device: int, accum: int) -> dict[str, torch.Tensor]:
    model = make_tiny_model("bert", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    tok = AutoTokenizer.from_pretrained(tok_dir)
    words = "the cat sat on a mat while dogs ran in parks near old towns by rivers".split()
    a = [" ".join(words[i : i + 3 + i % 5]) for i in range(16)]  # distinct rows, distinct lengths
    b = [" ".join(words[::-1][i : i + 4]) for i in range(16)]
    data = encode(tok, a, b, [i % 2 for i in range(16)], 32)
    pattern = nm.Pattern(2, 4)
    sparsity = SparsityState(model, select_layers(model, pattern), pattern)
    sparsity.method = admm = AdmmState(sparsity.weights, pattern)  # the penalty in the loss
    admm.start(rho=0.5)
    gen = torch.Generator().manual_seed(1)
    for n in sparsity.layers:  # a nonzero scaled dual, so the penalty's gradient is not trivial
        admm.u[n] = torch.randn(admm.u[n].shape, generator=gen) * 0.01
    admm.refresh_targets()
    dump = DumpGrads(sparsity, model)
    args = TrainingArguments(output_dir=str(tmp_path / f"t-{accum}"), per_device_train_batch_size=per_device,
                             gradient_accumulation_steps=accum, learning_rate=0.0, max_steps=1,
                             max_grad_norm=0.0, report_to="none", save_strategy="no", use_cpu=True,
                             disable_tqdm=True, seed=0, data_seed=0)  # fmt: skip
    NxmTrainer(model=model, args=args, train_dataset=data, processing_class=tok, callbacks=[dump],
               sparsity=sparsity).train()  # fmt: skip
    return dump.grads


def test_accumulated_gradient_equals_the_unaccumulated_one(tiny_bert_dir: Path, tmp_path: Path) -> None:
    """Global batch 8 as one batch, or as 4 micro-batches of 2: the same gradient, ADMM penalty
    included, reaches the optimizer."""
    whole = first_step_grads(tiny_bert_dir, tmp_path, per_device=8, accum=1)
    split = first_step_grads(tiny_bert_dir, tmp_path, per_device=2, accum=4)
    assert whole.keys() == split.keys() and len(whole) == 13
    for k in whole:
        torch.testing.assert_close(split[k], whole[k], rtol=1e-4, atol=1e-6, msg=k)


# ---- fp16's loss scaler: a skipped step skips the masking and ADMM ------------------------------


def scaled_optimizer(params: list[torch.nn.Parameter], fused: bool = False) -> Any:
    """accelerate's optimizer wrapper with a real loss scaler, as Trainer builds it under fp16;
    ``fused``: transformers' default optimizer on current torch (fused AdamW), for which GradScaler
    always calls ``optimizer.step`` and accelerate therefore never reports a skipped step."""
    from accelerate import Accelerator
    from accelerate.optimizer import AcceleratedOptimizer

    Accelerator(cpu=not CUDA)  # the process state the wrapper reads (Trainer makes the same)
    scaler = torch.amp.GradScaler("cuda" if CUDA else "cpu", init_scale=2.0**4)
    inner = torch.optim.AdamW(params, lr=0.1, fused=True) if fused else torch.optim.SGD(params, lr=0.1)
    return AcceleratedOptimizer(inner, device_placement=False, scaler=scaler)


@pytest.mark.parametrize("fused", [False, True], ids=["sgd", "fused-adamw"])
def test_a_step_the_loss_scaler_skips_is_skipped_by_admm(tmp_path: Path, fused: bool) -> None:
    from nxm_deploy.admm.hardware import StepSkips

    model = make_tiny_model("bert").to("cuda" if CUDA else "cpu")  # where the scaler runs
    pattern = nm.Pattern(2, 4)
    sparsity = AdmmState(SparsityState(model, select_layers(model, pattern), pattern).weights, pattern)
    sparsity.start(rho=10.0)
    optimizer = scaled_optimizer(list(sparsity.weights.values()), fused)
    log = TrainLog(tmp_path / "log.jsonl")
    skips = StepSkips()
    admm = AdmmCallback(sparsity, AdmmSchedule(10.0, 1.0), 2, log, 0, skips, decoupled=True)
    state = type("State", (), {"global_step": 2})()  # the step at which an update is due

    def step(grad: float) -> None:  # Trainer's order: pre-step hooks, step (+ scaler update), hooks
        optimizer.zero_grad()
        loss = sum((w * grad).sum() for w in sparsity.weights.values())  # dloss/dW = grad everywhere
        optimizer.scaler.scale(loss).backward()
        for cb in (skips, admm):
            cb.on_pre_optimizer_step(None, state, None, optimizer=optimizer)
        optimizer.step()
        for cb in (skips, admm):
            cb.on_optimizer_step(None, state, None, optimizer=optimizer)
        admm.on_step_end(None, state, None, optimizer=optimizer)

    before = {n: w.detach().clone() for n, w in sparsity.weights.items()}
    step(float("inf"))  # overflow: the scaler skips the step
    assert skips.skipped
    assert optimizer.step_was_skipped is (not fused)  # accelerate cannot tell with a fused optimizer
    assert all(torch.equal(w, before[n]) for n, w in sparsity.weights.items())  # no decoupled pull
    assert sparsity.updates == 0 and sparsity.pending and not records_of(tmp_path)
    state.global_step = 3
    step(0.0)  # applied: the decoupled pull moves W, and the update that was due happens now
    assert not skips.skipped
    assert sparsity.updates == 1 and not sparsity.pending
    assert any(not torch.equal(w, before[n]) for n, w in sparsity.weights.items())
    assert [r["step"] for r in records_of(tmp_path)] == [3]


def test_the_teacher_runs_under_the_students_autocast(tiny_bert_dir: Path, tmp_path: Path) -> None:
    """bf16 mixed precision: the teacher's linears compute in bf16 like the student's, not in fp32."""
    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    student, teacher = make_tiny_model("bert", seed=0), make_tiny_model("bert", seed=1).eval()
    seen: dict[str, torch.dtype] = {}

    def note(name: str) -> Any:
        def hook(_module: Any, _inputs: Any, output: torch.Tensor) -> None:
            seen.setdefault(name, output.dtype)

        return hook

    for name, model in (("student", student), ("teacher", teacher)):
        model.classifier.register_forward_hook(note(name))
    data = encode(tok, ["the cat sat"] * 8, None, [1, 0] * 4, 16)
    args = TrainingArguments(output_dir=str(tmp_path / "t"), per_device_train_batch_size=4, max_steps=1,
                             bf16=True, use_cpu=True, report_to="none", save_strategy="no",
                             disable_tqdm=True)  # fmt: skip
    NxmTrainer(model=student, args=args, train_dataset=data, processing_class=tok, teacher=teacher).train()
    assert seen == {"student": torch.bfloat16, "teacher": torch.bfloat16}


def records_of(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "log.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
