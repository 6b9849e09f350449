"""Evidence accumulation over a long delay, trained in constant memory with trace learning.

Two groups of input channels click at different rates for 100 steps; then comes a delay of
``--delay`` steps with background spikes only; then a recall cue. The network must answer, at
the very last step, which group clicked more. The sequence is generated and fed chunk by
chunk, and the network keeps no graph through time, so memory is the same for a delay of 300
or 20,000 steps.

Run:
    python examples/evidence.py                  # delay 300, about 15 s on one CPU core
    python examples/evidence.py --delay 20000    # a research figure: several minutes
    python examples/evidence.py --trainer        # the same with tracetorch.training.Trainer

The equivalent command: ``tracetorch train --task evidence --delay 300``.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F

import tracetorch as tt
from tracetorch.metrics import peak_memory_mb
from tracetorch.training import Trainer


def make_net(task: tt.data.Evidence, hidden: int) -> tt.nn.Sequential:
    # A slow readout holds the evidence through the delay: beta = 1 - 1/T (time constant T).
    # Its trace decay is tied to beta without bias correction, so W a / (1 - beta) equals its
    # membrane and its trace gradient is exact. No biases: a bias on a readout with
    # beta ~ 1 grows to b / (1 - beta), and a hidden bias makes neurons fire on background.
    slow = 1.0 - 1.0 / task.steps
    return tt.nn.Sequential(
        tt.nn.LIF(task.n_inputs, hidden, bias=False, trace_decay=slow, bias_correction=False),
        tt.nn.LI(hidden, 2, bias=False, beta=slow, trace_decay=slow, bias_correction=False),
    )


def train_by_hand(net, task, epochs: int, lr: float, batch_size: int, chunk: int) -> None:
    """The loop the Trainer runs: stream the chunks, learn once at the recall cue."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda e: 0.5 * (1 + math.cos(math.pi * e / epochs))
    )
    for epoch in range(epochs):
        start, losses = time.perf_counter(), []
        for x, y in task.batches("train", batch_size, epoch=epoch):  # x: a SpikeStream
            net.reset_states()
            for i, piece in enumerate(x.chunks(chunk)):  # [<= chunk, B, 25]
                last = (i + 1) * chunk >= x.steps
                with torch.set_grad_enabled(last):  # only the last piece makes a graph node
                    out = net(piece)
            loss = F.cross_entropy(out[-1], y)  # the answer at the last step
            opt.zero_grad()
            loss.backward()  # each layer learns from its trace: no graph through time
            opt.step()
            losses.append(loss.item())
        sched.step()
        acc = test_accuracy(net, task, batch_size, chunk)
        print(
            f"epoch {epoch + 1}/{epochs}: train loss {sum(losses) / len(losses):.3f}, "
            f"test accuracy {100 * acc:.1f}% ({time.perf_counter() - start:.0f} s)"
        )


@torch.no_grad()
def test_accuracy(net, task, batch_size: int, chunk: int) -> float:
    correct = total = 0
    for x, y in task.batches("test", batch_size):
        net.reset_states()
        for piece in x.chunks(chunk):
            out = net(piece)
        correct += int((out[-1].argmax(-1) == y).sum())
        total += len(y)
    net.reset_states()
    return correct / total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--delay", type=int, default=300)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--chunk", type=int, default=250, help="steps per chunk")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trainer", action="store_true", help="use tracetorch.training.Trainer")
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)

    task = tt.data.Evidence(delay=args.delay, seed=args.seed)
    net = make_net(task, args.hidden)
    print(f"{task!r}\n{net}")
    start = time.perf_counter()
    if args.trainer:
        trainer = Trainer(net, lr=args.lr, batch_size=args.batch_size, chunk_size=args.chunk)
        history = trainer.fit(task, args.epochs, log=print)
        acc = history["test_accuracy"][-1]
    else:
        train_by_hand(net, task, args.epochs, args.lr, args.batch_size, args.chunk)
        acc = test_accuracy(net, task, args.batch_size, args.chunk)
    print(
        f"delay {args.delay}: test accuracy {100 * acc:.1f}% in {time.perf_counter() - start:.0f}"
        f" s, peak memory {peak_memory_mb():.0f} MB"
    )


if __name__ == "__main__":
    main()
