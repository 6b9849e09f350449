"""Learning on an endless, non-stationary stream: no resets, learning every k steps.

The stream: evidence accumulation trials back to back, ``k`` steps each, never reset. In a
trial, two groups of ``G`` channels click at rates ``rho (1 +- c)`` (``c ~ U[0.2, 0.8]`` per
trial, plus background spikes on every channel); the answer, read at the trial's last step, is
the group that clicked more (rule A) or the other one (rule B). The rule flips every
``--flip`` trials, without any signal but the errors. The network learns once per trial (every
``k`` steps) from the loss on its last output, and its state runs on across trials and
switches: 10^6 steps per stream by default.

Two learners on the same stream and network (``LIF(2G, 64) -> LI(64, 2)``): trace learning
(constant memory, no graph through time) and truncated BPTT over the same ``k`` steps (the
state carried over, detached at each trial start). Reported: the online accuracy (the answer
before learning from it) vs time, the accuracy aligned to the switches (adaptation), and the
resident memory over the run.

Run:
    python -m benchmarks.stream                      # both modes, 10^6 steps: ~10-20 min here
    python -m benchmarks.stream --steps 20000        # a quick look
    python -m benchmarks.stream --learn-dynamics \
        --out benchmarks/results/stream_learned_dynamics.json \
        --plot docs/img/stream_learned_dynamics.png  # decays and thresholds learn too
Writes ``benchmarks/results/stream.json`` and ``docs/img/stream.png`` (weights and biases
learn; the decays and thresholds are fixed: see ``docs/reward.md`` for why).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import tracetorch as tt
from tracetorch.metrics import current_memory_mb

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


class RuleFlipStream:
    """Trials of evidence accumulation back to back; the answer rule flips every ``flip`` trials."""

    def __init__(
        self,
        batch: int,
        k: int,
        group: int = 10,
        rate: float = 0.1,
        background: float = 0.02,
        flip: int = 500,
        seed: int = 0,
    ) -> None:
        self.batch, self.k, self.group, self.rate = batch, k, group, rate
        self.background, self.flip = background, flip
        self.gen = torch.Generator().manual_seed(seed)
        self.n_inputs = 2 * group

    def trial(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x [k, B, 2G], y [B])`` of trial ``index``."""
        b, g, gen = self.batch, self.group, self.gen
        winner = torch.randint(0, 2, (b,), generator=gen)
        c = 0.2 + 0.6 * torch.rand(b, generator=gen)
        fast, slow = self.rate * (1 + c), self.rate * (1 - c)
        r0 = torch.where(winner == 0, fast, slow)
        r1 = torch.where(winner == 0, slow, fast)
        p = torch.cat([r0.unsqueeze(1).expand(b, g), r1.unsqueeze(1).expand(b, g)], 1)
        p = 1 - (1 - p) * (1 - self.background)
        x = (torch.rand(self.k, b, 2 * g, generator=gen) < p).float()
        counts = torch.stack([x[:, :, :g].sum((0, 2)), x[:, :, g:].sum((0, 2))], 1)
        label = torch.where(
            counts[:, 0] == counts[:, 1], winner, (counts[:, 1] > counts[:, 0]).long()
        )
        rule_b = (index // self.flip) % 2 == 1
        return x, (1 - label) if rule_b else label


def make_net(n_in: int, k: int, hidden: int = 64, dynamics: bool = True) -> tt.nn.Sequential:
    # Windows of about one trial: traces and the readout forget the previous trial. The readout's
    # trace decay is tied to its beta, without bias, so its trace gradient is exact.
    d = 1.0 - 1.0 / k
    return tt.nn.Sequential(
        tt.nn.LIF(
            n_in,
            hidden,
            trace_decay=d,
            bias_correction=False,
            learn_beta=dynamics,
            learn_threshold=dynamics,
        ),
        tt.nn.LI(
            hidden, 2, bias=False, beta=d, trace_decay=d, bias_correction=False, learn_beta=dynamics
        ),
    )


def run(
    mode: str,
    steps: int,
    k: int,
    flip: int,
    batch: int,
    lr: float,
    seed: int,
    dynamics: bool = True,
) -> dict:
    torch.manual_seed(seed)
    stream = RuleFlipStream(batch, k, flip=flip, seed=seed)
    net = make_net(stream.n_inputs, k, dynamics=dynamics)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    trials = steps // k
    acc = np.zeros(trials, dtype=np.float32)
    memory: list[tuple[int, float]] = []
    start = time.perf_counter()
    net.reset_states()  # once: the stream is never reset again
    for i in range(trials):
        x, y = stream.trial(i)
        if mode == "bptt":
            net.detach_states()  # truncated BPTT: the graph spans this trial's k steps
            with tt.bptt(net):
                out = net(x)
                loss = F.cross_entropy(out[-1], y)
                opt.zero_grad()
                loss.backward()
        else:
            out = net(x)
            loss = F.cross_entropy(out[-1], y)
            opt.zero_grad()
            loss.backward()
        opt.step()
        acc[i] = (out[-1].argmax(-1) == y).float().mean().item()
        if i % max(1, trials // 200) == 0:
            memory.append(((i + 1) * k, round(current_memory_mb(), 1)))
    wall = time.perf_counter() - start
    return {
        "mode": mode,
        "steps": trials * k,
        "k": k,
        "flip_trials": flip,
        "batch": batch,
        "lr": lr,
        "seed": seed,
        "learn_dynamics": dynamics,
        "wall_s": round(wall, 1),
        "accuracy": acc.tolist(),
        "memory_mb": memory,
    }


def summarize(res: dict) -> dict:
    acc, flip = np.asarray(res["accuracy"]), res["flip_trials"]
    n_blocks = len(acc) // flip
    blocks = acc[: n_blocks * flip].reshape(n_blocks, flip)
    aligned = blocks[1:].mean(0)  # mean over every switch after the first block
    mem = [m for _, m in res["memory_mb"]]
    tail = max(1, flip // 5)
    return {
        "mode": res["mode"],
        "learn_dynamics": res.get("learn_dynamics", True),
        "steps": res["steps"],
        "wall_s": res["wall_s"],
        "switches": n_blocks - 1,
        "acc_first_10_trials_after_switch": round(float(aligned[:10].mean()), 3),
        "acc_last_20pct_of_block": round(float(aligned[-tail:].mean()), 3),
        "trials_to_80pct_after_switch": int(np.argmax(aligned >= 0.8))
        if (aligned >= 0.8).any()
        else None,
        "acc_last_10_blocks_tail": round(float(blocks[-10:, -tail:].mean()), 3),
        "rss_mb_min_max_after_first_5pct": [min(mem[len(mem) // 20 :]), max(mem[len(mem) // 20 :])],
    }


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for res in results:
        acc, k, flip = np.asarray(res["accuracy"]), res["k"], res["flip_trials"]
        w = max(1, flip // 10)
        smooth = np.convolve(acc, np.ones(w) / w, mode="valid")
        axes[0].plot((np.arange(len(smooth)) + w) * k, smooth, lw=0.6, label=res["mode"])
        n = len(acc) // flip
        aligned = acc[flip : n * flip].reshape(n - 1, flip).mean(0)
        axes[1].plot(np.arange(flip), aligned, label=res["mode"])
        steps, mem = zip(*res["memory_mb"], strict=True)
        axes[2].plot(steps, mem, label=res["mode"])
    axes[0].set(
        xlabel="step",
        ylabel=f"online accuracy (mean of {w} trials)",
        title="accuracy over the stream (rule flips)",
    )
    axes[1].set(
        xlabel="trials since the rule flipped",
        ylabel="online accuracy",
        title="adaptation, averaged over switches",
    )
    axes[2].set(xlabel="step", ylabel="resident memory (MiB)", title="memory over the run")
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--k", type=int, default=20, help="steps per trial = learning period")
    p.add_argument("--flip", type=int, default=500, help="trials between rule flips")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--modes", nargs="+", default=["trace", "bptt"])
    p.add_argument(
        "--learn-dynamics",
        action="store_true",
        help="learn the decays (beta) and thresholds too (default: weights and biases)",
    )
    p.add_argument("--out", type=Path, default=RESULTS / "stream.json")
    p.add_argument("--plot", type=Path, default=ROOT / "docs" / "img" / "stream.png")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    results = []
    for mode in args.modes:
        res = run(
            mode,
            args.steps,
            args.k,
            args.flip,
            args.batch,
            args.lr,
            args.seed,
            dynamics=args.learn_dynamics,
        )
        results.append(res)
        print(json.dumps(summarize(res)), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": [summarize(r) for r in results], "runs": results}))
    plot(results, args.plot)
    print(f"wrote {args.out} and {args.plot}")


if __name__ == "__main__":
    main()
