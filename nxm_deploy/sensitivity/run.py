"""How much each layer, and each kind of layer, of a dense run costs when made N:M; a ranking; the
``--exclude`` list that keeps the drop under a budget.

    nxm-deploy sensitivity runs/rte-dense --out reports/rte-sensitivity.json --budget 1

    result = sensitivity(SensitivityConfig(run_dir="runs/rte-dense", out="reports/rte-sensitivity.json"))
    result.report["exclude"]      # layer names to pass to train --exclude

Steps: read the run (a dense one) and check ``--out`` before any work; draw the training rows
(``rows``); load the run's model once; score the dense model (the baseline); then, on the same rows,
each candidate layer pruned alone and each kind pruned in every block at once (``layers.pruned``:
magnitude N:M, the dense weights restored after each); rank the layers by drop; greedily exclude the
most sensitive layer, one at a time, until the measured drop with all the others N:M at once is at
most the budget; write the JSON and its plot (``output``).
"""

from __future__ import annotations

import logging
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nxm_deploy import nm
from nxm_deploy.errors import UserError
from nxm_deploy.manifest import Provenance, RunManifest, SensitivityManifest
from nxm_deploy.origin import dist_version
from nxm_deploy.sensitivity.config import SensitivityConfig
from nxm_deploy.sensitivity.layers import Layer, candidate_layers, encoder_macs, pruned
from nxm_deploy.sensitivity.output import check_out_file, write_outputs
from nxm_deploy.sensitivity.rows import encode_rows, score, training_rows

__all__ = ["SensitivityConfig", "SensitivityResult", "sensitivity"]

log = logging.getLogger("nxm_deploy.sensitivity")


@dataclass(frozen=True)
class SensitivityResult:
    out: Path
    plot: Path
    report: dict[str, Any]


class _Meter:
    """Scores the model on the rows with some layers pruned; counts and logs each measurement."""

    def __init__(
        self, model: Any, task: Any, batches: list[Any], labels: list[Any], pattern: nm.Pattern
    ) -> None:
        self.model, self.task, self.batches, self.labels = model, task, batches, labels
        self.pattern = pattern
        self.count = 0
        self.baseline = self._score([])

    def _score(self, names: list[str]) -> float:
        with pruned(self.model, names, self.pattern):
            self.count += 1
            return score(self.model, self.task, self.batches, self.labels)

    def drop(self, names: list[str], what: str) -> float:
        value = self._score(names)
        drop = self.baseline - value
        log.info("%s: %.2f -> %.2f (drop %.2f points)", what, self.baseline, value, drop)
        return drop


def _share(macs: int, total: int) -> float:
    return round(macs / total, 6) if total else 0.0


def _greedy(meter: _Meter, ranking: list[Layer], budget: float, total: int) -> list[dict[str, Any]]:
    """Steps of the greedy rule: exclude the most sensitive layer left until the measured drop with
    all the others N:M at once is at most ``budget`` (or nothing is left: the dense model, drop 0)."""
    steps: list[dict[str, Any]] = []
    for k in range(len(ranking) + 1):
        kept = sorted(ranking[k:], key=lambda r: (r.block, r.name))
        if not kept:
            drop = 0.0  # every layer excluded: the dense model itself
        else:
            what = f"greedy step {k + 1}: {len(kept)} layers N:M" + (f", {k} excluded" if k else "")
            drop = meter.drop([r.name for r in kept], what)
        share = _share(sum(r.macs for r in kept), total)
        steps.append(
            {"excluded": [r.name for r in ranking[:k]], "layers_nm": len(kept), "drop": round(drop, 4),
             "flops_share": share}
        )  # fmt: skip
        if drop <= budget:
            break
    return steps


def _exclude_args(globs: tuple[str, ...], names: list[str]) -> str:
    return " ".join(f"--exclude {shlex.quote(n)}" for n in (*globs, *names))


def sensitivity(cfg: SensitivityConfig) -> SensitivityResult:
    """Measure, rank, choose the exclude list, write ``cfg.out`` and its plot (module docstring)."""
    import torch

    from nxm_deploy.models import input_names_for, load_model

    run = RunManifest.read(cfg.run_dir)
    if run.facts.sparse:
        raise UserError(
            f"run {run.path} is sparse ({run.facts.pattern}); sensitivity analyses a dense run (train "
            "--method dense), before choosing which layers to prune"
        )
    out, plot = check_out_file(cfg.out, cfg.overwrite)
    pattern = nm.parse_pattern(cfg.pattern)
    task, rows = training_rows(cfg, run)
    model, tokenizer = load_model(run.path)
    if model.config.num_labels != task.num_labels:
        raise UserError(
            f"run {run.path} has {model.config.num_labels} labels, {task.name} has {task.num_labels}"
        )
    model.eval()
    layers = candidate_layers(model, pattern, cfg.include, cfg.exclude)
    max_len = run.facts.max_seq_len or 128
    batches = encode_rows(tokenizer, rows, input_names_for(model, tokenizer), max_len, cfg.batch_size)
    log.info("%s: %d layers, %d training rows of %s, %s by magnitude", run.path, len(layers),
             len(rows.texts_a), task.name, pattern)  # fmt: skip
    t0 = time.perf_counter()
    meter = _Meter(model, task, batches, rows.labels, pattern)
    log.info("baseline (dense) %s: %.2f points", task.main_metric, meter.baseline)
    per_layer = []
    for i, layer in enumerate(layers, 1):
        drop = meter.drop([layer.name], f"layer {i}/{len(layers)} {layer.name}")
        per_layer.append({**layer.to_json(), "drop": round(drop, 4)})
    kinds: dict[str, list[Layer]] = {}
    for layer in layers:
        kinds.setdefault(layer.kind, []).append(layer)
    per_kind = []
    for i, (kind, members) in enumerate(kinds.items(), 1):
        drop = meter.drop(
            [m.name for m in members], f"kind {i}/{len(kinds)} {members[0].label} ({len(members)} layers)"
        )
        per_kind.append(
            {"kind": kind, "label": members[0].label, "layers": len(members), "drop": round(drop, 4)}
        )
    drops = {r["name"]: r["drop"] for r in per_layer}
    ranking = sorted(layers, key=lambda r: -drops[r.name])  # stable: ties keep module order
    total = encoder_macs(model)
    steps = _greedy(meter, ranking, cfg.budget, total)
    exclude = steps[-1]["excluded"]
    manifest = SensitivityManifest(
        run=str(run.path.resolve()),
        task=task.name,
        metric=task.main_metric,
        pattern=str(pattern),
        exclude=tuple(exclude),
        provenance=Provenance.here(),
        rows=rows.to_json(),
        seed=cfg.seed,
        max_seq_len=max_len,
        baseline=round(meter.baseline, 4),
        layers=tuple(per_layer),
        kinds=tuple(per_kind),
        ranking=tuple(
            {"name": r.name, "label": r.label, "block": r.block, "drop": drops[r.name]} for r in ranking
        ),
        budget=cfg.budget,
        train_exclude=_exclude_args(cfg.exclude, exclude),
        combined_drop=steps[-1]["drop"],
        flops_share=steps[-1]["flops_share"],
        flops_share_all_nm=_share(sum(r.macs for r in layers), total),
        flops="multiply-accumulates per token of the encoder blocks' linear layers (in x out each); "
        "attention score products not counted",
        greedy=tuple(steps),
        measurements=meter.count,
        wall_time_s=round(time.perf_counter() - t0, 1),  # the measurements, model loading excluded
        plot=plot.name,
        config=cfg.to_json(),
        torch_version=torch.__version__,
        transformers_version=dist_version("transformers"),
    )
    report = manifest.to_json()
    write_outputs(report, out, plot)
    return SensitivityResult(out, plot, report)
