"""`nxm-deploy demo`'s chain on a tiny random BERT: dense, then the default 2:4 recipe from the dense run
(demo.RECIPE), export, check, bench; finished steps are reused on a second call."""

from __future__ import annotations

import json
from pathlib import Path

from nxm_deploy.demo import RECIPE, DemoConfig, run_demo


def test_demo_trains_the_default_recipe_from_its_dense_run(
    tmp_path: Path, tiny_bert_dir: Path, glue_dir: Path
):
    cfg = DemoConfig(out=str(tmp_path / "demo"), data_dir=str(glue_dir), model=str(tiny_bert_dir),
                     train_samples=64, max_seq_len=32, dense_epochs=1.0, sparse_epochs=1.0, batch_size=16,
                     batch_sizes=(1,), seq_lens=(16,))  # fmt: skip
    result = run_demo(cfg)
    out = tmp_path / "demo"
    sparse = json.loads((out / "runs" / "sparse" / "nxm.json").read_text())
    assert sparse["method"] == RECIPE["method"] and sparse["pattern"] == "2:4"
    assert sparse["prune"]["solver"] == RECIPE["prune_solver"] and sparse["prune"]["layer_errors"]
    assert Path(sparse["init_from"]["run"]) == out / "runs" / "dense"
    dense = json.loads((out / "runs" / "dense" / "nxm.json").read_text())  # which dense run it continued
    assert (sparse["init_from"]["created"], sparse["init_from"]["metrics"]) == (
        dense["created"],
        dense["metrics"],
    )
    assert result.report["sparsity"] and result.report["accuracy"]["examples"] == 872
    demo = json.loads((out / "demo.json").read_text())
    assert demo["complete"] and demo["config"]["recipe"] == RECIPE
    again = run_demo(cfg)  # every step's output is complete: nothing is trained again
    assert set(again.steps.values()) == {0.0}
