"""The typed manifests (``nxm_deploy.manifest``): what ``train`` and ``export`` write reads back to the
same JSON; a manifest written by an older version (schema 1, the tool version twice) still loads; a
schema newer than this tool, or a damaged field, is one line naming the file (and the field)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from nxm_deploy import nm
from nxm_deploy.cli import cli
from nxm_deploy.errors import ExportDirError, UserError
from nxm_deploy.manifest import (
    ExportManifest,
    ReportManifest,
    RunManifest,
    SensitivityManifest,
    SourceRun,
)
from nxm_deploy.version import __version__

# nxm.json as version 0.2.0 wrote it (schema 1): a tiny oneshot run; the paths made relative.
SCHEMA_1_RUN: dict[str, Any] = {
    "kind": "nxm-deploy/run",
    "schema": 1,
    "tool": "nxm-deploy",
    "tool_version": "0.2.0",
    "source": {"commit": "0e336e4196cfb689187840c38dd9a63ef4adb7c7", "dirty": False},
    "created": "2026-12-06T22:29:00+00:00",
    "command": ["nxm-deploy", "train", "--task", "rte", "--method", "oneshot", "--out", "runs/rte-oneshot"],
    "python": "3.11.7",
    "platform": "Linux-6.18.44-fc-v1300-x86_64-with-glibc2.36",
    "libraries": {
        "nxm_deploy": "0.2.0",
        "torch": "2.13.0+cpu",
        "transformers": "5.25.0",
        "tokenizers": "0.23.3",
        "accelerate": "1.16.0",
        "onnx": "1.23.2",
        "onnxruntime": "1.32.0",
        "numpy": "2.4.6",
        "tensorrt": None,
    },
    "machine": {
        "cpu": "AMD EPYC",
        "logical_cores": 2,
        "memory_gib": 23.5,
        "os": "Linux-6.18.44-fc-v1300-x86_64-with-glibc2.36",
    },
    "base_model": "models/tiny-bert",
    "task": "RTE",
    "method": "oneshot",
    "pattern": "2:4",
    "sparse": True,
    "layers": [
        "bert.encoder.layer.0.attention.self.query",
        "bert.encoder.layer.0.attention.self.key",
        "bert.encoder.layer.0.attention.self.value",
        "bert.encoder.layer.0.attention.output.dense",
        "bert.encoder.layer.0.intermediate.dense",
        "bert.encoder.layer.0.output.dense",
        "bert.encoder.layer.1.attention.self.query",
        "bert.encoder.layer.1.attention.self.key",
        "bert.encoder.layer.1.attention.self.value",
        "bert.encoder.layer.1.attention.output.dense",
        "bert.encoder.layer.1.intermediate.dense",
        "bert.encoder.layer.1.output.dense",
    ],
    "num_labels": 2,
    "labels": ["entailment", "not_entailment"],
    "is_regression": False,
    "max_seq_len": 32,
    "metrics": {"accuracy": 0.375},
    "main_metric": "accuracy",
    "epochs_total": 1.0,
    "phases": [{"phase": 0, "kind": "masked", "epochs": 1.0, "metrics": {"accuracy": 0.375}, "steps": 2}],
    "init_from": None,
    "teacher": None,
    "hyperparameters": {
        "task": "rte",
        "out": "runs/rte-oneshot",
        "method": "oneshot",
        "model": "models/tiny-bert",
        "data_dir": "glue",
        "pattern": "2:4",
        "epochs": 1.0,
        "lr": 2e-05,
        "batch_size": 8,
        "max_seq_len": 32,
        "max_train_samples": 16,
        "max_eval_samples": 8,
        "seed": 42,
        "warmup_ratio": 0.1,
        "weight_decay": 0.01,
        "eval_batch_size": 64,
        "prune_solver": "magnitude",
        "calibration_rows": 512,
        "teacher": None,
        "kd_alpha": 0.5,
        "kd_temperature": 2.0,
        "init_from": None,
        "include": [],
        "exclude": [],
        "save_steps": 200,
        "logging_steps": 20,
        "mixed_precision": "no",
        "grad_accum": 1,
        "eval_steps": 0,
        "report_to": "none",
        "dataloader_workers": 0,
        "keep_checkpoints": False,
        "resume": False,
        "overwrite": False,
        "progress": False,
        "data": None,
        "rho": None,
        "rho_max": None,
        "rho_growth": 1.3,
        "admm_interval": 32,
        "admm_penalty": "decoupled",
        "admm_epochs": None,
        "dense_epochs": None,
        "srste_decay": 0.0002,
        "srste_decay_mode": "grad",
        "mask_interval": 1,
        "masked_epochs": None,
        "freeze_variance": False,
        "switch_fraction": 0.25,
    },
    "data": {
        "source": "glue/RTE/train.tsv",
        "train_rows": 16,
        "train_rows_in_file": 2490,
        "train_subset": "fixed random subset (seed 0) of 16",
        "train_sha256": "7601b51346434bc0e830c354ade5a5c64f8637e26e59eca1d5067216ccf565ef",
        "dev": {"dev": {"source": "glue/RTE/dev.tsv", "rows": 8, "rows_in_file": 277}},
    },
    "world_size": 1,
    "process_group_backend": None,
    "device": "cpu",
    "gpu": None,
    "wall_time_s": 7.6,
    "torch_version": "2.13.0+cpu",
    "transformers_version": "5.25.0",
    "nxm_deploy_version": "0.2.0",
    "prune": {"solver": "magnitude"},
    "dataset": None,
}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path, glue_dir: Path) -> dict[str, Any]:
    """A tiny oneshot run and its export, made by ``train`` and ``export``."""
    from nxm_deploy.admm import TrainConfig, train
    from nxm_deploy.export import ExportConfig, export

    root = tmp_path_factory.mktemp("manifests")
    run = train(TrainConfig(task="rte", out=str(root / "run"), method="oneshot", model=str(tiny_bert_dir),
                            data_dir=str(glue_dir), epochs=1.0, max_train_samples=16, max_eval_samples=8,
                            batch_size=8, max_seq_len=32, progress=False))  # fmt: skip
    exported = export(ExportConfig(run_dir=root / "run", out=root / "export", data_dir=glue_dir,
                                   batches=(2,), seq_lens=(16,)))  # fmt: skip
    return {"run": run, "export": exported, "root": root}


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_a_run_manifest_reads_back_to_what_train_wrote(made: dict[str, Any]) -> None:
    run_dir = made["root"] / "run"
    body = _json(run_dir / "nxm.json")
    manifest = RunManifest.read(run_dir)
    assert manifest.to_json() == body
    assert made["run"].manifest.to_json() == body  # train returns the typed manifest it wrote
    assert body["schema"] == 2 and body["tool_version"] == __version__
    assert "nxm_deploy_version" not in body  # the tool version has one home
    assert manifest.facts.pattern == nm.Pattern(2, 4) and len(manifest.facts.layers) == 12
    assert manifest.facts.labels == ("entailment", "not_entailment") and manifest.metrics == body["metrics"]
    assert manifest.data["train_rows"] == 16 and manifest.hyperparameters["max_seq_len"] == 32


def test_an_export_manifest_reads_back_to_what_export_wrote(made: dict[str, Any]) -> None:
    export_dir = made["root"] / "export"
    body = _json(export_dir / "export.json")
    manifest = ExportManifest.read(export_dir)
    assert manifest.to_json() == body
    assert made["export"].manifest.to_json() == body
    assert body["schema"] == 2 and body["tool_version"] == __version__
    run = RunManifest.read(made["root"] / "run")
    assert manifest.source_run == SourceRun.of(run) and manifest.source == run.facts
    assert manifest.run_dir == made["root"] / "run"
    assert [t.name for t in manifest.onnx.inputs] == list(manifest.tokenizer.model_input_names)
    assert manifest.onnx_path == export_dir / "model.onnx" and manifest.onnx_path.is_file()
    assert not manifest.tensorrt.built and manifest.tensorrt.build_script == "build_engine.sh"
    assert set(manifest.files) == {p.name for p in export_dir.iterdir() if not p.name.startswith(".")}


def test_a_schema_1_run_manifest_still_loads() -> None:
    manifest = RunManifest.from_json(SCHEMA_1_RUN, "runs/rte-oneshot/nxm.json")
    assert manifest.schema == 1 and manifest.provenance.tool_version == "0.2.0"
    assert manifest.facts.pattern == nm.Pattern(2, 4) and manifest.facts.task == "RTE"
    assert manifest.facts.max_seq_len == 32 and manifest.epochs_total == 1.0
    again = manifest.to_json()  # written again: the same keys, the version once
    assert again == {k: v for k, v in SCHEMA_1_RUN.items() if k != "nxm_deploy_version"}
    only_old = {k: v for k, v in SCHEMA_1_RUN.items() if k != "tool_version"}
    assert RunManifest.from_json(only_old, "nxm.json").provenance.tool_version == "0.2.0"
    assert SCHEMA_1_RUN["nxm_deploy_version"] == "0.2.0"  # the literal is untouched


def test_an_export_of_schema_1_without_the_newer_fields_loads(made: dict[str, Any]) -> None:
    body = _json(made["root"] / "export" / "export.json")
    for key in ("schema", "quantization"):
        del body[key]
    for key in ("precision",):
        del body["onnx"][key]
    del body["tokenizer"]["position_limit"]
    manifest = ExportManifest.from_json(body, "export.json")
    assert manifest.schema == 1 and manifest.quantization is None and manifest.position_limit is None


def _one_error_line(*args: object) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    lines = result.stderr.splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    return lines[0]


def test_a_newer_schema_is_refused_in_one_line(tmp_path: Path, made: dict[str, Any]) -> None:
    run_dir, export_dir = tmp_path / "run", tmp_path / "export"
    run_dir.mkdir()
    (run_dir / "nxm.json").write_text(json.dumps({**SCHEMA_1_RUN, "schema": 99}), encoding="utf-8")
    line = _one_error_line("check", run_dir)
    assert f"{run_dir / 'nxm.json'} has schema 99" in line and "upgrade nxm-deploy" in line
    export_dir.mkdir()
    body = _json(made["root"] / "export" / "export.json")
    (export_dir / "export.json").write_text(json.dumps({**body, "schema": 3}), encoding="utf-8")
    line = _one_error_line("check", export_dir)
    assert f"{export_dir / 'export.json'} has schema 3" in line and "upgrade nxm-deploy" in line


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ({"max_seq_len": "huge"}, "nxm.json: max_seq_len must be a positive integer, got 'huge'"),
        ({"layers": "bert.encoder"}, "nxm.json: layers must be a list of strings"),
        ({"metrics": [0.5]}, "nxm.json: metrics must be a JSON object"),
        ({"pattern": "5:4"}, "nxm.json: pattern: "),
        ({"kind": "nxm-deploy/export"}, "nxm.json is not an nxm-deploy run manifest"),
    ],
)
def test_a_damaged_run_field_is_named(tmp_path: Path, edit: dict[str, Any], named: str) -> None:
    (tmp_path / "nxm.json").write_text(json.dumps({**SCHEMA_1_RUN, **edit}), encoding="utf-8")
    with pytest.raises(UserError, match="^" + str(tmp_path).replace("\\", "\\\\")) as exc:
        RunManifest.read(tmp_path)
    assert named in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("section", "key", "value", "named"),
    [
        ("onnx", "inputs", "input_ids", "export.json: onnx.inputs must be a list of JSON objects"),
        ("onnx", "external_data", [1], "export.json: onnx.external_data must be a list of strings"),
        ("tensorrt", "built", "yes", "export.json: tensorrt.built must be true or false"),
        ("tokenizer", "files", "vocab.txt", "export.json: tokenizer.files must be a list of strings"),
        ("source_run", "num_labels", 0, "export.json: source_run.num_labels must be a positive integer"),
    ],
)
def test_a_damaged_export_field_is_named(
    made: dict[str, Any], tmp_path: Path, section: str, key: str, value: Any, named: str
) -> None:
    body = copy.deepcopy(_json(made["root"] / "export" / "export.json"))
    body[section][key] = value
    (tmp_path / "export.json").write_text(json.dumps(body), encoding="utf-8")
    with pytest.raises(ExportDirError) as exc:
        ExportManifest.read(tmp_path)
    assert named in str(exc.value) and "\n" not in str(exc.value)


def test_report_and_sensitivity_manifests_check_their_kind_and_fields() -> None:
    report = {"kind": "nxm-deploy/report", "schema": 1, "task": "RTE", "notes": ["no sparse kernels"]}
    assert ReportManifest.from_json(report, "report.json").notes == ("no sparse kernels",)
    with pytest.raises(UserError, match=r"report.json: notes must be a list of strings, got 3"):
        ReportManifest.from_json({**report, "notes": 3}, "report.json")
    with pytest.raises(UserError, match=r"has schema 2, newer than this nxm-deploy"):
        ReportManifest.from_json({**report, "schema": 2}, "report.json")
    sens = {"kind": "nxm-deploy/sensitivity", "schema": 1, "exclude": ["bert.pooler.dense"]}
    assert SensitivityManifest.from_json(sens, "s.json").exclude == ("bert.pooler.dense",)
    with pytest.raises(UserError, match=r"s.json is not an nxm-deploy sensitivity manifest"):
        SensitivityManifest.from_json(report, "s.json")
