"""The classification trainer against a plain hand-written PyTorch loop.

Same run, same everything: scikit-learn's digits (1,257 training images, 64 features), the
same MLP (64, 64) with the same initial weights, Adam (lr 0.01), mini-batches of 64 in the same
seeded order, the log objective (``torch.nn.functional.cross_entropy`` in the plain loop), 20
epochs, float32, one thread. The plain loop is what one writes by hand: forward, loss,
zero_grad, backward, step. likelab's trainer also builds the ``Categorical`` predictive, scores
it through the objective registry, and records the training loss and the gradient norm of every
batch; with ``eval_every=0`` it skips the per-epoch test metrics (the plain loop computes none),
and the cost of those metrics is printed separately. Target: the trainer within 10% of the loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks._timing import best_time, fmt_seconds
from likelab.classify import build_model, load_dataset, train

EPOCHS = 20
BATCH = 64


def plain_loop(data, seed: int = 0) -> torch.nn.Module:
    x = torch.as_tensor(data.x_train)
    y = torch.as_tensor(data.y_train)
    net = build_model("mlp:64,64", x.shape[1], data.num_classes, seed=seed)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(seed)
    n = len(y)
    for _ in range(EPOCHS):
        net.train()
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, BATCH):
            idx = order[start : start + BATCH]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


def main() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = load_dataset("digits", seed=0)
        opts = {"epochs": EPOCHS, "batch_size": BATCH, "lr": 0.01}
        # same weights at the end: the same computation, not just the same amount of it
        a = plain_loop(data)
        b = train(data, "log", eval_every=0, **opts).network
        drift = max(
            float((p - q).detach().abs().max())
            for p, q in zip(a.parameters(), b.parameters(), strict=True)
        )
        t_plain = best_time(lambda: plain_loop(data), repeat=5, min_time=0.5)
        t_lab = best_time(lambda: train(data, "log", eval_every=0, **opts), repeat=5, min_time=0.5)
        t_eval = best_time(lambda: train(data, "log", eval_every=1, **opts), repeat=5, min_time=0.5)
    finally:
        torch.set_num_threads(threads)
    print(
        f"digits: {len(data.y_train)} training examples, mlp:64,64, Adam, batch {BATCH}, "
        f"log objective, {EPOCHS} epochs, float32, 1 thread"
    )
    print(f"  final weights, trainer vs plain loop: max |difference| {drift:.1e}")
    print(f"  baseline (plain PyTorch loop):           {fmt_seconds(t_plain / EPOCHS)} per epoch")
    print(f"  likelab.classify.train (eval_every=0):   {fmt_seconds(t_lab / EPOCHS)} per epoch")
    print(f"  ratio likelab / plain loop: {t_lab / t_plain:.3f} (time; target <= 1.10)")
    print(
        f"  with test metrics every epoch:           {fmt_seconds(t_eval / EPOCHS)} per epoch "
        f"(ratio {t_eval / t_plain:.3f})"
    )
