"""Tutorial 3, trace decays and horizons: what the window of a trace does to learning.

Converts between decays, horizons and half-lives, then trains the same network on evidence
accumulation (the evidence comes 100 steps or more before the answer) with three horizons
of the hidden layer's input trace, and plots the trace weights and the accuracies. The page
is ``docs/tutorials/horizons.md``.

    python examples/tutorial_horizons.py --plot docs/img/tutorial_horizons.png
    python examples/tutorial_horizons.py --quick    # tiny: a few seconds
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import tracetorch as tt


def conversions() -> dict[str, float]:
    """The three ways to name a trace's window, and the weights it gives the past."""
    # --8<-- [start:conversions]
    tf = tt.functional
    d = tf.decay_from_horizon(20)  # 1 - 1/20 = 0.95: a window of about 20 steps
    h, half = tf.horizon_from_decay(d), tf.halflife_from_decay(d)
    print(f"d {d:.3f}, horizon {h:.1f} steps, half-life {half:.1f} steps")  # 0.950 20.0 13.5
    print(f"{tf.decay_from_halflife(half):.3f}")  # 0.950 again

    # The average input a = t (1 - d) weighs the input j steps back by (1 - d) d^j:
    w = tf.trace_weights(d, 100) * (1 - d)  # [100], oldest first
    print(f"{w.sum():.3f} in all, {w[-20:].sum():.3f} from the last 20 steps")  # 0.994 0.642

    # A constant input settles the trace at x / (1 - d): the average input is x again.
    t = tf.trace_run(torch.zeros(1, 1), torch.full((500, 1, 1), 0.3), d)
    print(f"{float(t):.3f} {tf.stationary_value(0.3, d):.3f}")  # 6.000 6.000
    # --8<-- [end:conversions]
    return {"decay": d, "horizon": h, "halflife": half, "stationary": float(t)}


# --8<-- [start:model]
def make_net(task: tt.data.Evidence, horizon: float, hidden: int = 64) -> tt.nn.Sequential:
    """``LIF -> LI``; the input traces of both layers average over about ``horizon`` steps.

    The readout is slow (``beta = 1 - 1/T``) so that the forward pass holds the evidence
    until the end, whatever the horizon: only learning changes.
    """
    slow = 1.0 - 1.0 / task.steps
    return tt.nn.Sequential(
        tt.nn.LIF(task.n_inputs, hidden, bias=False, horizon=horizon, bias_correction=False),
        tt.nn.LI(hidden, 2, bias=False, beta=slow, horizon=horizon, bias_correction=False),
    )
# --8<-- [end:model]


def train(task: tt.data.Evidence, horizon: float, epochs: int, seed: int) -> float:
    """Train ``make_net(task, horizon)`` (loss at the last step); return the test accuracy."""
    tt.training.seed_everything(seed)
    net = make_net(task, horizon)
    trainer = tt.training.Trainer(net, lr=3e-3, lr_schedule="cosine", batch_size=64,
                                  progress=False)
    return trainer.fit(task, epochs=epochs)["test_accuracy"][-1]


def plot(path: Path, horizons: list[float], accuracy: dict[float, float], task) -> None:
    """Left: the weight of the input j steps back; right: test accuracy per horizon."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax, bx = fig.subplots(1, 2, width_ratios=(2, 1))
    back = torch.arange(task.steps)
    for h in horizons:
        d = tt.functional.decay_from_horizon(h)
        ax.plot(back, (1 - d) * d ** back.double(), label=f"horizon {h:g} (d = {d:.3f})")
    ax.axvspan(task.steps - task.listen, task.steps, color="0.85", label="evidence")
    ax.set(xlabel="steps back from the answer", ylabel="weight in the average input",
           yscale="log", ylim=(1e-5, 0.2))
    ax.legend(fontsize=8)
    bx.bar([f"{h:g}" for h in horizons], [100 * accuracy[h] for h in horizons], color="C0")
    bx.axhline(50, color="0.5", ls="--", lw=1)
    bx.set(xlabel="horizon of the hidden trace", ylabel="test accuracy %", ylim=(0, 100))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(quick: bool = False, plot_path: str | None = None, seed: int = 0) -> dict:
    """Conversions, then one training per horizon; optionally save the figure."""
    result: dict = {"conversions": conversions()}
    if quick:
        task = tt.data.Evidence(delay=20, listen=40, train_size=128, test_size=128, seed=seed)
        epochs = 1
    else:
        task = tt.data.Evidence(delay=100, train_size=1024, test_size=512, seed=seed)
        epochs = 4
    horizons = [10.0, 50.0, float(task.steps)]
    # --8<-- [start:experiment]
    accuracy = {h: train(task, h, epochs, seed) for h in horizons}
    for h, acc in accuracy.items():
        print(f"horizon {h:5.0f} steps: test accuracy {100 * acc:.1f} %")
    # --8<-- [end:experiment]
    result["accuracy"] = accuracy
    if plot_path:
        plot(Path(plot_path), horizons, accuracy, task)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny task, 1 epoch")
    parser.add_argument("--plot", default=None, help="save the figure here (PNG)")
    args = parser.parse_args()
    main(quick=args.quick, plot_path=args.plot)
