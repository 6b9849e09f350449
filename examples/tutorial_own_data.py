"""Tutorial 2, your own data: a ``Dataset`` of ``[T, F]`` sequences, batched ``[T, B, F]``.

Synthetic recordings stand in for yours: 8 noisy sensors whose activity profile gives the
class. The page is ``docs/tutorials/own-data.md``.

    python examples/tutorial_own_data.py            # 4 epochs
    python examples/tutorial_own_data.py --quick    # 1 epoch, 8 batches
"""

from __future__ import annotations

import argparse
import math

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

import tracetorch as tt


# --8<-- [start:dataset]
class Sensors(Dataset):
    """``n`` recordings ``[T, F]`` of ``F`` noisy sensors; the activity profile is the class.

    Each class has its own mean level per channel (a fixed random profile); a recording is
    that profile times a random gain, plus a slow oscillation and noise, clipped to [0, 1]:
    an analog input, fed to the first layer as a current. Deterministic per index.
    """

    def __init__(
        self, n: int, steps: int = 200, channels: int = 8, classes: int = 4, seed: int = 0
    ) -> None:
        self.n, self.steps, self.seed = n, steps, seed
        g = torch.Generator().manual_seed(1234)  # the same profiles for every split
        self.profiles = 0.2 + 0.6 * torch.rand(classes, channels, generator=g)  # [C, F]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        classes, channels = self.profiles.shape
        label = int(torch.randint(classes, (), generator=g))
        gain = 0.7 + 0.6 * torch.rand((), generator=g)
        t = torch.arange(self.steps, dtype=torch.float32).unsqueeze(1)  # [T, 1]
        phase = 2 * math.pi * torch.rand(channels, generator=g)  # [F]
        wave = 0.2 * torch.sin(2 * math.pi * t / 50 + phase)  # [T, F]
        noise = 0.2 * torch.randn(self.steps, channels, generator=g)
        x = (gain * self.profiles[label] + wave + noise).clamp(0, 1)
        return x, label  # x: [T, F], y: int
# --8<-- [end:dataset]


# --8<-- [start:collate]
def time_first(batch: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Collate ``B`` samples ``[T, F]`` into ``x [T, B, F]`` (time first) and ``y [B]``."""
    xs, ys = zip(*batch, strict=True)
    return torch.stack(xs, dim=1), torch.tensor(ys)
# --8<-- [end:collate]


def main(quick: bool = False, seed: int = 0) -> dict[str, float]:
    """Train by hand on blocks of a stream, then with the Trainer; return the accuracies."""
    epochs, max_batches = (1, 8) if quick else (4, None)
    tt.training.seed_everything(seed)

    # --8<-- [start:loaders]
    train = DataLoader(Sensors(1024, seed=seed), batch_size=32, shuffle=True,
                       collate_fn=time_first)
    test = DataLoader(Sensors(256, seed=seed + 1), batch_size=256, collate_fn=time_first)
    x, y = next(iter(train))
    print(x.shape, y.shape)  # torch.Size([200, 32, 8]) torch.Size([32])
    # --8<-- [end:loaders]

    # --8<-- [start:train]
    net = tt.nn.Sequential(tt.nn.LIF(8, 64, horizon=50), tt.nn.LI(64, 4))
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    for _ in range(epochs):
        for i, (x, y) in enumerate(train):
            if max_batches is not None and i == max_batches:
                break
            net.reset_states()
            for block in x.split(50):  # [50, B, 8]: the state carries over between blocks
                out = net(block)
            loss = F.cross_entropy(out[-1], y)  # learn at the end of the sequence
            opt.zero_grad()
            loss.backward()
            opt.step()
    # --8<-- [end:train]

    # --8<-- [start:evaluate]
    net.eval()
    with torch.no_grad():
        x, y = next(iter(test))
        net.reset_states()
        by_hand = tt.metrics.accuracy(net(x)[-1], y)
    print(f"test accuracy {100 * by_hand:.1f} %")
    # --8<-- [end:evaluate]

    # --8<-- [start:trainer]
    tt.training.seed_everything(seed)
    net = tt.nn.Sequential(tt.nn.LIF(8, 64, horizon=50), tt.nn.LI(64, 4))
    trainer = tt.training.Trainer(net, lr=5e-3, chunk_size=50, progress=False,
                                  max_batches=max_batches)
    history = trainer.fit(train, epochs=epochs, test=test, log=print)
    # --8<-- [end:trainer]
    return {"by_hand": by_hand, "trainer": history["test_accuracy"][-1]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 epoch of 8 batches")
    main(quick=parser.parse_args().quick)
