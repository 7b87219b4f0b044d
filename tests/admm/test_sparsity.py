"""ADMM state: the penalty, the Z/U update, rho growth with the scaled dual, masks, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import make_tiny_model

from nxm_deploy import nm
from nxm_deploy.admm.state import AdmmSchedule, SparsityState
from nxm_deploy.models import select_layers

P24 = nm.Pattern(2, 4)


def _state() -> tuple[torch.nn.Module, SparsityState]:
    model = make_tiny_model("bert")
    return model, SparsityState(model, select_layers(model, P24), P24)


def test_penalty_gradient_is_rho_times_w_minus_z_plus_u() -> None:
    model, s = _state()
    s.start_admm(rho=0.7)
    for n in s.layers:
        s.u[n] = torch.randn_like(s.u[n])
    s._refresh_targets()
    model.zero_grad()
    s.penalty().backward()
    for n, w in s.weights.items():
        expected = 0.7 * (w.detach() - s.z[n] + s.u[n])
        torch.testing.assert_close(w.grad, expected, rtol=1e-5, atol=1e-6)


def test_update_follows_design() -> None:
    _, s = _state()
    s.start_admm(rho=0.1)
    sched = AdmmSchedule(rho_max=0.25, rho_growth=2.0)
    w = {n: p.detach().clone() for n, p in s.weights.items()}
    u0 = {n: torch.randn_like(s.u[n]) * 0.01 for n in s.layers}
    s.u = {n: u.clone() for n, u in u0.items()}
    z_prev = {n: z.clone() for n, z in s.z.items()}
    r = s.admm_update(sched)
    for n in s.layers:
        z = nm.project(w[n] + u0[n], P24, 1)
        torch.testing.assert_close(s.z[n], z)
        # U <- U + W - Z, then rescaled by rho_old / rho_new = 0.1 / 0.2
        torch.testing.assert_close(s.u[n], (u0[n] + w[n] - z) * 0.5)
        assert nm.check(s.z[n], P24, 1).ok
    assert s.rho == pytest.approx(0.2) and r.rho == pytest.approx(0.1)
    primal = torch.sqrt(sum(((w[n] - s.z[n]) ** 2).sum() for n in s.layers))
    wnorm = torch.sqrt(sum((w[n] ** 2).sum() for n in s.layers))
    assert r.primal == pytest.approx(float(primal / wnorm), rel=1e-5)
    dual = 0.1 * torch.sqrt(sum(((s.z[n] - z_prev[n]) ** 2).sum() for n in s.layers))
    assert r.dual == pytest.approx(float(dual), rel=1e-5)
    s.admm_update(sched)
    assert s.rho == pytest.approx(0.25)  # capped at rho_max
    s.admm_update(sched)
    assert s.rho == pytest.approx(0.25)


def test_penalty_uses_current_z_and_u() -> None:
    _, s = _state()
    s.start_admm(rho=1.0)
    s.admm_update(AdmmSchedule(1.0, 1.0))
    expected = 0.5 * sum(((p.detach() - s.z[n] + s.u[n]) ** 2).sum() for n, p in s.weights.items())
    assert float(s.penalty()) == pytest.approx(float(expected), rel=1e-5)


def test_hard_prune_and_masks_hold() -> None:
    _, s = _state()
    s.hard_prune()
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
    s.start_admm(rho=0.05)
    s.admm_update(AdmmSchedule(1.0, 1.5))
    s.hard_prune()
    s.save(tmp_path, {"phase": 0})
    model2 = make_tiny_model("bert")
    s2 = SparsityState(model2, s.layers, P24)
    meta = s2.load(tmp_path)
    assert meta["phase"] == 0 and s2.rho == pytest.approx(s.rho) and s2.updates == 1
    for n in s.layers:
        assert torch.equal(s2.z[n], s.z[n]) and torch.equal(s2.u[n], s.u[n])
        assert torch.equal(s2.masks[n], s.masks[n])
    assert s2.digest() == s.digest()


def test_decoupled_step_pulls_w_towards_z_minus_u_by_lr_times_rho() -> None:
    _, s = _state()
    s.start_admm(rho=50.0)
    for n in s.layers:
        s.u[n] = 0.01 * torch.randn_like(s.u[n])
    s._refresh_targets()
    before = {n: w.detach().clone() for n, w in s.weights.items()}
    s.decoupled_step(lr=1e-3)  # step fraction 0.05
    for n, w in s.weights.items():
        target = s.z[n] - s.u[n]
        torch.testing.assert_close(w.detach(), before[n] - 0.05 * (before[n] - target))
    s.decoupled_step(lr=1.0)  # lr * rho >= 1: clipped to land exactly on the target
    for n, w in s.weights.items():
        torch.testing.assert_close(w.detach(), s.z[n] - s.u[n])
