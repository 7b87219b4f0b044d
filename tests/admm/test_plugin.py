"""A new training method is one module: ``plugin_method.py`` (in the tests, not shipped) registers
``shrink`` with its options and phase kind, and it trains end to end, is refused its options under
another method, and appears on the command line, without any other library file knowing it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nxm_deploy.admm.registry import unregister
from nxm_deploy.errors import UserError

HERE = Path(__file__).resolve().parent


@pytest.fixture
def shrink() -> Iterator[object]:
    sys.path.insert(0, str(HERE))
    try:
        import plugin_method

        yield plugin_method
    finally:
        unregister("shrink")
        sys.modules.pop("plugin_method", None)
        sys.path.remove(str(HERE))


def test_a_method_from_one_module_trains_end_to_end(
    shrink: object, tiny_bert_dir: Path, glue_dir: Path, tmp_path: Path
) -> None:
    from nxm_deploy.admm import TrainConfig, train
    from nxm_deploy.check import check

    cfg = TrainConfig(task="rte", out=str(tmp_path / "run"), model=str(tiny_bert_dir), method="shrink",
                      data_dir=str(glue_dir), epochs=2, max_train_samples=32, max_eval_samples=16,
                      batch_size=8, max_seq_len=32, lr=1e-3, save_steps=4, logging_steps=2,
                      shrink_factor=0.5, progress=False)  # fmt: skip
    result = train(cfg)
    manifest = json.loads((result.run_dir / "nxm.json").read_text())
    assert manifest["method"] == "shrink" and manifest["sparse"]
    assert [p["kind"] for p in manifest["phases"]] == ["shrink", "masked"]
    assert manifest["phases"][0]["shrink_steps"] == 4  # 32 rows / 8 per step, one epoch
    assert manifest["hyperparameters"]["shrink_factor"] == 0.5
    assert manifest["hyperparameters"]["rho_growth"] == 1.3  # the other methods' keys stay
    log = [json.loads(line) for line in (result.run_dir / "train_log.jsonl").read_text().splitlines()]
    assert any(r.get("event") == "shrink_start" for r in log)
    assert any("shrink_steps" in r for r in log if "loss" in r)
    assert check(result.run_dir).ok


def test_its_options_are_refused_for_another_method(shrink: object) -> None:
    from nxm_deploy.admm import TrainConfig

    line = "shrink_factor only apply to method shrink, not admm; drop them"
    with pytest.raises(UserError, match=f"^{line}$") as err:
        TrainConfig(task="rte", out="x", model="m", shrink_factor=0.5)
    assert err.value.cli_message == "--shrink-factor only apply to --method shrink, not admm; drop them"  # type: ignore[attr-defined]
    with pytest.raises(UserError, match="within"):
        TrainConfig(task="rte", out="x", model="m", method="shrink", shrink_factor=2.0)
    with pytest.raises(UserError, match="rho only apply to method admm, not shrink"):
        TrainConfig(task="rte", out="x", model="m", method="shrink", rho=1.0)


def test_the_command_line_builds_its_flags_from_the_registry(tmp_path: Path) -> None:
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import plugin_method\n"
            "from nxm_deploy.cli import main; sys.argv = ['nxm-deploy', *sys.argv[2:]]; main()")  # fmt: skip
    run = [sys.executable, "-c", code, str(HERE)]
    out = subprocess.run([*run, "train", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--shrink-factor" in out.stdout and "shrink" in out.stdout
    args = ["train", "--model", "m", "--task", "rte", "--method", "asp", "--out", str(tmp_path / "x"),
            "--shrink-factor", "0.5"]  # fmt: skip
    out = subprocess.run([*run, *args], capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.strip() == "error: --shrink-factor only apply to --method shrink, not asp; drop them"
