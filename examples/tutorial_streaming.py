"""Tutorial 4, learning mid-stream and checkpointing a stream.

An endless stream is fed block by block, never reset, and the network learns after every
block. Halfway, everything is saved with ``torch.save`` (parameters, optimizer, the stream
state of every layer), loaded into a fresh network and optimizer, and the stream continues:
the outputs and parameters are bit-identical to the run that was never interrupted. The
page is ``docs/tutorials/streaming.md``.

    python examples/tutorial_streaming.py            # 2 x 200 blocks
    python examples/tutorial_streaming.py --quick    # 2 x 20 blocks
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

import tracetorch as tt

BATCH, CHANNELS, BLOCK = 16, 16, 50


# --8<-- [start:stream]
def block(k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Block ``k`` of the stream: ``x [50, 16, 16]`` spikes, ``y [16]``.

    In each block, and each of the 16 parallel streams, one of two channel groups fires
    faster; ``y`` says which. The block depends only on ``(seed, k)``, so a resumed stream
    needs no random state.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + k)
    y = torch.randint(0, 2, (BATCH,), generator=g)
    group = torch.arange(CHANNELS) >= CHANNELS // 2  # [F]: False = group 0, True = group 1
    fast = group.unsqueeze(0) == y.bool().unsqueeze(1)  # [B, F]
    p = torch.where(fast, 0.3, 0.1)
    return torch.bernoulli(p.expand(BLOCK, BATCH, CHANNELS), generator=g), y
# --8<-- [end:stream]


# --8<-- [start:model]
def make(seed: int = 0) -> tuple[tt.nn.Sequential, torch.optim.Optimizer]:
    """A fresh network and optimizer (initial weights from ``seed``)."""
    torch.manual_seed(seed)
    net = tt.nn.Sequential(tt.nn.LIF(CHANNELS, 64, horizon=BLOCK), tt.nn.LI(64, 2))
    return net, torch.optim.Adam(net.parameters(), lr=3e-3)


def learn(net: tt.nn.Sequential, opt: torch.optim.Optimizer, first: int, last: int) -> float:
    """Feed blocks ``first .. last - 1`` and learn after each; the accuracy of the last half."""
    correct = total = 0
    for k in range(first, last):
        x, y = block(k)
        out = net(x)  # the state carries over from the previous block: no reset, no detach
        loss = F.cross_entropy(out[-1], y)
        opt.zero_grad()
        loss.backward()  # learn mid-stream
        opt.step()
        if k >= (first + last) // 2:
            correct += int((out[-1].argmax(-1) == y).sum())
            total += len(y)
    return correct / total
# --8<-- [end:model]


def main(quick: bool = False) -> dict[str, float | bool]:
    """Run the stream straight through and with a save/load halfway; compare."""
    half = 20 if quick else 200

    # --8<-- [start:straight]
    net, opt = make()
    learn(net, opt, 0, half)
    acc = learn(net, opt, half, 2 * half)
    x, _ = block(2 * half)
    with torch.no_grad():
        straight = net(x)  # the outputs on the next block, never interrupted
    print(f"accuracy over the last blocks {100 * acc:.1f} %")
    # --8<-- [end:straight]

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stream.pt"
        # --8<-- [start:save]
        net, opt = make()
        learn(net, opt, 0, half)
        torch.save(
            {
                "model": net.state_dict(),  # parameters
                "optimizer": opt.state_dict(),
                "stream": net.stream_state_dict(),  # membranes, traces, steps since reset
                "next_block": half,
            },
            path,
        )
        # --8<-- [end:save]

        # --8<-- [start:load]
        net, opt = make(seed=1)  # a fresh process: other initial weights, empty state
        ckpt = torch.load(path, weights_only=True)
        net.load_state_dict(ckpt["model"])  # this resets the stream state ...
        net.load_stream_state_dict(ckpt["stream"])  # ... so restore it afterwards
        opt.load_state_dict(ckpt["optimizer"])
        learn(net, opt, ckpt["next_block"], 2 * half)
        with torch.no_grad():
            resumed = net(x)
        print("bit-identical:", torch.equal(resumed, straight))  # True
        # --8<-- [end:load]
    return {"accuracy": acc, "identical": torch.equal(resumed, straight)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 x 20 blocks")
    main(quick=parser.parse_args().quick)
