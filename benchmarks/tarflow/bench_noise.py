"""Label accuracy of guided TarFlow digit samples by training noise level σ, over seeds.

    python benchmarks/tarflow/bench_noise.py [--sigmas 0.15 0.3 0.5 0.7] [--steps 600] [--seeds 0 1 2] [--workers 1]

The demo's sample-quality run (``digits-gen``, batch 64, lr 2e-3, label dropout 0.1, denoised samples scored
by :class:`labcore.digits.DigitClassifier`) with the noise level ``σ`` changed; one Markdown table, mean ± std
over the seeds (:mod:`labcore.seeds`; the seed sets initialisation, batches and samples).
"""

from __future__ import annotations

import argparse
import tempfile
from concurrent.futures import ProcessPoolExecutor
from functools import partial

from labcore.digits import DigitClassifier
from labcore.rng import seed_everything
from labcore.seeds import over_seeds, seed_table
from tarflow import PRESETS
from tarflow.data import digits
from tarflow.demo import label_accuracy
from tarflow.training import fit


def run(sigma: float, seed: int, steps: int, guidance: list[float]) -> dict[str, float]:
    """Label accuracy by guidance weight of one training run."""
    train = digits("train")
    seed_everything(seed)
    config = PRESETS["digits-gen"](noise_std=sigma)
    with tempfile.TemporaryDirectory() as out:
        model = fit(config, train, out, steps=steps, checkpoint_every=steps, seed=seed, batch_size=64, lr=2e-3,
                    drop_label=0.1, resume=False, progress_bar=False).model.eval()
    clf = DigitClassifier(*train.tensors)
    return {f"w = {w:g}": label_accuracy(model, clf, w, seed=seed)[0] for w in guidance}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.15, 0.3, 0.5, 0.7])
    p.add_argument("--guidance", type=float, nargs="+", default=[0.0, 2.0, 3.0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--workers", type=int, default=1, help="training runs in parallel processes")
    a = p.parse_args()
    jobs = [(s, seed) for s in a.sigmas for seed in a.seeds]
    with ProcessPoolExecutor(a.workers) as pool:
        results = dict(zip(jobs, pool.map(partial(run, steps=a.steps, guidance=a.guidance), *zip(*jobs))))
    rows = {f"σ = {s:g}": over_seeds(lambda seed, s=s: results[s, seed], a.seeds) for s in a.sigmas}
    print(f"digits-gen, {a.steps} steps; label accuracy of 100 denoised samples by guidance w\n")
    print(seed_table(rows, [f"w = {w:g}" for w in a.guidance], a.seeds, digits=2, label="noise"))

if __name__ == "__main__":
    main()
