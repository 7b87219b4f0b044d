"""One Predictor, many threads: every answer equals the single-threaded one."""

from __future__ import annotations

import threading

import pytest

from nxm_deploy.runtime import Predictor

THREADS, CALLS = 8, 50
WORDS = "the a cat dog sat ran far near big small red blue one two house tree".split()


def _inputs(thread: int, call: int) -> list[tuple[str, str]]:
    """Different inputs per thread and call: 1-3 pairs of varied lengths (some truncated)."""
    out = []
    for k in range(1 + (thread + call) % 3):
        n = 1 + (thread * 7 + call * 3 + k * 5) % 40
        a = " ".join(WORDS[(thread + call + j) % len(WORDS)] for j in range(n))
        b = " ".join(WORDS[(call + j) % len(WORDS)] for j in range(1 + n % 9)) * (1 + (call % 4 == 0) * 20)
        out.append((a, b))
    return out


def test_threads_get_the_single_threaded_answers(rte_export):
    predictor = Predictor.from_export(rte_export, max_batch=2)
    expected = {(t, c): predictor.predict(_inputs(t, c)) for t in range(THREADS) for c in range(CALLS)}
    assert any(p.truncated for ps in expected.values() for p in ps)
    got: dict[tuple[int, int], list] = {}
    failures: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def work(t: int) -> None:
        try:
            start.wait()
            for c in range(CALLS):
                got[(t, c)] = predictor.predict(_inputs(t, c))
        except BaseException as exc:  # reported below, with the thread's failure
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert failures == []
    assert got.keys() == expected.keys()
    for key, predictions in expected.items():
        for g, e in zip(got[key], predictions, strict=True):
            assert (g.label, g.truncated) == (e.label, e.truncated), key
            assert g.scores == pytest.approx(e.scores, abs=1e-6), key
    assert predictor.encoder.tokenizers_created >= 1  # copies of the tokenizer, one per concurrent encode
