# ruff: noqa: E501  (a table of cases reads best one case per line)
"""A user's mistakes, table-driven, through ``main(argv)`` in-process and through the Python API.

Each case asserts the exit code, one ``error:`` line naming the problem (click's own usage lines
for exit 2), no traceback, and that nothing in the sandbox around ``--out`` changed: every file
and folder of the sandbox (which holds ``--out``, its parent and every input) is snapshotted before
and after. The sandbox is built once: a tiny BERT, a dense and a 2:4 run, their ONNX exports, and
broken variants of each (corrupt, pickled, tampered, empty).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import make_tiny_model, write_run_dir

from nxm_deploy.cli import main
from nxm_deploy.errors import UserError

MAX_SEQ_LEN = 64
CUDA = torch.cuda.is_available()
FAST_PARITY = {"batches": (2,), "seq_lens": (16,)}


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_json(path: Path, **changes: object) -> None:
    body = json.loads(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            body[section][field] = value
        else:
            body[section] = value
    path.write_text(json.dumps(body), encoding="utf-8")


def _poison(weights: Path) -> None:
    """Make the first float tensor of a safetensors file hold a NaN (a run whose training diverged)."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(weights))
    name = next(k for k, v in tensors.items() if v.is_floating_point() and k.endswith("query.weight"))
    tensors[name][0, 0] = float("nan")
    save_file(tensors, str(weights), metadata={"format": "pt"})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path, glue_dir: Path) -> Path:
    """The sandbox: every input a case names, as ``{name}`` placeholders relative to it."""
    import torch
    from transformers import AutoTokenizer

    from nxm_deploy.export import ExportConfig, export

    w = tmp_path_factory.mktemp("bad-input")
    (w / "cwd").mkdir()
    model = make_tiny_model("bert")
    model.save_pretrained(w / "model")
    AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(w / "model")
    write_run_dir(
        w / "dense", make_tiny_model("bert", seed=1), minilm_dir, sparse=False, max_seq_len=MAX_SEQ_LEN
    )
    write_run_dir(
        w / "sparse", make_tiny_model("bert", seed=2), minilm_dir, sparse=True, max_seq_len=MAX_SEQ_LEN
    )
    for name in ("dense", "sparse"):
        export(ExportConfig(run_dir=w / name, out=w / f"exp-{name}", data_dir=glue_dir, **FAST_PARITY))
    # broken models
    _copy(w / "model", w / "model-truncated")
    weights = w / "model-truncated" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    _copy(w / "model", w / "model-garbage")
    (w / "model-garbage" / "model.safetensors").write_bytes(b"not a safetensors file" * 8)
    (w / "model-pickle").mkdir()
    model.config.save_pretrained(w / "model-pickle")
    torch.save(model.state_dict(), w / "model-pickle" / "pytorch_model.bin")
    (w / "empty").mkdir()
    (w / "afile").write_text("just a file\n", encoding="utf-8")
    # broken runs
    _copy(w / "dense", w / "run-corrupt")
    (w / "run-corrupt" / "model.safetensors").write_bytes(b"\x00" * 64)
    _copy(w / "dense", w / "run-badjson")
    (w / "run-badjson" / "nxm.json").write_text("{not json", encoding="utf-8")
    _copy(w / "dense", w / "run-claims-sparse")  # dense weights that claim 2:4
    _edit_json(
        w / "run-claims-sparse" / "nxm.json",
        pattern="2:4",
        layers=json.loads((w / "sparse" / "nxm.json").read_text())["layers"],
    )
    _copy(w / "sparse", w / "nest" / "run")
    _copy(w / "dense", w / "run-mrpc")
    _edit_json(w / "run-mrpc" / "nxm.json", task="MRPC")
    _copy(w / "dense", w / "run-othertok")  # a teacher whose tokenizer has one more token
    tok = AutoTokenizer.from_pretrained(w / "dense")
    tok.add_tokens(["zzqqnewtoken"])
    tok.save_pretrained(w / "run-othertok")
    # tampered exports
    _copy(w / "exp-sparse", w / "exp-escape")
    _edit_json(w / "exp-escape" / "export.json", onnx__file="../afile")
    _copy(w / "exp-sparse", w / "exp-abs-tokenizer")
    _edit_json(w / "exp-abs-tokenizer" / "export.json", tokenizer__files=[str(w / "afile")])
    _copy(w / "exp-sparse", w / "exp-noonnx")
    (w / "exp-noonnx" / "model.onnx").unlink()
    _copy(w / "exp-dense", w / "exp-mrpc")
    _edit_json(w / "exp-mrpc" / "export.json", source_run__task="MRPC")
    _copy(w / "exp-sparse", w / "exp-huge-seq")
    _edit_json(w / "exp-huge-seq" / "export.json", tokenizer__max_seq_len="huge")
    _copy(w / "exp-sparse", w / ".exp-half.x1y2z3ab.partial")  # what a killed export leaves
    _copy(w / "dense", w / "run-nan")  # a diverged run: one weight NaN
    _poison(w / "run-nan" / "model.safetensors")
    (w / "empty.onnx").write_bytes(b"")
    (w / "one-class.csv").write_text(
        "text,label\n" + "".join(f"row {i},pos\n" for i in range(12)), encoding="utf-8"
    )
    from nxm_deploy.runtime.triton import SERVING_FILE, TritonOptions, write_triton_repo

    for name, change in (
        ("nofacts", {"facts": None}),
        ("badbuckets", {"sequence_buckets": [-3]}),
        ("hugeseq", {}),
    ):
        model = write_triton_repo(w / "exp-sparse", w / "triton-bad", TritonOptions(name=name)).path
        body = json.loads((model / SERVING_FILE).read_text(encoding="utf-8"))
        body.update(change)
        if name == "hugeseq":
            body["facts"]["max_seq_len"] = "huge"
        (model / SERVING_FILE).write_text(json.dumps({k: v for k, v in body.items() if v is not None}))
    (w / "garbage.onnx").write_bytes(b"\x08\x01garbage")
    (w / "garbage.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    # outputs in the way
    (w / "foreign").mkdir()
    (w / "foreign" / "notes.txt").write_text("the user's own notes\n", encoding="utf-8")
    (w / "olddemo").mkdir()
    (w / "olddemo" / "demo.json").write_text(json.dumps({"config": {"task": "other"}}), encoding="utf-8")
    (w / "triton" / "m").mkdir(parents=True)
    # broken GLUE directories
    for root, train_text in (("glue-header", "sentence\tlabel\n"), ("glue-empty", "")):
        for task, dev in (("SST-2", "sentence\tlabel\nit is fine .\t1\n"), ("RTE", None)):
            (w / root / task).mkdir(parents=True)
            text = (
                train_text if task == "SST-2" else "index\tsentence1\tsentence2\tlabel\n" * bool(train_text)
            )
            (w / root / task / "train.tsv").write_text(text, encoding="utf-8")
            if dev is None:
                shutil.copy(glue_dir / "RTE" / "dev.tsv", w / root / task / "dev.tsv")
            else:
                (w / root / task / "dev.tsv").write_text(dev, encoding="utf-8")
    (w / "glue-nodev" / "RTE").mkdir(parents=True)
    (w / "glue-nodev" / "RTE" / "dev.tsv").write_text(
        "index\tsentence1\tsentence2\tlabel\n", encoding="utf-8"
    )
    return w


def snapshot(root: Path) -> dict[str, tuple[int, int] | None]:
    out: dict[str, tuple[int, int] | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = None
        for f in filenames:
            st = os.stat(os.path.join(dirpath, f))
            out[os.path.relpath(os.path.join(dirpath, f), root)] = (st.st_size, st.st_mtime_ns)
    return out


T = "{model}"  # placeholders: any sandbox name in braces; {glue} is the real GLUE directory
TRAIN = ["train", "--model", T, "--task", "rte", "--data-dir", "{glue}", "--method", "admm", "--out", "{new}"]
SST = ["--task", "sst-2"]


def train(*extra: str, method: str = "admm", base: list[str] | None = None) -> list[str]:
    args = list(base or TRAIN)
    args[args.index("--method") + 1] = method
    return args + list(extra)


def replace(args: list[str], option: str, value: str) -> list[str]:
    args = list(args)
    args[args.index(option) + 1] = value
    return args


def sub(args: list[str], old: str, new: str) -> list[str]:
    return [new if a == old else a for a in args]


EXPORT = ["export", "{sparse}", "--out", "{new}", "--data-dir", "{glue}"]
BENCH = [
    "bench",
    "--dense",
    "{exp-dense}",
    "--sparse",
    "{exp-sparse}",
    "--task",
    "rte",
    "--data-dir",
    "{glue}",
    "--out",
    "{new}",
]
SENS = ["sensitivity", "{dense}", "--out", "{new}.json", "--data-dir", "{glue}"]
SENS_OUT = "{new}.json"

# (id, argv, exit code, text the error line must hold)
# fmt: off
CASES: list[tuple[str, list[str], int, str]] = [
    # ---- train: the model ------------------------------------------------------------------------
    ("train-model-missing", replace(TRAIN, "--model", "{world}/nope"), 1, "does not exist"),
    ("train-model-file", replace(TRAIN, "--model", "{afile}"), 1, "is a file"),
    ("train-model-empty-dir", replace(TRAIN, "--model", "{empty}"), 1, "cannot load model"),
    ("train-model-truncated", replace(TRAIN, "--model", "{model-truncated}"), 1, "cannot load model"),
    ("train-model-garbage", replace(TRAIN, "--model", "{model-garbage}"), 1, "cannot load model"),
    ("train-model-pickle", replace(TRAIN, "--model", "{model-pickle}"), 1, "only pickled weights"),
    ("train-no-model", [a for a in TRAIN if a not in ("--model", T)], 1, "pass --model"),
    ("train-model-and-init", train("--init-from", "{dense}"), 1, "not both"),
    ("train-init-missing", train("--init-from", "{world}/nope", base=TRAIN[:1] + TRAIN[3:]), 1, "does not exist"),
    ("train-init-sparse", train("--init-from", "{sparse}", base=TRAIN[:1] + TRAIN[3:]), 1, "is sparse"),
    ("train-init-not-run", train("--init-from", "{empty}", base=TRAIN[:1] + TRAIN[3:]), 1, "not a run directory"),
    ("train-init-badjson", train("--init-from", "{run-badjson}", base=TRAIN[:1] + TRAIN[3:]), 1, "not valid JSON"),
    ("train-init-corrupt", train("--init-from", "{run-corrupt}", "--epochs", "4", base=TRAIN[:1] + TRAIN[3:]),
     1, "cannot load model"),
    ("train-init-other-task", train("--init-from", "{run-mrpc}", base=TRAIN[:1] + TRAIN[3:]), 1, "MRPC"),
    # ---- train: task, data, method, pattern --------------------------------------------------------
    ("train-task-unknown", replace(TRAIN, "--task", "imdb"), 1, "unknown GLUE task"),
    ("train-method-unknown", train(method="magic"), 2, "Invalid value for '--method'"),
    ("train-pattern-5:4", train("--pattern", "5:4"), 1, "invalid N:M pattern 5:4"),
    ("train-pattern-abc", train("--pattern", "abc"), 1, "invalid N:M pattern"),
    ("train-pattern-0:4", train("--pattern", "0:4"), 1, "invalid N:M pattern"),
    ("train-pattern-2:7", train("--pattern", "2:7"), 1, "2:7"),
    ("train-include-nothing", train("--include", "nomatch*"), 1, "no layers"),
    ("train-data-missing", replace(TRAIN, "--data-dir", "{world}/nope"), 1, "does not exist"),
    ("train-data-file", replace(TRAIN, "--data-dir", "{afile}"), 1, "is not a directory"),
    ("train-data-no-task", replace(TRAIN, "--data-dir", "{empty}"), 1, "no RTE dev file"),
    ("train-data-header-only", replace(TRAIN, "--data-dir", "{glue-header}"), 1, "no rows after the header"),
    ("train-data-empty-file", replace(TRAIN, "--data-dir", "{glue-empty}"), 1, "empty file"),
    ("train-sst-header-only", replace(replace(TRAIN, "--data-dir", "{glue-header}"), "--task", "sst-2"), 1,
     "no rows after the header"),
    # ---- train: numbers ----------------------------------------------------------------------------
    ("train-epochs-0", train("--epochs", "0"), 1, "--epochs must be positive"),
    ("train-epochs-text", train("--epochs", "three"), 2, "Invalid value for '--epochs'"),
    ("train-lr-negative", train("--lr", "-1"), 1, "--lr must be positive"),
    ("train-batch-0", train("--batch-size", "0"), 1, "--batch-size must be positive"),
    ("train-seqlen-0", train("--max-seq-len", "0"), 1, "--max-seq-len must be positive"),
    ("train-seqlen-too-long", train("--max-seq-len", "4096"), 1, "above the model's position limit"),
    ("train-seqlen-too-short", train("--max-seq-len", "4"), 1, "cannot hold the special tokens"),
    ("train-train-samples-0", train("--max-train-samples", "0"), 1, "--max-train-samples must be positive"),
    ("train-eval-samples-neg", train("--max-eval-samples", "-3"), 1, "--max-eval-samples must be positive"),
    ("train-seed-text", train("--seed", "abc"), 2, "Invalid value for '--seed'"),
    ("train-warmup-1", train("--warmup-ratio", "1"), 1, "--warmup-ratio must be within"),
    ("train-save-steps-0", train("--save-steps", "0"), 1, "--save-steps must be positive"),
    ("train-logging-steps-0", train("--logging-steps", "0"), 1, "--logging-steps must be positive"),
    ("train-rho-0", train("--rho", "0"), 1, "--rho must be positive"),
    ("train-rho-growth", train("--rho-growth", "0.5"), 1, "--rho-growth must be at least 1"),
    ("train-rho-max-below", train("--rho", "1", "--rho-max", "0.1"), 1, "is below --rho"),
    ("train-admm-interval-0", train("--admm-interval", "0"), 1, "--admm-interval must be positive"),
    ("train-admm-penalty", train("--admm-penalty", "nope"), 2, "Invalid value for '--admm-penalty'"),
    ("train-admm-epochs-over", train("--admm-epochs", "5"), 1, "epochs"),
    ("train-dense-epochs-over", train("--dense-epochs", "9", method="asp"), 1, "epochs"),
    ("train-kd-alpha-2", train("--kd-alpha", "2"), 1, "--kd-alpha must be within"),
    ("train-srste-decay-neg", train("--srste-decay", "-1", method="srste"), 1, "--srste-decay must be 0 or more"),
    ("train-srste-decay-mode", train("--srste-decay-mode", "l1", method="srste"), 2, "Invalid value for '--srste-decay-mode'"),
    ("train-mask-interval-0", train("--mask-interval", "0", method="srste"), 1, "--mask-interval must be positive"),
    ("train-masked-epochs-neg", train("--masked-epochs", "-1", method="srste"), 1, "--masked-epochs must be 0 or more"),
    ("train-masked-epochs-over", train("--masked-epochs", "3", method="srste"), 1, "--masked-epochs 3 does not fit the budget"),
    ("train-switch-fraction-1", train("--freeze-variance", "--switch-fraction", "1", method="srste"), 1, "--switch-fraction must be within (0, 1)"),
    # ---- train: options that the method would ignore --------------------------------------------------
    ("train-rho-for-dense", train("--rho", "0.1", method="dense"), 1, "--rho only apply to --method admm"),
    ("train-rho-max-for-asp", train("--rho-max", "5", method="asp"), 1, "--rho-max only apply to --method admm"),
    ("train-interval-oneshot", train("--admm-interval", "4", method="oneshot"), 1, "only apply to --method admm"),
    ("train-penalty-for-asp", train("--admm-penalty", "loss", method="asp"), 1, "only apply to --method admm"),
    ("train-admm-epochs-asp", train("--admm-epochs", "1", method="asp"), 1, "only apply to --method admm"),
    ("train-dense-epochs-admm", train("--dense-epochs", "1"), 1, "--dense-epochs only apply to --method asp"),
    ("train-srste-decay-admm", train("--srste-decay", "1e-3"), 1, "--srste-decay only apply to --method srste"),
    ("train-freeze-variance-asp", train("--freeze-variance", method="asp"), 1, "--freeze-variance only apply to --method srste"),
    ("train-masked-epochs-admm", train("--masked-epochs", "1"), 1, "--masked-epochs only apply to --method srste"),
    ("train-switch-no-freeze", train("--switch-fraction", "0.5", method="srste"), 1, "--switch-fraction only applies with --freeze-variance"),
    ("train-kd-alpha-no-teacher", train("--kd-alpha", "0.3"), 1, "pass --teacher or drop them"),
    ("train-kd-temp-no-teacher", train("--kd-temperature", "4"), 1, "pass --teacher or drop them"),
    # ---- train: teacher ------------------------------------------------------------------------------
    ("train-teacher-missing", train("--teacher", "{world}/nope"), 1, "does not exist"),
    ("train-teacher-not-run", train("--teacher", "{empty}"), 1, "not a run directory"),
    ("train-teacher-sparse", train("--teacher", "{sparse}"), 1, "is a sparse run"),
    ("train-teacher-other-tokenizer", train("--teacher", "{run-othertok}"), 1, "tokenizes differently"),
    ("train-teacher-other-task", train("--teacher", "{run-mrpc}"), 1, "was trained on MRPC"),
    ("train-teacher-for-dense", train("--teacher", "{dense}", method="dense"), 1, "takes no teacher"),
    # ---- train: --out, --resume, --overwrite ---------------------------------------------------------
    ("train-out-empty", replace(TRAIN, "--out", ""), 1, "--out is empty"),
    ("train-out-dot", replace(TRAIN, "--out", "."), 1, "current directory or one of its parents"),
    ("train-out-parent", replace(TRAIN, "--out", ".."), 1, "current directory or one of its parents"),
    ("train-out-root", replace(TRAIN, "--out", "/"), 1, "file-system root"),
    ("train-out-home", replace(TRAIN, "--out", "~"), 1, "home directory"),
    ("train-out-file", replace(TRAIN, "--out", "{afile}"), 1, "is a file"),
    ("train-out-under-file", replace(TRAIN, "--out", "{afile}/run"), 1, "lies under the file"),
    ("train-out-existing-run", replace(TRAIN, "--out", "{dense}"), 1, "already exists; pass --overwrite"),
    ("train-out-foreign-overwrite", train("--overwrite", base=replace(TRAIN, "--out", "{foreign}")), 1,
     "holds files nxm-deploy did not write (notes.txt)"),
    ("train-out-empty-overwrite", train("--overwrite", base=replace(TRAIN, "--out", "")), 1, "--out is empty"),
    ("train-out-dot-overwrite", train("--overwrite", base=replace(TRAIN, "--out", ".")), 1, "current directory"),
    ("train-resume-nothing", train("--resume"), 1, "no interrupted run"),
    ("train-resume-complete", train("--resume", base=replace(TRAIN, "--out", "{dense}")), 1,
     "is a complete run, nothing to resume"),
    ("train-resume-and-overwrite", train("--resume", "--overwrite"), 1, "--resume or --overwrite, not both"),
    # ---- export -------------------------------------------------------------------------------------
    ("export-run-missing", sub(EXPORT, "{sparse}", "{world}/nope"), 1, "does not exist"),
    ("export-run-file", sub(EXPORT, "{sparse}", "{afile}"), 1, "not a directory"),
    ("export-run-empty", sub(EXPORT, "{sparse}", "{empty}"), 1, "not a run directory (no nxm.json)"),
    ("export-run-is-export", sub(EXPORT, "{sparse}", "{exp-sparse}"), 1, "not a run directory"),
    ("export-run-badjson", sub(EXPORT, "{sparse}", "{run-badjson}"), 1, "not valid JSON"),
    ("export-run-corrupt", sub(EXPORT, "{sparse}", "{run-corrupt}"), 1, "not a readable safetensors file"),
    ("export-run-breaks-pattern", sub(EXPORT, "{sparse}", "{run-claims-sparse}"), 1, "breaks 2:4"),
    ("export-opset-5", [*EXPORT, "--opset", "5"], 1, "--opset 5 is not supported"),
    ("export-opset-99", [*EXPORT, "--opset", "99"], 1, "--opset 99 is not supported"),
    ("export-opset-text", [*EXPORT, "--opset", "new"], 2, "Invalid value for '--opset'"),
    ("export-engine-bad", [*EXPORT, "--engine", "tflite"], 2, "Invalid value for '--engine'"),
    ("export-precision-bad", [*EXPORT, "--precision", "int3"], 2, "Invalid value for '--precision'"),
    ("export-fp16-without-trt", [*EXPORT, "--precision", "fp16"], 1, "--precision fp16 set the TensorRT engine"),
    ("export-shapes-without-trt", [*EXPORT, "--min-shape", "1x8", "--opt-shape", "8x64", "--max-shape", "8x64"],
     1, "--min/--opt/--max-shape set the TensorRT engine"),
    ("export-shape-partial", [*EXPORT, "--engine", "trt", "--min-shape", "1x8"], 2, "together"),
    ("export-shape-bad", [*EXPORT, "--engine", "trt", "--min-shape", "1by8", "--opt-shape", "8x64",
                          "--max-shape", "8x64"], 1, "invalid shape '1by8'"),
    ("export-shape-too-long", [*EXPORT, "--engine", "trt", "--min-shape", "1x8", "--opt-shape", "8x64",
                               "--max-shape", "8x4096"], 1, "position limit"),
    ("export-out-existing", sub(EXPORT, "{new}", "{exp-dense}"), 1, "already exists; pass --overwrite"),
    ("export-out-foreign", [*sub(EXPORT, "{new}", "{foreign}"), "--overwrite"], 1, "did not write (notes.txt)"),
    ("export-out-empty", sub(EXPORT, "{new}", ""), 1, "--out is empty"),
    ("export-out-dot", sub(EXPORT, "{new}", "."), 1, "current directory"),
    ("export-out-root-overwrite", [*sub(EXPORT, "{new}", "/"), "--overwrite"], 1, "file-system root"),
    ("export-out-file", sub(EXPORT, "{new}", "{afile}"), 1, "is a file"),
    ("export-out-under-file", sub(EXPORT, "{new}", "{afile}/x"), 1, "lies under the file"),
    ("export-out-is-run", [*sub(EXPORT, "{new}", "{sparse}"), "--overwrite"], 1, "would replace the run"),
    ("export-out-above-run", [*sub(sub(EXPORT, "{new}", "{nest}"), "{sparse}", "{nest}/run"), "--overwrite"], 1, "would replace the run"),
    ("export-data-missing", sub(EXPORT, "{glue}", "{world}/nope"), 1, "does not exist"),
    ("export-triton-file", [*EXPORT, "--triton-repo", "{afile}"], 1, "is a file"),
    ("export-triton-exists", [*EXPORT, "--triton-repo", "{triton}", "--triton-name", "m"], 1, "already exists"),
    ("export-triton-name-bad", [*EXPORT, "--triton-repo", "{triton}", "--triton-name", "../up"], 1,
     "invalid Triton model name"),
    ("export-triton-name-no-repo", [*EXPORT, "--triton-name", "m"], 1, "--triton-name describe the Triton model: add --triton-repo"),
    ("export-triton-provider-no-repo", [*EXPORT, "--triton-ort-provider", "cuda"], 1, "add --triton-repo DIR or drop them"),
    ("export-triton-batch-0", [*EXPORT, "--triton-repo", "{triton}", "--triton-max-batch", "0"], 1,
     "max batch size must be at least 1"),
    # ---- check --------------------------------------------------------------------------------------
    ("check-missing", ["check", "{world}/nope"], 1, "does not exist"),
    ("check-empty-dir", ["check", "{empty}"], 1, "{empty}"),
    ("check-text-file", ["check", "{afile}"], 1, "{afile}"),
    ("check-garbage-onnx", ["check", "{garbage.onnx}"], 1, "garbage.onnx"),
    ("check-garbage-safetensors", ["check", "{garbage.safetensors}"], 1, "garbage.safetensors"),
    ("check-pattern-bad", ["check", "{sparse}", "--pattern", "5:4"], 1, "invalid N:M pattern 5:4"),
    ("check-dense-claims-sparse", ["check", "{run-claims-sparse}"], 1, "breaks 2:4"),
    ("check-include-nothing", ["check", "{sparse}", "--include", "nomatch*"], 1, "no tensor"),
    ("check-exclude-all", ["check", "{sparse}", "--exclude", "*"], 1, "no tensor"),
    ("check-run-badjson", ["check", "{run-badjson}"], 1, "not valid JSON"),
    ("check-run-corrupt", ["check", "{run-corrupt}"], 1, "not a readable safetensors file"),
    ("check-export-escape", ["check", "{exp-escape}"], 1, "points outside it"),
    ("check-export-no-onnx", ["check", "{exp-noonnx}"], 1, "model.onnx"),
    ("check-no-args", ["check"], 2, "Missing argument 'PATH'"),
    # ---- bench --------------------------------------------------------------------------------------
    ("bench-dense-missing", replace(BENCH, "--dense", "{world}/nope"), 1, "does not exist"),
    ("bench-sparse-missing", replace(BENCH, "--sparse", "{world}/nope"), 1, "does not exist"),
    ("bench-swapped", replace(replace(BENCH, "--dense", "{exp-sparse}"), "--sparse", "{exp-dense}"), 1, "dense"),
    ("bench-dense-as-sparse", replace(BENCH, "--sparse", "{exp-dense}"), 1, "dense"),
    ("bench-run-dir-ort", replace(BENCH, "--sparse", "{sparse}"), 1, "run directory"),
    ("bench-task-unknown", replace(BENCH, "--task", "imdb"), 1, "unknown GLUE task"),
    ("bench-task-mismatch", replace(BENCH, "--task", "mrpc"), 1, "RTE"),
    ("bench-tasks-differ", replace(BENCH, "--dense", "{exp-mrpc}"), 1, "MRPC"),
    ("bench-escape", replace(BENCH, "--sparse", "{exp-escape}"), 1, "points outside it"),
    ("bench-no-onnx", replace(BENCH, "--sparse", "{exp-noonnx}"), 1, "model.onnx"),
    ("bench-batch-text", [*BENCH, "--batch-sizes", "a,b"], 1, "--batch-sizes takes comma-separated"),
    ("bench-batch-0", [*BENCH, "--batch-sizes", "0"], 1, "--batch-sizes takes comma-separated"),
    ("bench-batch-empty", [*BENCH, "--batch-sizes", ""], 1, "--batch-sizes takes comma-separated"),
    ("bench-seq-4", [*BENCH, "--seq-lens", "4"], 1, "--seq-lens must be at least"),
    ("bench-seq-too-long", [*BENCH, "--seq-lens", "4096"], 1, "4096"),
    ("bench-threads-0", [*BENCH, "--threads", "0"], 1, "--threads must be a positive integer"),
    ("bench-eval-batch-0", [*BENCH, "--eval-batch-size", "0"], 1, "--eval-batch-size must be"),
    ("bench-repeats-0", [*BENCH, "--repeats", "0"], 1, "repeats"),
    ("bench-warmup-neg", [*BENCH, "--warmup", "-1"], 1, "warmup"),
    ("bench-min-time-neg", [*BENCH, "--min-time", "-1"], 1, "min"),
    ("bench-backend-bad", [*BENCH, "--backend", "tpu"], 2, "Invalid value for '--backend'"),
    ("bench-backend-trt", [*BENCH, "--backend", "trt"], 3, "TensorRT"),
    ("bench-out-existing", sub(BENCH, "{new}", "{exp-dense}"), 1, "would replace"),
    ("bench-out-foreign", [*sub(BENCH, "{new}", "{foreign}"), "--overwrite"], 1, "did not write (notes.txt)"),
    ("bench-out-empty", sub(BENCH, "{new}", ""), 1, "--out is empty"),
    ("bench-out-file", sub(BENCH, "{new}", "{afile}"), 1, "is a file"),
    ("bench-out-dot", sub(BENCH, "{new}", "."), 1, "current directory"),
    ("bench-data-missing", sub(BENCH, "{glue}", "{world}/nope"), 1, "does not exist"),
    ("bench-data-header-only", sub(BENCH, "{glue}", "{glue-nodev}"), 1, "no rows after the header"),
    # ---- sensitivity --------------------------------------------------------------------------------
    ("sensitivity-run-missing", sub(SENS, "{dense}", "{world}/nope"), 1, "does not exist"),
    ("sensitivity-run-not-run", sub(SENS, "{dense}", "{empty}"), 1, "not a run directory (no nxm.json)"),
    ("sensitivity-run-is-export", sub(SENS, "{dense}", "{exp-dense}"), 1, "not a run directory"),
    ("sensitivity-run-file", sub(SENS, "{dense}", "{afile}"), 1, "not a directory"),
    ("sensitivity-run-sparse", sub(SENS, "{dense}", "{sparse}"), 1, "is sparse (2:4); sensitivity analyses a dense run"),
    ("sensitivity-run-badjson", sub(SENS, "{dense}", "{run-badjson}"), 1, "not valid JSON"),
    ("sensitivity-run-corrupt", sub(SENS, "{dense}", "{run-corrupt}"), 1, "cannot load model"),
    ("sensitivity-rows-0", [*SENS, "--rows", "0"], 1, "--rows must be a positive integer, got 0"),
    ("sensitivity-rows-negative", [*SENS, "--rows", "-5"], 1, "--rows must be a positive integer"),
    ("sensitivity-rows-text", [*SENS, "--rows", "many"], 2, "Invalid value for '--rows'"),
    ("sensitivity-budget-negative", [*SENS, "--budget", "-1"], 1, "--budget must be a number of points, 0 or more"),
    ("sensitivity-budget-nan", [*SENS, "--budget", "nan"], 1, "--budget must be"),
    ("sensitivity-batch-0", [*SENS, "--batch-size", "0"], 1, "--batch-size must be a positive integer"),
    ("sensitivity-pattern-bad", [*SENS, "--pattern", "5:4"], 1, "invalid N:M pattern 5:4"),
    ("sensitivity-include-nothing", [*SENS, "--include", "nomatch*"], 1, "no layers selected"),
    ("sensitivity-task-other", [*SENS, "--task", "mrpc"], 1, "was trained on RTE, not MRPC"),
    ("sensitivity-task-unknown", [*SENS, "--task", "imdb"], 1, "unknown GLUE task"),
    ("sensitivity-task-and-data", [*SENS, "--task", "rte", "--data", "{afile}"], 2, "not both"),
    ("sensitivity-data-dir-missing", sub(SENS, "{glue}", "{world}/nope"), 1, "does not exist"),
    ("sensitivity-data-header-only", sub(SENS, "{glue}", "{glue-header}"), 1, "no rows after the header"),
    ("sensitivity-out-empty", sub(SENS, SENS_OUT, ""), 1, "--out is empty"),
    ("sensitivity-out-dir", sub(SENS, SENS_OUT, "{empty}"), 1, "is a directory"),
    ("sensitivity-out-not-json", sub(SENS, SENS_OUT, "{afile}"), 1, "must name a .json file"),
    ("sensitivity-out-under-file", sub(SENS, SENS_OUT, "{afile}/s.json"), 1, "lies under the file"),
    ("sensitivity-out-unwritable", sub(SENS, SENS_OUT, "/proc/1/s.json"), 1, "/proc/1 is not writable"),
    ("sensitivity-out-existing", sub(SENS, SENS_OUT, "{exp-dense}/export.json"), 1, "already exists; pass --overwrite"),
    ("sensitivity-out-foreign-overwrite", [*sub(SENS, SENS_OUT, "{exp-dense}/export.json"), "--overwrite"], 1,
     "was not written by 'nxm-deploy sensitivity'"),
    # ---- demo ---------------------------------------------------------------------------------------
    ("demo-threads-0", ["demo", "--out", "{new}", "--data-dir", "{glue}", "--threads", "0"], 1,
     "--threads must be a positive integer"),
    ("demo-out-file", ["demo", "--out", "{afile}", "--data-dir", "{glue}"], 1, "is a file"),
    ("demo-out-empty", ["demo", "--out", "", "--data-dir", "{glue}"], 1, "--out is empty"),
    ("demo-out-dot-fresh", ["demo", "--out", ".", "--data-dir", "{glue}", "--fresh"], 1, "current directory"),
    ("demo-out-root-fresh", ["demo", "--out", "/", "--data-dir", "{glue}", "--fresh"], 1, "file-system root"),
    ("demo-out-foreign", ["demo", "--out", "{foreign}", "--data-dir", "{glue}"], 1, "not a demo directory"),
    ("demo-out-foreign-fresh", ["demo", "--out", "{foreign}", "--data-dir", "{glue}", "--fresh"], 1,
     "did not write (notes.txt)"),
    ("demo-other-settings", ["demo", "--out", "{olddemo}", "--data-dir", "{glue}"], 1, "other settings"),
    ("demo-data-missing", ["demo", "--out", "{new}", "--data-dir", "{world}/nope"], 1, "does not exist"),
    ("demo-data-header-only", ["demo", "--out", "{new}", "--data-dir", "{glue-header}"], 1, "no rows"),
    ("demo-threads-text", ["demo", "--out", "{new}", "--threads", "many"], 2, "Invalid value for '--threads'"),
    ("unknown-command", ["deploy"], 2, "No such command 'deploy'"),
    # ---- second pass (issue 36): non-finite floats, refused up front in every command -----------------
    ("train-lr-inf", train("--lr", "inf"), 1, "--lr must be a finite number, got inf"),
    ("train-weight-decay-inf", train("--weight-decay", "inf"), 1, "--weight-decay must be a finite number, got inf"),
    ("train-srste-decay-nan", train("--srste-decay", "nan", method="srste"), 1, "--srste-decay must be a finite number, got nan"),
    ("train-epochs-nan", train("--epochs", "nan"), 1, "--epochs must be a finite number, got nan"),
    ("train-rho-neg-inf", train("--rho", "-inf"), 1, "--rho must be a finite number, got -inf"),
    ("train-kd-alpha-nan", train("--teacher", "{dense}", "--kd-alpha", "nan"), 1, "--kd-alpha must be a finite number"),
    ("train-validation-fraction-nan", ["train", "--model", T, "--data", "{one-class.csv}", "--validation-fraction", "nan",
                                       "--method", "dense", "--out", "{new}"], 1, "--validation-fraction must be a finite number"),
    ("export-smooth-alpha-nan", [*EXPORT, "--quantize", "int8", "--smooth-alpha", "nan"], 1, "--smooth-alpha must be a finite number, got nan"),
    ("export-min-agreement-inf", [*EXPORT, "--quantize", "int8", "--min-agreement", "inf"], 1, "--min-agreement must be a finite number"),
    ("bench-min-time-inf", [*BENCH, "--min-time", "inf"], 1, "--min-time must be a finite number, got inf"),
    ("bench-max-time-nan", [*BENCH, "--max-time", "nan"], 1, "--max-time must be a finite number, got nan"),
    ("sensitivity-budget-inf", [*SENS, "--budget", "inf"], 1, "--budget must be a finite number, got inf"),
    # ---- second pass: --out where the access check passes but nothing can be created ------------------
    ("train-out-proc", replace(TRAIN, "--out", "/proc/nxm-run"), 1, "--out /proc/nxm-run: cannot create anything in /proc"),
    ("export-out-proc", sub(EXPORT, "{new}", "/proc/nxm-export"), 1, "--out /proc/nxm-export: cannot create anything in /proc"),
    ("bench-out-proc", sub(BENCH, "{new}", "/proc/nxm-report"), 1, "--out /proc/nxm-report: cannot create anything in /proc"),
    # ---- second pass: options that would be ignored -----------------------------------------------------
    ("export-calibration-rows-no-quantize", [*EXPORT, "--calibration-rows", "8"], 1,
     "--calibration-rows only applies with --quantize; add --quantize int8 or drop them"),
    ("export-smooth-alpha-no-quantize", [*EXPORT, "--smooth-alpha", "0.5"], 1, "--smooth-alpha only applies with --quantize"),
    ("export-calibration-method-dynamic", [*EXPORT, "--quantize", "int8-dynamic", "--calibration-method", "entropy"], 1,
     "--calibration-method only applies to --quantize int8 (int8-dynamic calibrates nothing); drop them"),
    ("train-data-one-class", ["train", "--model", T, "--data", "{one-class.csv}", "--method", "dense", "--out", "{new}"], 1,
     "column 'label': every training row has the label 'pos'; a classifier needs at least 2 classes"),
    # ---- second pass: checks that passed, and messages that misled ---------------------------------------
    ("check-dense-run-pattern", ["check", "{dense}", "--pattern", "2:4"], 1, "(dense run): bert.encoder.layer.0.attention.output.dense.weight breaks 2:4 along axis 1"),
    ("check-empty-onnx", ["check", "{empty.onnx}"], 1, "empty.onnx is an empty file (0 bytes), not an ONNX model"),
    ("check-partial-export", ["check", "{.exp-half.x1y2z3ab.partial}/model.onnx"], 1,
     "an incomplete export (still being written, or left by a killed 'nxm-deploy export'); check the finished"),
    ("check-partial-export-dir", ["check", "{.exp-half.x1y2z3ab.partial}"], 1, "an incomplete export"),
    ("bench-seq-above-positions", [*BENCH, "--seq-lens", "256"], 1,
     "--seq-lens 256 exceeds the position limit of --dense {exp-dense} (128 tokens); pass --seq-lens up to 128"),
    ("export-run-nan", sub(EXPORT, "{sparse}", "{run-nan}"), 1, "the weights of {run-nan} are not finite (bert.encoder.layer.0.attention.self.query.weight holds 1 NaN"),
    *([] if CUDA else [("train-fp16-on-cpu", train("--mixed-precision", "fp16"), 3, "--mixed-precision fp16 needs a CUDA GPU")]),
]
# fmt: on


def _argv(args: list[str], world: Path, glue: Path) -> list[str]:
    names = {p.name: str(p) for p in world.iterdir()}
    names |= {"world": str(world), "glue": str(glue), "new": str(world / "new-out")}
    out = []
    for a in args:
        for key, value in names.items():
            a = a.replace("{" + key + "}", value)
        out.append(a)
    return out


@pytest.mark.parametrize(("argv", "code", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_one_line(
    argv: list[str],
    code: int,
    text: str,
    world: Path,
    glue_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(world / "cwd")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = _argv(argv, world, glue_dir)
    before = snapshot(world)
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(args)
    finally:  # a case that wrongly succeeded must not spoil the next ones
        shutil.rmtree(world / "new-out", ignore_errors=True)
    err = capsys.readouterr().err
    assert exit_info.value.code == code, err
    assert "Traceback" not in err, err
    text = _argv([text], world, glue_dir)[0]
    if code == 2:  # click's usage error: its usage lines and one "Error: ..." line
        assert [line for line in err.splitlines() if line.startswith("Error: ")] == [
            line for line in err.splitlines() if "Error" in line
        ], err
        assert text in err, err
    else:
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, err
        assert text in errors[0], err
        assert errors[0] == err.strip().splitlines()[-1], err  # the line is the last word
    assert snapshot(world) == before, "files around --out changed"


def test_the_table_is_big_enough() -> None:
    by_command: dict[str, int] = {}
    for _, argv, _, _ in CASES:
        by_command[argv[0]] = by_command.get(argv[0], 0) + 1
    assert sum(by_command.values()) + len(API_CASES) >= 120, by_command


# ---- the Python API: the same mistakes raise a UserError with one line ---------------------------------


def _api_cases() -> list[tuple[str, Callable[[Path], object], str]]:
    from nxm_deploy import nm
    from nxm_deploy.admm import TrainConfig, train
    from nxm_deploy.bench import BenchConfig
    from nxm_deploy.check import check
    from nxm_deploy.export import ExportConfig, export
    from nxm_deploy.runtime import Predictor
    from nxm_deploy.runtime.triton import TritonOptions, TritonRequests, write_triton_repo
    from nxm_deploy.sensitivity import SensitivityConfig, sensitivity

    return [
        (
            "TrainConfig-lr",
            lambda w: TrainConfig(task="rte", out="x", model="m", lr=0),
            "lr must be positive",  # the library names its parameter; the CLI says --lr
        ),
        (
            "TrainConfig-rho-dense",
            lambda w: TrainConfig(task="rte", out="x", model="m", method="dense", rho=1.0),
            "rho only apply to method admm",
        ),
        ("TrainConfig-no-model", lambda w: TrainConfig(task="rte", out="x"), "pass model"),
        (
            "train-task",
            lambda w: train(TrainConfig(task="nope", out=str(w / "x"), model=str(w / "model"))),
            "unknown GLUE task",
        ),
        ("train-out-home", lambda w: train(TrainConfig(task="rte", out="~", model=str(w / "model"))), "home"),
        (
            "ExportConfig-opset",
            lambda w: ExportConfig(run_dir=w / "sparse", out=w / "x", opset=3),
            "opset 3 is not supported",  # the CLI says --opset
        ),
        ("export-missing", lambda w: export(ExportConfig(run_dir=w / "nope", out=w / "x")), "does not exist"),
        (
            "BenchConfig-threads",
            lambda w: BenchConfig(dense="a", sparse="b", task="rte", out="c", threads=0),
            "threads must be a positive integer, got 0",  # the CLI says --threads
        ),
        ("check-missing", lambda w: check(w / "nope"), "does not exist"),
        ("Predictor-missing", lambda w: Predictor.from_export(w / "nope"), "does not exist"),
        ("Predictor-escape", lambda w: Predictor.from_export(w / "exp-escape"), "points outside it"),
        ("Predictor-empty", lambda w: Predictor.from_export(w / "exp-sparse").predict([]), "empty"),
        ("nm-pattern", lambda w: nm.parse_pattern("4:2"), "invalid N:M pattern"),
        (
            "SensitivityConfig-rows",
            lambda w: SensitivityConfig(run_dir=w / "dense", out=w / "s.json", rows=0),
            "rows must be a positive integer",
        ),
        (
            "sensitivity-sparse",
            lambda w: sensitivity(SensitivityConfig(run_dir=w / "sparse", out=w / "s.json")),
            "is sparse",
        ),
        # ---- second pass (issue 36) ----
        (
            "TrainConfig-weight-decay-inf",
            lambda w: TrainConfig(task="rte", out="x", model="m", weight_decay=float("inf")),
            "weight_decay must be a finite number, got inf",
        ),
        (
            "ExportConfig-smooth-alpha-no-quantize",
            lambda w: ExportConfig(run_dir=w / "sparse", out=w / "x", smooth_alpha=0.5),
            "smooth_alpha only applies with quantize",
        ),
        (
            "ExportConfig-calibration-rows-dynamic",
            lambda w: ExportConfig(
                run_dir=w / "sparse", out=w / "x", quantize="int8-dynamic", calibration_rows=8
            ),
            "calibration_rows only applies to quantize int8",
        ),
        (
            "Predictor-max-seq-len-huge",
            lambda w: Predictor.from_export(w / "exp-huge-seq"),
            "tokenizer.max_seq_len must be a positive integer, got 'huge'",
        ),
        (
            "Triton-writer-max-seq-len-huge",
            lambda w: write_triton_repo(w / "exp-huge-seq", w / "new-out"),
            "tokenizer.max_seq_len must be a positive integer, got 'huge'",
        ),
        (
            "Predictor-lone-surrogate",
            lambda w: Predictor.from_export(w / "exp-sparse").predict(
                [("fine", "ok"), ("\x00\ud800x", "ok")]
            ),
            "input 1 (sentence 1 of the pair) is not valid Unicode text: '\\ud800' at character 1 is a lone surrogate",
        ),
        (
            "Predictor-lone-surrogate-in-pair",
            lambda w: Predictor.from_export(w / "exp-sparse").predict([("fine", "a\udcff")]),
            "input 0 (sentence 2 of the pair) is not valid Unicode text",
        ),
        (
            "Predictor-threads-negative",
            lambda w: Predictor.from_export(w / "exp-sparse", threads=-1),
            "threads must be a positive integer (or None: ONNX Runtime's default), got -1",
        ),
        (
            "Predictor-dict",
            lambda w: Predictor.from_export(w / "exp-sparse").predict({"a": "b"}),
            "got a dict; pass a list",
        ),
        (
            "TritonRequests-no-facts",
            lambda w: TritonRequests.from_model_dir(w / "triton-bad" / "nofacts"),
            "nxm_serving.json has no facts; write the model again",
        ),
        (
            "TritonRequests-bad-buckets",
            lambda w: TritonRequests.from_model_dir(w / "triton-bad" / "badbuckets"),
            "sequence_buckets [-3] must be increasing token counts from 2 up to max_seq_len 64",
        ),
        (
            "TritonRequests-max-seq-len-huge",
            lambda w: TritonRequests.from_model_dir(w / "triton-bad" / "hugeseq"),
            "facts.max_seq_len must be a positive integer, got 'huge'; write the model again",
        ),
        (
            "TritonOptions-bad-buckets",
            lambda w: TritonOptions(buckets=(-3, 64)),
            "Triton buckets [-3, 64] must be token counts of at least 2",
        ),
    ]


API_CASES = [c[0] for c in _api_cases()]


@pytest.mark.parametrize("index", range(len(API_CASES)), ids=API_CASES)
def test_api_bad_input_raises_one_line(index: int, world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(world / "cwd")
    _, call, text = _api_cases()[index]
    before = snapshot(world)
    with pytest.raises(UserError) as err:
        call(world)
    message = str(err.value)
    assert "\n" not in message and text in message, message
    assert snapshot(world) == before


# ---- second pass (issue 36): valid commands that failed, and one that now warns ----------------------


@pytest.mark.skipif(CUDA, reason="checks the warning on a machine without a GPU")
def test_triton_gpu_provider_on_a_cpu_machine_is_written_with_one_warning(
    world: Path,
    glue_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Triton repository is prepared for the machine that serves it: KIND_GPU is written here too,
    exit 0, with one warning line (README: "Serving")."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out, repo = tmp_path / "exp", tmp_path / "repo"
    args = ["export", str(world / "sparse"), "--out", str(out), "--triton-repo", str(repo),
            "--triton-name", "m", "--triton-ort-provider", "cuda", "--data-dir", str(glue_dir)]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: Triton model m is set to run on a GPU (KIND_GPU, ONNX Runtime's cuda provider), but no "
        "NVIDIA GPU is visible (torch.cuda.is_available() is False) here: serve it on a machine with an "
        "NVIDIA GPU and onnxruntime-gpu"
    ], err
    assert "kind: KIND_GPU" in (repo / "m" / "config.pbtxt").read_text(encoding="utf-8")


def _own_data_file(root: Path, fmt: str, glue: Path) -> Path:
    """40 SST-2 training rows with text labels, in one of the formats --data reads."""
    import csv

    from nxm_deploy.data import load_split

    rows = [
        {"text": a, "label": ["neg", "pos"][y]}
        for a, _, y in load_split("sst2", "train", glue).select(40).rows()
    ]
    path = root / f"reviews.{fmt}"
    if fmt in ("csv", "tsv"):
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(
                f,
                delimiter="," if fmt == "csv" else "\t",
                quoting=csv.QUOTE_MINIMAL if fmt == "csv" else csv.QUOTE_NONE,
                lineterminator="\n",
                escapechar="\\",
            )
            w.writerow(["text", "label"])
            w.writerows([r["text"], r["label"]] for r in rows)
    elif fmt == "json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _own_data_run(out: Path, data: Path, minilm: Path) -> Path:
    """A dense run on ``data`` with the nxm.json sections ``train`` writes for own data: the dataset it
    read (``load_own``'s record), its labels, and the sha256 of the training rows it used."""
    from nxm_deploy.data.encode import rows_fingerprint
    from nxm_deploy.data.own import DataOptions, load_own

    own = load_own(DataOptions(str(data), validation_fraction=0.2))
    write_run_dir(
        out, make_tiny_model("bert", seed=3), minilm, sparse=False, max_seq_len=32, task=own.task.name
    )
    body = json.loads((out / "nxm.json").read_text(encoding="utf-8"))
    train = own.train
    body |= {
        "labels": list(own.task.labels),
        "dataset": own.record,
        "hyperparameters": {"max_train_samples": None},
        "data": {"source": train.source, "train_rows": len(train),
                 "train_sha256": rows_fingerprint(list(train.texts_a), None, list(train.labels))},
    }  # fmt: skip
    (out / "nxm.json").write_text(json.dumps(body), encoding="utf-8")
    return out


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "parquet"])
def test_int8_export_of_an_own_data_run_calibrates_on_its_own_rows(
    fmt: str, tmp_path: Path, minilm_dir: Path, glue_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`export --quantize int8|int8-dynamic` of a run trained with `train --data` read the GLUE task
    registry ("unknown GLUE task 'data:reviews.csv'"); it calibrates on the file the run recorded,
    proven by its sha256, and scores agreement on its validation rows."""
    from nxm_deploy.export import ExportConfig, export

    monkeypatch.chdir(tmp_path)
    run = _own_data_run(tmp_path / "run", _own_data_file(tmp_path, fmt, glue_dir), minilm_dir)
    fast = {"batches": (2,), "seq_lens": (16,), "min_agreement": 0.0}
    config = ExportConfig(run_dir=run, out=tmp_path / "int8", quantize="int8", calibration_rows=8, **fast)
    q = export(config).manifest.quantization
    cal = q["calibration"]
    assert cal["rows"] == 8 and cal["of_train_rows"] == 32 and cal["source"].endswith(f"reviews.{fmt}")
    assert cal["run_train_sha256"] == json.loads((run / "nxm.json").read_text())["data"]["train_sha256"]
    assert q["agreement"]["rows"] == 8 and q["agreement"]["source"].endswith(f"reviews.{fmt}")
    if fmt == "csv":  # int8-dynamic scores the same validation rows; other rows in the file are refused
        dyn = export(ExportConfig(run_dir=run, out=tmp_path / "dyn", quantize="int8-dynamic", **fast))
        assert dyn.manifest.quantization["agreement"]["rows"] == 8
        data = tmp_path / "reviews.csv"
        data.write_text(data.read_text(encoding="utf-8") + "one more row,neg\n", encoding="utf-8")
        with pytest.raises(UserError, match=r"no longer holds the rows the run trained on .* pass data \("):
            export(ExportConfig(run_dir=run, out=tmp_path / "again", quantize="int8", **fast))
        assert not (tmp_path / "again").exists()


def test_int8_export_of_a_glue_run_reads_the_rows_where_the_run_recorded_them(
    world: Path, tmp_path: Path, glue_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GLUE run trained with --data-dir, exported without it (no $GLUE_DIR, no hub): the folder of
    the training file it recorded; when that is gone, one line saying which option to pass."""
    from conftest import record_training_rows

    from nxm_deploy.export import ExportConfig, export

    monkeypatch.delenv("GLUE_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    glue = tmp_path / "glue"
    shutil.copytree(glue_dir / "RTE", glue / "RTE")
    run = record_training_rows(_copy(world / "sparse", tmp_path / "run"), glue, limit=32)
    fast = {"batches": (2,), "seq_lens": (16,), "min_agreement": 0.0, "calibration_rows": 8}
    q = export(
        ExportConfig(run_dir=run, out=tmp_path / "int8", quantize="int8", **fast)
    ).manifest.quantization
    assert q["calibration"]["source"] == str(glue / "RTE" / "train.tsv")
    assert q["agreement"]["source"] == str(glue / "RTE" / "dev.tsv") and q["agreement"]["rows"] == 277
    shutil.rmtree(glue)
    with pytest.raises(UserError) as err:
        export(ExportConfig(run_dir=run, out=tmp_path / "again", quantize="int8", **fast))
    assert "\n" not in str(err.value)
    gone = f"the run read them from {glue / 'RTE' / 'train.tsv'}, which is gone: pass "
    assert str(err.value).endswith(gone + "data_dir with its GLUE root"), err.value  # the parameter
    assert err.value.cli_message.endswith(gone + "--data-dir with its GLUE root")  # the flag
