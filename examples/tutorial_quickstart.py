"""Tutorial 1, quickstart: train a spiking network on rate-coded digits with trace learning.

The page is ``docs/tutorials/quickstart.md``; the sections between the ``--8<--`` markers are
what it shows.

    python examples/tutorial_quickstart.py            # 10 epochs, about a minute on 2 shared cores
    python examples/tutorial_quickstart.py --quick    # 1 epoch of 10 batches
"""

from __future__ import annotations

import argparse

# --8<-- [start:imports]
import torch
import torch.nn.functional as F

import tracetorch as tt

# --8<-- [end:imports]


def main(quick: bool = False, seed: int = 0) -> dict[str, float]:
    """Train by hand, then with the Trainer; return both test accuracies."""
    epochs, max_batches = (1, 10) if quick else (10, None)
    tt.training.seed_everything(seed)

    # --8<-- [start:data]
    task = tt.data.Digits(steps=25, seed=seed)  # 8x8 digits, Bernoulli rate-coded
    x, y = next(task.batches("train", batch_size=32))
    print(x.shape, y.shape)  # torch.Size([25, 32, 64]) torch.Size([32]): [T, B, F], [B]
    # --8<-- [end:data]

    # --8<-- [start:model]
    net = tt.nn.Sequential(tt.nn.LIF(64, 128), tt.nn.LI(128, 10))
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    print(net)
    # --8<-- [end:model]

    # --8<-- [start:train]
    for epoch in range(epochs):
        for i, (x, y) in enumerate(task.batches("train", batch_size=32, epoch=epoch)):
            if max_batches is not None and i == max_batches:
                break
            net.reset_states()  # a new sequence starts
            out = net(x)  # [25, 32, 10]: no graph through time
            loss = F.cross_entropy(out[-1], y)  # any loss on the latest output
            opt.zero_grad()
            loss.backward()  # one local graph per layer
            opt.step()
    # --8<-- [end:train]

    # --8<-- [start:evaluate]
    correct = total = 0
    with torch.no_grad():
        for x, y in task.batches("test", batch_size=256, shuffle=False):
            net.reset_states()
            correct += int((net(x)[-1].argmax(-1) == y).sum())
            total += len(y)
    by_hand = correct / total
    print(f"test accuracy {100 * by_hand:.1f} %")
    # --8<-- [end:evaluate]

    # --8<-- [start:trainer]
    tt.training.seed_everything(seed)
    net = tt.nn.Sequential(tt.nn.LIF(64, 128), tt.nn.LI(128, 10))
    trainer = tt.training.Trainer(
        net, lr=5e-3, lr_schedule="cosine", batch_size=32, progress=False,
        max_batches=max_batches,
    )
    history = trainer.fit(task, epochs=epochs, log=print)
    print(f"test accuracy {100 * history['test_accuracy'][-1]:.1f} %")
    # --8<-- [end:trainer]
    return {"by_hand": by_hand, "trainer": history["test_accuracy"][-1]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 epoch of 10 batches")
    main(quick=parser.parse_args().quick)
