"""Dev predictions for a run directory made before runs kept them: one pass of its saved weights over
the dev rows (encoded with the run's ``max_seq_len``), written as the library writes them
(``nxm_deploy.admm.predictions.write_predictions``), so that later runs and this one can be compared
example by example.

    predict_run(run_dir, data_dir, run_dir / "predictions.tsv")
"""

from __future__ import annotations

import json
from pathlib import Path

from nxm_deploy.admm.predictions import write_predictions


def predict_run(run: Path, data_dir: str, out: Path, batch_size: int = 64) -> Path:
    """Score ``run``'s dev rows (the first ``max_eval_samples`` where the run capped them) and write
    ``out``; returns ``out``."""
    import numpy as np
    import torch

    from nxm_deploy.data import get_task, load_split
    from nxm_deploy.models import load_model

    man = json.loads((run / "nxm.json").read_text())
    task = get_task(man["task"])
    dev = load_split(task, "dev", data_dir)
    cap = (man.get("hyperparameters") or {}).get("max_eval_samples")
    n = len(dev) if cap is None else min(cap, len(dev))
    texts_a = dev.texts_a[:n]
    texts_b = dev.texts_b[:n] if dev.texts_b is not None else None
    model, tokenizer = load_model(run)
    model.eval()
    outputs = []
    with torch.no_grad():
        for i in range(0, n, batch_size):
            enc = tokenizer(texts_a[i : i + batch_size], texts_b[i : i + batch_size] if texts_b else None,
                            truncation=True, max_length=man["max_seq_len"], padding=True,
                            return_tensors="pt")  # fmt: skip
            outputs.append(model(**enc).logits.float().numpy())
    logits = np.concatenate(outputs) if outputs else np.zeros((0, max(task.num_labels, 1)))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_predictions(out, task.is_regression, {dev.name: (logits, np.asarray(dev.labels[:n]))})
    return out
