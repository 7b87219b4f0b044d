"""Bad input to bench is refused with one clear UserError, before any timing starts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from nxm_deploy.bench import BenchConfig, bench, parse_sizes
from nxm_deploy.cli import cli
from nxm_deploy.errors import DataError, UserError

from .conftest import FAST, TASK, Pair, fast_plan


def _run(pair_dense: Path, pair_sparse: Path, out: Path, glue_dir: Path, **kw) -> None:
    options = {"task": TASK, "data_dir": glue_dir, "plan": fast_plan(), **FAST, **kw}
    bench(BenchConfig(dense=pair_dense, sparse=pair_sparse, out=out, **options))


def _copy(src: Path, dst: Path) -> Path:
    return Path(shutil.copytree(src, dst))


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_dense_export_given_as_sparse(bench_pair: Pair, glue_dir: Path, tmp_path: Path):
    """The library names its parameters (``sparse``, ``dense``), the command line its flags."""
    dense, sparse = bench_pair.sparse_export, bench_pair.dense_export
    said = (f"{sparse} is a dense model (its export.json says pattern null, method dense); pass the "
            "sparse model as {sparse} and the dense one as {dense}")  # fmt: skip
    with pytest.raises(UserError) as caught:
        _run(dense, sparse, tmp_path / "r", glue_dir)
    assert str(caught.value) == "sparse " + said.format(sparse="sparse", dense="dense")
    assert not (tmp_path / "r").exists()
    args = ["--dense", str(dense), "--sparse", str(sparse), "--task", TASK, "--data-dir", str(glue_dir)]
    result = CliRunner().invoke(cli, ["bench", *args, "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == "error: --sparse " + said.format(
        sparse="--sparse", dense="--dense"
    )
    assert not (tmp_path / "r").exists()


def test_sparse_export_given_as_dense(bench_pair: Pair, glue_dir: Path, tmp_path: Path):
    other = _copy(bench_pair.sparse_export, tmp_path / "sparse-copy")
    with pytest.raises(UserError, match=r"^dense .* is a sparse model \(pattern 2:4"):
        _run(bench_pair.sparse_export, other, tmp_path / "r", glue_dir)


def test_manifest_claims_sparse_but_onnx_is_dense(bench_pair: Pair, glue_dir: Path, tmp_path: Path):
    fake = _copy(bench_pair.dense_export, tmp_path / "fake-sparse")

    def claim(m: dict) -> None:
        m["source_run"].update(pattern="2:4", layers=list(bench_pair.layers))

    _edit_json(fake / "export.json", claim)
    with pytest.raises(UserError, match=r"^sparse .*break the pattern in .*model\.onnx"):
        _run(bench_pair.dense_export, fake, tmp_path / "r", glue_dir)


def test_no_nm_tensor_at_all(bench_pair: Pair, glue_dir: Path, tmp_path: Path):
    fake = _copy(bench_pair.dense_export, tmp_path / "fake-sparse")
    _edit_json(fake / "export.json", lambda m: m["source_run"].update(pattern="2:4", layers=[]))
    with pytest.raises(UserError, match=r"no encoder weight in .* holds 2:4; it is not a sparse model"):
        _run(bench_pair.dense_export, fake, tmp_path / "r", glue_dir)


def test_exports_of_another_task(bench_pair: Pair, glue_dir: Path, tmp_path: Path):
    with pytest.raises(UserError, match=r"^dense .* was trained on RTE, not SST-2"):
        _run(bench_pair.dense_export, bench_pair.sparse_export, tmp_path / "r", glue_dir, task="SST-2")
    other = _copy(bench_pair.sparse_export, tmp_path / "mrpc")
    _edit_json(other / "export.json", lambda m: m["source_run"].update(task="MRPC"))
    with pytest.raises(UserError, match=r"^sparse .* was trained on MRPC, not RTE"):
        _run(bench_pair.dense_export, other, tmp_path / "r", glue_dir)


def test_different_tokenizers(bench_pair: Pair, glue_dir: Path, tmp_path: Path):
    other = _copy(bench_pair.sparse_export, tmp_path / "retokenized")

    def rename_token(t: dict) -> None:
        vocab = t["model"]["vocab"]
        vocab["[unused999]"] = vocab.pop("[unused0]")

    _edit_json(other / "tokenizer.json", rename_token)
    with pytest.raises(UserError, match=r"use different tokenizers \(vocabulary sha256"):
        _run(bench_pair.dense_export, other, tmp_path / "r", glue_dir)


def test_missing_directories(bench_pair: Pair, glue_dir: Path, tmp_path: Path):
    with pytest.raises(UserError, match=r"^dense .*nowhere does not exist"):
        _run(tmp_path / "nowhere", bench_pair.sparse_export, tmp_path / "r", glue_dir)
    with pytest.raises(UserError, match=r"^sparse .* is neither an export directory"):
        _run(bench_pair.dense_export, tmp_path, tmp_path / "r", glue_dir)


def test_run_directory_needs_backend_torch(bench_pair: Pair, glue_dir: Path, tmp_path: Path):
    with pytest.raises(UserError, match=r"is a run directory; backend ort needs an export directory"):
        _run(bench_pair.dense_run, bench_pair.sparse_export, tmp_path / "r", glue_dir)


def test_missing_data(bench_pair: Pair, tmp_path: Path):
    empty = tmp_path / "glue"
    empty.mkdir()
    with pytest.raises(DataError, match=r"no RTE dev file"):
        _run(bench_pair.dense_export, bench_pair.sparse_export, tmp_path / "r", empty)
    with pytest.raises(DataError, match=r"does not exist"):
        _run(bench_pair.dense_export, bench_pair.sparse_export, tmp_path / "r", tmp_path / "no-glue")


def test_existing_out_needs_overwrite(bench_pair: Pair, glue_dir: Path, tmp_path: Path):
    out = tmp_path / "r"
    out.mkdir()
    with pytest.raises(UserError, match=r"already exists; pass overwrite to replace it"):
        _run(bench_pair.dense_export, bench_pair.sparse_export, out, glue_dir)
    with pytest.raises(UserError, match=r"would replace"):
        _run(
            bench_pair.dense_export,
            bench_pair.sparse_export,
            bench_pair.sparse_export,
            glue_dir,
            overwrite=True,
        )


def test_missing_onnx_file(bench_pair: Pair, glue_dir: Path, tmp_path: Path):
    broken = _copy(bench_pair.sparse_export, tmp_path / "no-onnx")
    (broken / "model.onnx").unlink()
    with pytest.raises(UserError, match=r"^sparse .* has no model.onnx"):
        _run(bench_pair.dense_export, broken, tmp_path / "r", glue_dir)


@pytest.mark.parametrize("text", ["", "1,,8", "1,x", "0,8", "-1", "8.5", "1;8"])
def test_bad_size_lists(text: str):
    with pytest.raises(UserError, match=r"comma-separated positive integers"):
        parse_sizes(text, "batch_sizes")


def test_size_lists_are_sorted_and_unique():
    assert parse_sizes("32, 1,8,8", "batch_sizes") == (1, 8, 32)


def test_too_short_sequences(tmp_path: Path):
    with pytest.raises(UserError, match=r"^seq_lens must be at least 8"):
        BenchConfig(dense=tmp_path, sparse=tmp_path, task=TASK, out=tmp_path / "r", seq_lens="4,32")


def test_sequence_beyond_the_model_is_one_line(bench_pair: Pair, glue_dir: Path, tmp_path: Path):
    # The tiny BERT has 128 positions; its tokenizer allows 512: refused before any work, as the
    # export recorded the model's position limit (ONNX Runtime's own error named no limit).
    with pytest.raises(
        UserError, match=r"^seq_lens 256 exceeds the position limit of dense .* \(128 tokens\)"
    ):
        _run(bench_pair.dense_export, bench_pair.sparse_export, tmp_path / "r", glue_dir, seq_lens=(256,))
    assert not (tmp_path / "r").exists()


def test_sequence_beyond_positions_on_torch(bench_pair: Pair, glue_dir: Path, tmp_path: Path):
    # The runs' config.json gives the position limit, checked before any work (on CUDA an index out of
    # range would kill the process).
    with pytest.raises(
        UserError, match=r"^seq_lens 256 exceeds the position limit of dense .* \(128 tokens\)"
    ):
        _run(
            bench_pair.dense_run,
            bench_pair.sparse_run,
            tmp_path / "r",
            glue_dir,
            seq_lens=(256,),
            backend="torch",
        )
