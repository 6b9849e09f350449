"""Tutorial 5, trace vs eligibility vs BPTT, and when trace learning is the wrong tool.

On ``tt.data.TemporalOrder`` the spike counts carry no information, only the order of two
cue bursts does. Trace learning sees the average input of a window, which is the same for
both orders, so it stays at chance; eligibility traces (e-prop) and BPTT carry timing. The
same network is trained in the three modes. The page is ``docs/tutorials/trace-vs-bptt.md``;
the measured figures are in ``benchmarks/results/temporal.json``
(``python -m benchmarks.temporal --report``).

    python examples/tutorial_trace_vs_bptt.py            # 10 epochs per mode
    python examples/tutorial_trace_vs_bptt.py --quick    # tiny: a few batches per mode
"""

from __future__ import annotations

import argparse

import tracetorch as tt

MODES = ("trace", "eligibility", "bptt")


def counts_are_uninformative(task: tt.data.TemporalOrder) -> float:
    """The largest gap between the classes' mean spike count on any channel (about 0)."""
    # --8<-- [start:counts]
    x, y = next(task.batches("test", batch_size=512, shuffle=False))  # x: [T, B, 8]
    counts = x.sum(0)  # [B, 8] spikes per channel: what a rate code keeps
    gap = (counts[y == 0].mean(0) - counts[y == 1].mean(0)).abs().max()
    print(f"largest difference of mean spike counts between the classes: {gap:.2f} spikes")
    # --8<-- [end:counts]
    return float(gap)


# --8<-- [start:train]
def train(task: tt.data.TemporalOrder, mode: str, epochs: int, max_batches: int | None,
          seed: int = 0) -> float:
    """``LIF(8, 128) -> LI(128, 2)`` trained in ``mode``; the final test accuracy."""
    tt.training.seed_everything(seed)
    net = tt.nn.Sequential(tt.nn.LIF(task.n_inputs, 128), tt.nn.LI(128, task.n_classes))
    trainer = tt.training.Trainer(net, lr=3e-3, lr_schedule="cosine", learning=mode,
                                  batch_size=64, max_batches=max_batches, progress=False)
    return trainer.fit(task, epochs=epochs)["test_accuracy"][-1]
# --8<-- [end:train]


def main(quick: bool = False, seed: int = 0) -> dict[str, float]:
    """The spike-count check, then one training per learning mode."""
    if quick:
        task = tt.data.TemporalOrder(steps=40, max_gap=20, train_size=128, test_size=128,
                                     seed=seed)
        epochs, max_batches = 1, 2
    else:
        task = tt.data.TemporalOrder(seed=seed)
        epochs, max_batches = 10, None
    result = {"count_gap": counts_are_uninformative(task)}
    # --8<-- [start:modes]
    for mode in MODES:
        result[mode] = train(task, mode, epochs, max_batches, seed)
        print(f"{mode:>11}: test accuracy {100 * result[mode]:.1f} %")
    # --8<-- [end:modes]
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few batches per mode")
    main(quick=parser.parse_args().quick)
