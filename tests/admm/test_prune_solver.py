"""``--prune-solver admm|sparsegpt|wanda``: the layer-wise solvers hold N:M and beat magnitude pruning
on the layer's own outputs; SparseGPT and Wanda give the known answer where there is one; a run with
them passes ``check``; a dense run can be pruned training-free."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result

from nxm_deploy import nm
from nxm_deploy.admm.prune.solvers import (
    SPARSEGPT_DAMP,
    AdmmSolver,
    admm_prune,
    relative_error,
    sparsegpt_prune,
    wanda,
)
from nxm_deploy.cli import cli


def _correlated(n_in: int = 64, n_out: int = 32, tokens: int = 2000, seed: int = 0):
    """A weight and the Gram matrix of inputs whose features are correlated and unevenly scaled."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(n_in, n_in, generator=g) / n_in**0.5 + 0.3 * torch.eye(n_in)
    x = (torch.randn(tokens, n_in, generator=g) @ mix) * (0.1 + 3 * torch.rand(n_in, generator=g))
    return torch.randn(n_out, n_in, generator=g), x.T @ x


@pytest.mark.parametrize("pattern", ["2:4", "1:4", "4:8"])
def test_admm_reconstructs_outputs_better_than_magnitude_and_holds_nm(pattern: str) -> None:
    w, gram = _correlated()
    new = admm_prune(w, gram, pattern)
    assert new.shape == w.shape and new.dtype == w.dtype
    assert nm.check(new, pattern, axis=1).ok
    err_admm = relative_error(w, new, gram)
    err_mag = relative_error(w, nm.project(w, pattern, axis=1), gram)
    err_wanda = relative_error(w, wanda(w, gram, pattern), gram)
    assert err_admm < 0.7 * err_wanda and err_wanda < err_mag


@pytest.mark.parametrize("pattern", ["2:4", "1:4", "4:8"])
def test_sparsegpt_holds_nm_and_its_update_beats_wanda_and_magnitude(pattern: str) -> None:
    w, gram = _correlated()
    new = sparsegpt_prune(w, gram, pattern)
    assert new.shape == w.shape and new.dtype == w.dtype and nm.check(new, pattern, axis=1).ok
    candidates = {
        "sparsegpt": new,
        "wanda": wanda(w, gram, pattern),
        "magnitude": nm.project(w, pattern, axis=1),
    }
    err = {name: relative_error(w, v, gram) for name, v in candidates.items()}
    assert err["sparsegpt"] < 0.9 * err["wanda"] < err["magnitude"], err


def test_sparsegpt_gives_the_least_squares_weights_on_the_kept_inputs() -> None:
    """One group of 4 inputs whose first two weights are tiny in every row: SparseGPT drops them and
    its OBS update must give the exact optimum on the two kept inputs,
    ``w_K + H_KK^-1 H_KP w_P`` for the damped Gram ``H`` (the answer known in closed form)."""
    _, gram = _correlated(n_in=4)
    w = torch.randn(6, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    w[:, :2] *= 1e-3
    h = gram.double().clone()
    h.diagonal().add_(SPARSEGPT_DAMP * float(h.diagonal().mean()))
    expected = w.clone()
    expected[:, 2:] += (torch.linalg.solve(h[2:, 2:], h[2:, :2]) @ w[:, :2].T).T
    expected[:, :2] = 0
    torch.testing.assert_close(sparsegpt_prune(w, gram.double(), "2:4"), expected, rtol=1e-9, atol=1e-12)


def test_sparsegpt_and_wanda_known_answers_on_uncorrelated_inputs() -> None:
    """A weight that is already N:M stays as it is; on uncorrelated inputs (a diagonal Gram ``H``) no
    update is possible, so SparseGPT's answer is its OBS saliency mask alone, ``w^2 / [H^-1]_jj``, that
    is ``|w| * sqrt(H_jj + damping)``, and Wanda's is ``|w| * ||x_j|| = |w| * sqrt(H_jj)``."""
    w, gram = _correlated()
    two_four = nm.project(w, "2:4", axis=1)
    torch.testing.assert_close(sparsegpt_prune(two_four, gram, "2:4"), two_four)  # nothing to drop
    h = torch.rand(64, generator=torch.Generator().manual_seed(1)) * 4 + 0.1  # [in], the diagonal
    damped = h + SPARSEGPT_DAMP * float(h.mean())
    expected = w * nm.mask(w * damped.sqrt(), "2:4", 1)
    torch.testing.assert_close(sparsegpt_prune(w, torch.diag(h), "2:4"), expected)
    torch.testing.assert_close(wanda(w, torch.diag(h), "2:4"), w * nm.mask(w * h.sqrt(), "2:4", 1))


def test_a_dead_input_does_not_blow_up_the_weights() -> None:
    w, gram = _correlated()
    gram[:, 5] = 0
    gram[5, :] = 0  # input 5 is always zero
    for new in (
        admm_prune(w, gram, "2:4", AdmmSolver(iterations=10, tighten=5)),
        sparsegpt_prune(w, gram, "2:4"),
    ):
        assert torch.isfinite(new).all() and new.abs().max() <= 10 * w.abs().max()
        assert nm.check(new, "2:4", axis=1).ok


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _args(out: Path, glue: Path, method: str, *extra: str) -> list[str]:
    return ["train", "--task", "rte", "--data-dir", str(glue), "--method", method, "--out", str(out),
            "--max-train-samples", "32", "--max-eval-samples", "16", "--batch-size", "8",
            "--max-seq-len", "32", "--lr", "1e-3", "--save-steps", "4", "--no-progress", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def dense_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path, glue_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("prune") / "dense"
    result = _run(*_args(out, glue_dir, "dense", "--model", str(tiny_bert_dir), "--epochs", "1"))
    assert result.exit_code == 0, result.output
    return out


def _checked(run_dir: Path) -> dict:
    result = _run("check", str(run_dir))
    assert result.exit_code == 0, result.output
    return json.loads((run_dir / "nxm.json").read_text())


def test_oneshot_with_the_admm_solver_passes_check_and_records_errors(
    tiny_bert_dir: Path, glue_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "oneshot-admm"
    extra = (
        "--model",
        str(tiny_bert_dir),
        "--epochs",
        "1",
        "--prune-solver",
        "admm",
        "--calibration-rows",
        "16",
    )
    result = _run(*_args(out, glue_dir, "oneshot", *extra))
    assert result.exit_code == 0, result.output
    manifest = _checked(out)
    prune = manifest["prune"]
    assert prune["solver"] == "admm" and prune["calibration_rows"] == 16 and prune["in_order"]
    assert set(prune["layer_errors"]) == set(manifest["layers"])
    errors = prune["layer_errors"].values()
    assert sum(e["admm"] for e in errors) < sum(e["magnitude"] for e in errors)


def test_training_free_prune_of_a_dense_run(dense_run: Path, glue_dir: Path, tmp_path: Path) -> None:
    for solver in ("admm", "sparsegpt", "wanda", "magnitude"):
        out = tmp_path / f"free-{solver}"
        extra = ("--init-from", str(dense_run), "--epochs", "1", "--prune-solver", solver)
        result = _run(*_args(out, glue_dir, "oneshot", *extra))
        assert result.exit_code == 0, result.output
        manifest = _checked(out)
        assert [(p["kind"], p["epochs"]) for p in manifest["phases"]] == [("hard_prune", 0)]
        assert manifest["epochs_total"] == 1 and manifest["pattern"] == "2:4"
        assert manifest["prune"]["solver"] == solver and "accuracy" in manifest["metrics"]
        assert not (out / "checkpoints").exists()


@pytest.mark.parametrize(
    ("method", "extra", "needle"),
    [
        ("dense", ("--prune-solver", "admm"), "--prune-solver only apply to sparse methods, not dense"),
        ("dense", ("--calibration-rows", "64"), "--calibration-rows only apply to sparse methods"),
        (
            "oneshot",
            ("--calibration-rows", "64"),
            "--calibration-rows only applies to --prune-solver admm, sparsegpt",
        ),
        (
            "oneshot",
            ("--prune-solver", "admm", "--calibration-rows", "0"),
            "--calibration-rows must be positive",
        ),
    ],
)
def test_prune_options_the_method_would_ignore_are_refused(
    tiny_bert_dir: Path, glue_dir: Path, tmp_path: Path, method: str, extra: tuple[str, ...], needle: str
) -> None:
    out = tmp_path / "refused"
    result = _run(*_args(out, glue_dir, method, "--model", str(tiny_bert_dir), *extra))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.output
    assert not out.exists()


def test_cached_block_inputs_give_the_same_weights_as_whole_model_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import copy

    from conftest import make_tiny_model

    from nxm_deploy.admm.prune import reconstruct as rec
    from nxm_deploy.models import select_layers

    model = make_tiny_model("bert")
    layers = select_layers(model, "2:4")
    g = torch.Generator().manual_seed(0)
    batches = [{"input_ids": torch.randint(5, 99, (4, 10), generator=g),
                "attention_mask": torch.ones(4, 10, dtype=torch.long)} for _ in range(2)]  # fmt: skip
    batches[0]["attention_mask"][:, 7:] = 0  # padding: not part of any Gram matrix
    cached, whole = copy.deepcopy(model), copy.deepcopy(model)
    report = rec.reconstruct(cached, layers, nm.parse_pattern("2:4"), batches)
    monkeypatch.setattr(rec, "blocks", lambda *a: None)
    rec.reconstruct(whole, layers, nm.parse_pattern("2:4"), batches)
    assert report["cached_blocks"] and report["calibration_tokens"] == 4 * 7 + 4 * 10
    for (name, a), b in zip(cached.named_parameters(), whole.parameters(), strict=True):
        assert torch.equal(a, b), name
