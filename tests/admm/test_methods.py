"""Budget semantics: every method spends --epochs counted from the pretrained weights."""

from __future__ import annotations

import pytest

from nxm_deploy.admm.registry import Budget, Phase, get_method, method_names
from nxm_deploy.errors import UserError


def plan(method: str, epochs: float = 3, init: float = 0, admm: float | None = None,
         dense: float | None = None) -> list[Phase]:  # fmt: skip
    m = get_method(method)
    own = {"admm": {"admm_epochs": admm}, "asp": {"dense_epochs": dense}}.get(method, {})
    return m.plan(Budget(epochs, init), m.options(**own) if m.options else None)


def test_registry_lists_the_five_methods() -> None:
    assert method_names() == ["admm", "asp", "dense", "oneshot", "srste"]
    choices = "admm, asp, dense, oneshot, srste"
    with pytest.raises(UserError, match=f"unknown method 'magic'; choose one of: {choices}$"):
        get_method("magic")


def test_default_plans_add_up_to_the_budget() -> None:
    assert plan("dense") == [Phase("dense", 3)]
    assert plan("oneshot") == [Phase("masked", 3)]
    assert plan("asp") == [Phase("dense", 1.5), Phase("masked", 1.5)]
    assert plan("admm") == [Phase("admm", 2), Phase("masked", 1)]
    assert plan("srste") == [Phase("srste", 2), Phase("masked", 1)]
    for m in method_names():
        assert sum(p.epochs for p in plan(m, epochs=4.5)) == pytest.approx(4.5)


def test_explicit_splits() -> None:
    assert plan("admm", epochs=5, admm=4) == [Phase("admm", 4), Phase("masked", 1)]
    assert plan("admm", epochs=2, admm=2) == [Phase("admm", 2)]  # hard prune at the end
    assert plan("asp", epochs=4, dense=1) == [Phase("dense", 1), Phase("masked", 3)]


def test_init_from_counts_its_epochs() -> None:
    assert plan("asp", epochs=4, init=2) == [Phase("masked", 2)]
    assert plan("admm", epochs=4, init=1) == [Phase("admm", 2), Phase("masked", 1)]
    with pytest.raises(UserError, match="contradicts init_from"):
        plan("asp", epochs=4, init=2, dense=1)
    assert plan("oneshot", epochs=2, init=2) == []  # training-free: the run prunes at its end
    with pytest.raises(UserError, match="leaves nothing to train"):
        plan("oneshot", epochs=1, init=2)
    with pytest.raises(UserError, match="leaves nothing to train"):
        plan("asp", epochs=2, init=2)


@pytest.mark.parametrize(("method", "kw", "flag"), [("admm", {"admm": 5}, "admm_epochs"),
                                                    ("asp", {"dense": 0}, "dense_epochs")])  # fmt: skip
def test_parts_that_do_not_add_up(method: str, kw: dict[str, float], flag: str) -> None:
    with pytest.raises(UserError, match=f"{flag} .* does not fit the budget"):
        plan(method, epochs=3, **kw)  # type: ignore[arg-type]


def test_unknown_admm_penalty_is_one_clear_error() -> None:
    from nxm_deploy.admm.config import TrainConfig

    with pytest.raises(UserError, match=r"^admm_penalty must be one of loss, decoupled, got 'l2'$") as err:
        TrainConfig(task="RTE", out="x", model="m", admm_penalty="l2")
    assert err.value.cli_message == "--admm-penalty must be one of loss, decoupled, got 'l2'"  # type: ignore[attr-defined]


def test_a_run_staged_before_the_options_split_still_resumes() -> None:
    """Older runs saved every method's options flat in checkpoints/config.json; a resume with the
    same command line finds no difference, and a changed option of the chosen method is found."""
    from nxm_deploy.admm.config import TrainConfig

    cfg = TrainConfig(task="rte", out="x", model="m", method="asp", dense_epochs=1.0)
    skip = {
        "eval_steps",
        "report_to",
        "dataloader_workers",
        "keep_checkpoints",
        "resume",
        "overwrite",
        "progress",
    }
    old = {k: v for k, v in cfg.to_json().items() if k not in skip}
    assert "rho_growth" in old and cfg.differs_from(old) == []
    assert TrainConfig(task="rte", out="x", model="m", method="asp").differs_from(old) == ["dense_epochs"]


def test_a_run_resumes_with_another_checkpoint_and_log_cadence() -> None:
    from nxm_deploy.admm.config import TrainConfig

    # a study that starts checkpointing more often must still resume the runs it staged before
    staged = {
        **TrainConfig(task="rte", out="x", model="m").comparable(),
        "save_steps": 200,
        "logging_steps": 20,
    }
    now = TrainConfig(task="rte", out="x", model="m", save_steps=50, logging_steps=5)
    assert now.differs_from(staged) == []
    assert TrainConfig(task="rte", out="x", model="m", lr=1e-3).differs_from(staged) == ["lr"]
