"""``nxm-deploy export --triton-repo`` through click's CliRunner."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result

from nxm_deploy.cli import cli

pb = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2",
    reason="Triton's ModelConfig schema comes with tritonclient: pip install 'tritonclient[grpc]'",
)


def run_cli(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_export_writes_a_triton_model(rte_run, tmp_path, glue_dir):
    from google.protobuf import text_format

    repo = tmp_path / "triton"
    result = run_cli(
        "export", rte_run, "--out", tmp_path / "rte-admm", "--data-dir", glue_dir,
        "--triton-repo", repo, "--triton-max-batch", 4,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        f"triton: {repo / 'rte-admm'} (onnxruntime_onnx, max batch 4, sequence buckets 16, 32, 64)"
        in result.stdout
    )
    config = text_format.Parse((repo / "rte-admm" / "config.pbtxt").read_text(), pb.ModelConfig())
    assert (config.name, config.platform, config.max_batch_size) == ("rte-admm", "onnxruntime_onnx", 4)
    assert (repo / "rte-admm" / "1" / "model.onnx").is_file()


def test_existing_triton_model_is_refused_before_the_export(rte_run, tmp_path):
    (tmp_path / "triton" / "rte").mkdir(parents=True)
    result = run_cli(
        "export",
        rte_run,
        "--out",
        tmp_path / "out",
        "--triton-repo",
        tmp_path / "triton",
        "--triton-name",
        "rte",
    )
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: Triton model {tmp_path / 'triton' / 'rte'} already exists; pass --overwrite to replace it"
    ]
    assert not (tmp_path / "out").exists()  # refused before any work
    bad = run_cli(
        "export", rte_run, "--out", tmp_path / "out", "--triton-repo", tmp_path, "--triton-name", "a b"
    )
    assert bad.exit_code == 1 and "invalid Triton model name 'a b'" in bad.stderr
