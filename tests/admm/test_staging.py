"""``nxm_deploy.admm.resumable``: the public answer to "--resume or --overwrite?" that scripts driving
``train`` in a subprocess ask; it says yes exactly when ``train --resume`` would continue a run."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from nxm_deploy.admm import TrainConfig, resumable
from nxm_deploy.admm.checkpoints import plan_run_dir, prepare_run_dir, publish_run_dir
from nxm_deploy.errors import UserError


def test_resumable_is_what_resume_accepts(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = TrainConfig(task="rte", out=str(out), model="m")
    again = dataclasses.replace(cfg, resume=True)
    assert not resumable(out)
    with pytest.raises(UserError, match="no interrupted run"):
        plan_run_dir(again, out)

    stage = plan_run_dir(cfg, out)  # a run that starts, then is killed before it completes
    prepare_run_dir(cfg, stage)
    assert resumable(out) and resumable(str(out))
    assert plan_run_dir(again, out) == stage

    (stage / "nxm.json").write_text("{}\n")  # it completes: the staged run becomes --out
    publish_run_dir(stage, out, keep_checkpoints=False)
    assert not resumable(out)
    with pytest.raises(UserError, match="is a complete run, nothing to resume"):
        plan_run_dir(again, out)


def test_resumable_loads_no_torch() -> None:
    heavy = ("torch", "transformers", "safetensors")
    code = (f"import sys\nfrom nxm_deploy.admm import resumable\nresumable('x')\n"
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))\n")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
