"""Does the Hugging Face stack open an export directory? optimum's ``ORTModelForSequenceClassification``
and a ``transformers.pipeline`` built on it, against the ``Predictor``, on real dev rows.

    .venv/bin/python benchmarks/optimum_check.py EXPORT_DIR [--venv /tmp/venv-optimum] [--rows 100]
        [--data-dir DIR] [--out optimum_check.json]

``optimum-onnx`` pins an older ``transformers`` than this project, so it lives in a virtual
environment of its own, which this script builds when ``--venv`` does not exist yet (CPU torch first,
as the Makefile does, then ``optimum-onnx[onnxruntime]``), never in the tool's. The tool's Python
answers the first ``--rows`` dev rows of the export's task with the ``Predictor``; then the other
venv's Python runs the inner check (``--inner``: no nxm_deploy import there) on the same rows:
``ORTModelForSequenceClassification.from_pretrained(EXPORT_DIR)``, its ``config.id2label``, and
``pipeline("text-classification", model=..., tokenizer=AutoTokenizer.from_pretrained(EXPORT_DIR))``
with every label's score. Passes (exit 0) when every label is the Predictor's and every score is
within 1e-4; prints the packages' versions and the counts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ATOL = 1e-4


def inner(export_dir: str, rows_file: str) -> None:
    """Runs in the optimum venv: print the pipeline's answers for the rows, as JSON."""
    from importlib.metadata import version

    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoTokenizer, pipeline

    rows = json.loads(Path(rows_file).read_text())
    model = ORTModelForSequenceClassification.from_pretrained(export_dir)
    tokenizer = AutoTokenizer.from_pretrained(export_dir)
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer, top_k=None)
    inputs = [r if isinstance(r, str) else {"text": r[0], "text_pair": r[1]} for r in rows]
    max_length = json.loads(Path(rows_file).with_suffix(".len").read_text())
    answers = [classify(x, truncation=True, max_length=max_length) for x in inputs]
    out = [
        {a["label"]: float(a["score"]) for a in (ans if isinstance(ans, list) else [ans])} for ans in answers
    ]
    versions = {p: version(p) for p in ("optimum-onnx", "optimum", "transformers", "onnxruntime")}
    print(json.dumps({"id2label": model.config.id2label, "answers": out, "versions": versions}))


def build_venv(venv: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)  # CPU torch first: an unpinned one pulls CUDA
    subprocess.run([*pip, "optimum-onnx[onnxruntime]"], check=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("export_dir")
    parser.add_argument("--venv", default=str(Path(tempfile.gettempdir()) / "venv-optimum"))
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--inner", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        inner(args.export_dir, args.inner)
        return {}
    from load_test import dev_items

    from nxm_deploy.runtime import Predictor

    predictor = Predictor.from_export(args.export_dir)
    items, source = dev_items(predictor.task, args.data_dir, args.rows)
    expected = predictor.predict(items)
    venv = Path(args.venv)
    if not (venv / "bin" / "python").is_file():
        print(f"building {venv} (torch==2.13.0, optimum-onnx[onnxruntime])", file=sys.stderr)
        build_venv(venv)
    with tempfile.TemporaryDirectory() as tmp:
        rows_file = Path(tmp) / "rows.json"
        rows_file.write_text(json.dumps(items))
        rows_file.with_suffix(".len").write_text(json.dumps(predictor.max_seq_len))
        export = str(Path(args.export_dir).resolve())
        cmd = [str(venv / "bin" / "python"), __file__, export, "--inner", str(rows_file)]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    got = json.loads(done.stdout.strip().splitlines()[-1])
    labels_same = sum(max(g, key=g.get) == p.label for g, p in zip(got["answers"], expected, strict=True))
    worst = max(
        abs(g[k] - p.scores[k]) for g, p in zip(got["answers"], expected, strict=True) for k in p.scores
    )
    report = {
        "export_dir": str(Path(args.export_dir).resolve()), "data": source, "rows": len(items),
        "id2label": got["id2label"], "predictor_labels": list(predictor.labels),
        "same_label": labels_same, "max_score_diff": worst, "versions": got["versions"],
        "ok": labels_same == len(items) and worst <= ATOL,
    }  # fmt: skip
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    sys.exit(0 if main().get("ok", True) else 1)
