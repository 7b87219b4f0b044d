"""ADMM state: the penalty, the Z/U update, rho growth with the scaled dual, masks, persistence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import make_tiny_model

from nxm_deploy import nm
from nxm_deploy.admm.penalty import AdmmSchedule, AdmmState
from nxm_deploy.admm.state import SparsityState
from nxm_deploy.models import select_layers

P24 = nm.Pattern(2, 4)


def _state() -> tuple[torch.nn.Module, SparsityState]:
    model = make_tiny_model("bert")
    return model, SparsityState(model, select_layers(model, P24), P24)


def _admm() -> tuple[torch.nn.Module, AdmmState]:
    model, s = _state()
    return model, AdmmState(s.weights, P24)


def test_penalty_gradient_is_rho_times_w_minus_z_plus_u() -> None:
    model, s = _admm()
    s.start(rho=0.7)
    for n in s.weights:
        s.u[n] = torch.randn_like(s.u[n])
    s.refresh_targets()
    model.zero_grad()
    s.penalty().backward()
    for n, w in s.weights.items():
        expected = 0.7 * (w.detach() - s.z[n] + s.u[n])
        torch.testing.assert_close(w.grad, expected, rtol=1e-5, atol=1e-6)


def test_update_follows_design() -> None:
    _, s = _admm()
    s.start(rho=0.1)
    sched = AdmmSchedule(rho_max=0.25, rho_growth=2.0)
    w = {n: p.detach().clone() for n, p in s.weights.items()}
    u0 = {n: torch.randn_like(s.u[n]) * 0.01 for n in s.weights}
    s.u = {n: u.clone() for n, u in u0.items()}
    z_prev = {n: z.clone() for n, z in s.z.items()}
    r = s.update(sched)
    for n in s.weights:
        z = nm.project(w[n] + u0[n], P24, 1)
        torch.testing.assert_close(s.z[n], z)
        # U <- U + W - Z, then rescaled by rho_old / rho_new = 0.1 / 0.2
        torch.testing.assert_close(s.u[n], (u0[n] + w[n] - z) * 0.5)
        assert nm.check(s.z[n], P24, 1).ok
    assert s.rho == pytest.approx(0.2) and r.rho == pytest.approx(0.1)
    primal = torch.sqrt(sum(((w[n] - s.z[n]) ** 2).sum() for n in s.weights))
    wnorm = torch.sqrt(sum((w[n] ** 2).sum() for n in s.weights))
    assert r.primal == pytest.approx(float(primal / wnorm), rel=1e-5)
    dual = 0.1 * torch.sqrt(sum(((s.z[n] - z_prev[n]) ** 2).sum() for n in s.weights))
    assert r.dual == pytest.approx(float(dual), rel=1e-5)
    s.update(sched)
    assert s.rho == pytest.approx(0.25)  # capped at rho_max
    s.update(sched)
    assert s.rho == pytest.approx(0.25)


def test_penalty_uses_current_z_and_u() -> None:
    _, s = _admm()
    s.start(rho=1.0)
    s.update(AdmmSchedule(1.0, 1.0))
    expected = 0.5 * sum(((p.detach() - s.z[n] + s.u[n]) ** 2).sum() for n, p in s.weights.items())
    assert float(s.penalty().detach()) == pytest.approx(float(expected), rel=1e-5)


def test_hard_prune_and_masks_hold() -> None:
    _, s = _state()
    s.fix_masks()
    assert all(r.ok for _, r in s.check())
    for w in s.weights.values():
        w.data.add_(1.0)  # an optimizer step that would revive pruned weights
        w.grad = torch.ones_like(w)
    s.mask_grads()
    s.apply_masks()
    assert all(r.ok for _, r in s.check())
    for n, w in s.weights.items():
        assert torch.equal(w.grad, s.masks[n].float())


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    _, s = _state()
    s.method = admm = AdmmState(s.weights, P24)
    admm.start(rho=0.05)
    admm.update(AdmmSchedule(1.0, 1.5))
    s.masks = {n: nm.mask(w.detach(), P24, nm.LINEAR_AXIS) for n, w in s.weights.items()}
    s.save(tmp_path, {"phase": 0})
    meta_saved = json.loads((tmp_path / "nxm_state.json").read_text())
    # the keys of the first checkpoints, which a resume must still read
    assert {"rho", "updates", "pending_update", "admm_active", "last_residuals", "masked"} <= set(meta_saved)
    model2 = make_tiny_model("bert")
    s2 = SparsityState(model2, s.layers, P24)
    s2.method = admm2 = AdmmState(s2.weights, P24)
    meta = s2.load(tmp_path)
    assert meta["phase"] == 0 and admm2.rho == pytest.approx(admm.rho) and admm2.updates == 1
    for n in s.layers:
        assert torch.equal(admm2.z[n], admm.z[n]) and torch.equal(admm2.u[n], admm.u[n])
        assert torch.equal(s2.masks[n], s.masks[n])
    assert admm2.digest() == admm.digest()


def test_decoupled_step_pulls_w_towards_z_minus_u_by_lr_times_rho() -> None:
    _, s = _admm()
    s.start(rho=50.0)
    for n in s.weights:
        s.u[n] = 0.01 * torch.randn_like(s.u[n])
    s.refresh_targets()
    before = {n: w.detach().clone() for n, w in s.weights.items()}
    s.decoupled_step(lr=1e-3)  # step fraction 0.05
    for n, w in s.weights.items():
        target = s.z[n] - s.u[n]
        torch.testing.assert_close(w.detach(), before[n] - 0.05 * (before[n] - target))
    s.decoupled_step(lr=1.0)  # lr * rho >= 1: clipped to land exactly on the target
    for n, w in s.weights.items():
        torch.testing.assert_close(w.detach(), s.z[n] - s.u[n])
