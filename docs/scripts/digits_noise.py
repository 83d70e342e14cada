"""The digits label-noise table of docs/classification.md (issue 5): run from the repository root,

    .venv/bin/python docs/scripts/digits_noise.py > docs/digits_noise_table.md

Six objectives, symmetric label noise 0.0/0.2/0.4/0.6 on the training labels only, 3 seeds
(paired: the same split, noise, initial weights and batch order for every objective), an MLP
(64, 64) trained with Adam (lr 0.01, batches of 64) for 60 epochs; accuracy and ECE on the
clean test set, mean ± sd over the seeds.
"""

from __future__ import annotations

import time

import torch

from likelab.classify import compare

OBJECTIVES = ["log", "linear", "mae", "gce:q=0.7", "brier", "focal:gamma=2"]
NOISE = [0.0, 0.2, 0.4, 0.6]


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    results = {}
    for eta in NOISE:
        c = compare(
            "digits",
            OBJECTIVES,
            seeds=3,
            noise=None if eta == 0 else f"symmetric:{eta}",
            model="mlp:64,64",
            epochs=60,
            batch_size=64,
            lr=0.01,
            eval_every=0,
        )
        results[eta] = {row["objective"]: row for row in c.rows()}
    names = list(results[NOISE[0]])
    for metric in ("accuracy", "ece"):
        print(f"\n**{metric}** (clean test set, mean ± sd over 3 seeds)\n")
        print("| objective | " + " | ".join(f"noise {eta}" for eta in NOISE) + " |")
        print("|---|" + "---:|" * len(NOISE))
        for name in names:
            cells = [
                f"{results[eta][name][metric]:.3f} ± {results[eta][name][metric + '_sd']:.3f}"
                for eta in NOISE
            ]
            print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\n({len(NOISE) * len(OBJECTIVES) * 3} networks in {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
