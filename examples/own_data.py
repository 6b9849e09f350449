"""Your own data in an .npz file, trained from Python and from the command line (docs/data.md).

The file holds 600 made-up recordings of 20 steps x 16 channels (bool spikes) in 3 classes:
class c fires its own group of 4 channels more often, then every channel goes quiet for the
last 5 steps, so the net must remember. The test split is drawn from the file (20 % of each
class, seeded).

Run:
    python examples/own_data.py                   # a few seconds on one CPU core
    python examples/own_data.py --out toy.npz     # keep the file, then:
    tracetorch train --data toy.npz --epochs 10 --layers lif:64
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

import tracetorch as tt
from tracetorch.models import build_model
from tracetorch.training import Trainer


def make_file(path: Path, n: int = 600, seed: int = 0) -> Path:
    """Write the toy data set: x [n, 20, 16] bool, y [n] int."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    rate = np.where(np.arange(16)[None, :] // 4 == y[:, None], 0.5, 0.08)  # [n, 16]
    x = rng.random((n, 20, 16)) < rate[:, None, :]
    x[:, 15:] = False  # a silent end: the answer is read 5 steps after the last input
    np.savez(path, x=x, y=y)  # np.savez, not savez_compressed: memory-mapped when read
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="keep the .npz file here")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = make_file(args.out or Path(tmp) / "toy.npz")
        task = tt.data.ArrayTask.from_npz(path, test_fraction=0.2, seed=0)
        print(task)  # ArrayTask(source=..., n_inputs=16, n_classes=3, steps=20, ...)
        torch.manual_seed(0)
        net = build_model(task, 64)  # LIF(16, 64) -> LI(64, 3)
        trainer = Trainer(net, lr=5e-3, batch_size=32, lr_schedule="cosine", progress=False)
        history = trainer.fit(task, args.epochs, log=print)
        print(f"test accuracy {100 * history['test_accuracy'][-1]:.1f}% (chance 33.3%)")
        if args.out:
            print(f"the same from the shell: tracetorch train --data {path} --layers lif:64")


if __name__ == "__main__":
    main()
