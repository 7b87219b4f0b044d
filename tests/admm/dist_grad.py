"""Helper for test_distributed.py: one NxmTrainer step on a tiny BERT under 1 or 2 processes.

    torchrun --nproc_per_node N tests/admm/dist_grad.py OUT.safetensors TOKENIZER_DIR

Every training row is the same sentence pair, dropout is off and the learning rate is 0, so the
gradient of the first step is the same for any split of the global batch over processes: a
difference means the task loss or the ADMM penalty is weighed differently under DDP.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback, TrainingArguments

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import tiny_config

from nxm_deploy import nm
from nxm_deploy.admm.dist import barrier, shutdown
from nxm_deploy.admm.penalty import AdmmState
from nxm_deploy.admm.state import SparsityState
from nxm_deploy.admm.trainer import NxmTrainer
from nxm_deploy.data.encode import encode
from nxm_deploy.models import select_layers

GLOBAL_BATCH = 8


class DumpGrads(TrainerCallback):
    def __init__(self, state: SparsityState, model: torch.nn.Module, out: str) -> None:
        self.state, self.model, self.out = state, model, out

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if int(os.environ.get("RANK", "0")) == 0:
            grads = {n: w.grad.detach().clone() for n, w in self.state.weights.items()}
            grads["classifier.weight"] = self.model.classifier.weight.grad.detach().clone()
            save_file(grads, self.out)


def main() -> None:
    out, tok_dir = sys.argv[1], sys.argv[2]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    torch.manual_seed(0)
    cfg = tiny_config("bert", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = AutoModelForSequenceClassification.from_config(cfg)
    tok = AutoTokenizer.from_pretrained(tok_dir)
    rows = 4 * GLOBAL_BATCH
    data = encode(tok, ["the cat sat on the mat"] * rows, ["a cat is sitting"] * rows, [1] * rows, 32)
    pattern = nm.Pattern(2, 4)
    sparsity = SparsityState(model, select_layers(model, pattern), pattern)
    sparsity.method = admm = AdmmState(sparsity.weights, pattern)  # the penalty in the loss
    admm.start(rho=0.5)
    gen = torch.Generator().manual_seed(1)
    for n in sparsity.layers:  # a nonzero scaled dual, the same on every rank
        admm.u[n] = torch.randn(admm.u[n].shape, generator=gen) * 0.01
    admm.refresh_targets()
    args = TrainingArguments(
        output_dir=str(Path(out).parent / f"trainer-{world}"),
        per_device_train_batch_size=GLOBAL_BATCH // world,
        learning_rate=0.0,
        max_steps=1,
        max_grad_norm=0.0,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = NxmTrainer(model=model, args=args, train_dataset=data, processing_class=tok,
                         callbacks=[DumpGrads(sparsity, model, out)], sparsity=sparsity)  # fmt: skip
    trainer.train()
    barrier()  # then leave gloo's process group: an exit with it up can abort
    shutdown()


if __name__ == "__main__":
    main()
