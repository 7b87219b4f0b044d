"""A user error names the library's parameters to a library caller and the flags on the command line:
one message, both sides, also where a flag is not the parameter's name and where the error is raised
inside a directory that is renamed afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from nxm_deploy.bench.latency import TimingPlan
from nxm_deploy.cli import cli
from nxm_deploy.errors import UserError
from nxm_deploy.outputs import staged_dir


def test_a_library_caller_sees_the_parameters_the_cli_user_the_flags(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        TimingPlan(min_time_s=5.0, max_time_s=1.0)
    assert str(caught.value) == "max_time_s 1.0 is below min_time_s 5.0"
    out = tmp_path / "report"
    args = ["--dense", str(tmp_path), "--sparse", str(tmp_path), "--task", "rte", "--out", str(out)]
    result = CliRunner().invoke(cli, ["bench", *args, "--min-time", "5", "--max-time", "1"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["error: --max-time 1.0 is below --min-time 5.0"]
    assert not out.exists()


def test_an_error_raised_while_staged_names_the_final_directory_in_both_forms(tmp_path: Path) -> None:
    final = tmp_path / "out"
    with pytest.raises(UserError) as caught, staged_dir(final) as tmp:
        raise UserError.naming("{0}: {path} is not right", "data", path=tmp / "x.csv")
    assert str(caught.value) == f"data: {final / 'x.csv'} is not right"
    assert caught.value.cli_message == f"--data: {final / 'x.csv'} is not right"
    assert not final.exists()


def test_an_error_that_holds_another_keeps_both_forms_of_each(tmp_path: Path) -> None:
    """A message made around another error (export's "they are gone (...)"), a model given to a
    parameter (bench's ``dense PATH``) and a hint naming a parameter: each part in the same form."""
    from nxm_deploy.cli.group import cli_flag
    from nxm_deploy.errors import DataError, Given, Phrase

    inner = DataError.naming("{0} {path} does not exist", "source", path=tmp_path / "x.csv")
    outer = inner.wrapped(
        "{label}: the rows are gone ({error}); {hint}",
        cls=UserError,
        label=Given("dense", "exports/d"),
        hint=Phrase("pass {0} with the GLUE root", "data_dir"),
    )
    gone = tmp_path / "x.csv"
    said = (
        "{0}dense exports/d: the rows are gone ({0}{1} {gone} does not exist); pass {0}{2} with the GLUE root"
    )
    assert str(outer) == said.format("", "source", "data_dir", gone=gone)
    assert outer.worded(cli_flag) == said.format("--", "data", "data-dir", gone=gone)


def test_a_parameter_whose_flag_depends_on_the_command(tmp_path: Path) -> None:
    """The Triton text repository's ``backend`` is export's ``--triton-backend`` (bench's ``--backend``
    is another parameter): the export command words it."""
    from nxm_deploy.runtime.triton import TritonOptions
    from nxm_deploy.runtime.triton_text import check_text_targets

    said = "{0} python runs model.onnx on ONNX Runtime's CPU provider; drop {1}"
    with pytest.raises(UserError) as caught:
        check_text_targets(tmp_path / "repo", TritonOptions("m", ort_provider="cuda"), "python")
    assert str(caught.value) == said.format("backend", "ort_provider")
    (run := tmp_path / "run").mkdir()
    args = [str(run), "--out", str(tmp_path / "out"), "--triton-repo", str(tmp_path / "repo")]
    result = CliRunner().invoke(
        cli, ["export", *args, "--triton-backend", "python", "--triton-ort-provider", "cuda"]
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: " + said.format("--triton-backend", "--triton-ort-provider")
    ]
    assert not (tmp_path / "out").exists() and not (tmp_path / "repo").exists()
