"""README's Python blocks run as written (its Library and Serving sections), on a tiny random BERT.

The blocks use the real functions; only the amounts are cut for a test: 64 training and 64 dev
rows, one epoch, one batch shape timed briefly, 64 rows for the sensitivity analysis. ``MODEL`` is
the tiny model's directory and ``weight`` a random ``nn.Linear`` weight, the two names README leaves
to the reader.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import torch

import nxm_deploy.admm
import nxm_deploy.admm.run
import nxm_deploy.bench
import nxm_deploy.bench.run
import nxm_deploy.sensitivity
import nxm_deploy.sensitivity.run
from nxm_deploy.bench.latency import TimingPlan

REPO = Path(__file__).resolve().parents[1]

SECTIONS = ("## Library", "## Serving")


def python_blocks(text: str, heading: str) -> list[str]:
    """The ```python blocks of the README section that starts with ``heading``."""
    start = text.index(f"\n{heading}")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end > 0 else len(text)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_has_the_blocks():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for heading in SECTIONS:
        assert python_blocks(text, heading), f"README's {heading} section has no Python block"


@pytest.mark.slow
def test_readme_python_blocks_run(tmp_path: Path, tiny_bert_dir: Path, glue_dir: Path, monkeypatch):
    real_train, real_bench = nxm_deploy.admm.run.train, nxm_deploy.bench.run.bench
    real_sensitivity = nxm_deploy.sensitivity.run.sensitivity

    def small_train(cfg):
        return real_train(dataclasses.replace(cfg, max_train_samples=64, max_eval_samples=64, epochs=1.0))

    def small_bench(cfg):
        plan = TimingPlan(warmup=1, repeats=3, min_time_s=0.0, max_time_s=0.2)
        return real_bench(dataclasses.replace(cfg, batch_sizes=(2,), seq_lens=(16,), plan=plan))

    def small_sensitivity(cfg):
        return real_sensitivity(dataclasses.replace(cfg, rows=64))

    for module in (nxm_deploy.admm, nxm_deploy.admm.run):
        monkeypatch.setattr(module, "train", small_train, raising=False)
    for module in (nxm_deploy.bench, nxm_deploy.bench.run):
        monkeypatch.setattr(module, "bench", small_bench, raising=False)
    for module in (nxm_deploy.sensitivity, nxm_deploy.sensitivity.run):
        monkeypatch.setattr(module, "sensitivity", small_sensitivity, raising=False)
    monkeypatch.setenv("GLUE_DIR", str(glue_dir))
    monkeypatch.chdir(tmp_path)
    namespace = {"MODEL": str(tiny_bert_dir), "weight": torch.randn(8, 16)}
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for heading in SECTIONS:
        for block in python_blocks(text, heading):
            exec(compile(block, f"README.md {heading}", "exec"), namespace)
    assert namespace["report"].ok
    assert (tmp_path / "reports" / "rte" / "report.json").is_file()
    assert namespace["p"].label in ("entailment", "not_entailment")
    assert namespace["sens"].report["combined_drop"] <= namespace["sens"].report["budget"]
