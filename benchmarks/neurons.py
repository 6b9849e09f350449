"""Average-output models vs the simulated neurons, and trace-vs-BPTT gradient cosines.

For every neuron type, under constant input currents ``c`` (a grid over ``[0, 2 theta]``
per neuron), the layer's average output (the local graph of trace learning) is compared with
the firing rate of the simulated neuron (its reference step, 3,000 steps, rate over the last
2,000), and, on a random spike input, the trace-mode gradients with BPTT's (cosine per
parameter). Prints two markdown tables (the ones in ``docs/neurons.md``) and writes
``docs/img/neurons_rates.png`` with ``--plot``.

    python -m benchmarks.neurons [--plot]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

import tracetorch as tt

STEPS, BURN = 3000, 1000


def _simulate(layer, c: torch.Tensor) -> torch.Tensor:
    """Firing rate of ``layer``'s neuron under constant current ``c [B, F]``."""
    p = layer.neuron_params(bptt=False)
    state = layer.state_type(*(torch.zeros_like(c) for _ in layer.state_type._fields))
    total = torch.zeros_like(c)
    with torch.no_grad():
        for t in range(STEPS):
            s, state = layer.step(c, state, p)
            if t >= BURN:
                total += s
    return total / (STEPS - BURN)


def _model(layer, c: torch.Tensor) -> torch.Tensor:
    """The layer's average output with ``W a + b`` replaced by ``c``."""
    with torch.no_grad():
        layer.input_current = lambda a: a  # the local graph with the identity synapse
        try:
            return layer.average_output(c)
        finally:
            del layer.input_current


def rate_errors(beta: float) -> dict[str, tuple[float, float]]:
    """``{layer: (max abs error, mean abs error)}`` over ``c in [0, 2 theta]``."""
    torch.manual_seed(0)
    n = 64
    c = torch.linspace(0, 2, 201, dtype=torch.float64).unsqueeze(1).expand(201, n).contiguous()
    layers = {
        "LIF": tt.nn.LIF(n, n, beta=beta),
        "Synaptic": tt.nn.Synaptic(n, n, beta=beta, alpha=0.8),
        "ALIF": tt.nn.ALIF(n, n, beta=beta),
        "RLIF": tt.nn.RLIF(n, n, beta=beta, recurrent_scale=0.5),
    }
    out = {}
    for name, layer in layers.items():
        layer = layer.double()
        scale = (1 - 0.8) if name == "Synaptic" else 1.0  # same stationary current
        cc = c * scale
        err = (_model(layer, cc) - _simulate(layer, cc)).abs()
        out[name] = (float(err.max()), float(err.mean()))
    return out


def cosines(seed: int = 0) -> dict[str, dict[str, float]]:
    """Trace vs BPTT cosine per parameter of ``layer -> LI`` on a random spike sequence."""
    torch.manual_seed(seed)
    x = (torch.rand(50, 32, 16) < 0.3).double()
    y = torch.randint(0, 4, (32,))
    out = {}
    for cls in (tt.nn.LIF, tt.nn.RLIF, tt.nn.ALIF, tt.nn.Synaptic):
        net = tt.nn.Sequential(cls(16, 32), tt.nn.LI(32, 4)).double()
        fid = tt.gradient_fidelity(net, x, y, lambda o, t: F.cross_entropy(o[-1], t))
        out[cls.__name__] = {k: round(v, 3) for k, v in fid.items()}
    conv = tt.nn.Sequential(
        tt.nn.ConvLIF(1, 4, 3, padding=1), tt.nn.AvgPool2d(2), tt.nn.Flatten(), tt.nn.LI(16, 4)
    ).double()
    xi = (torch.rand(50, 32, 1, 4, 4) < 0.3).double()
    fid = tt.gradient_fidelity(conv, xi, y, lambda o, t: F.cross_entropy(o[-1], t))
    out["ConvLIF"] = {k: round(v, 3) for k, v in fid.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| layer | beta | max abs error | mean abs error |\n|---|---|---|---|")
    for beta in (0.5, 0.9, 0.99):
        for name, (mx, mean) in rate_errors(beta).items():
            print(f"| {name} | {beta} | {mx:.3f} | {mean:.3f} |")
    print("\n| layer | parameter | cosine |\n|---|---|---|")
    for name, fid in cosines().items():
        for p, v in fid.items():
            print(f"| {name} | {p} | {v:.3f} |")
    if args.plot:
        _plot()


def _plot() -> None:
    import matplotlib.pyplot as plt

    n = 1
    c = torch.linspace(0, 2, 201, dtype=torch.float64).unsqueeze(1)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, (name, layer, scale) in zip(
        axes,
        [
            ("Synaptic (alpha 0.8)", tt.nn.Synaptic(n, n, beta=0.9, alpha=0.8), 0.2),
            ("ALIF (rho 0.02, alpha 0.99)", tt.nn.ALIF(n, n, beta=0.9), 1.0),
            ("LIF", tt.nn.LIF(n, n, beta=0.9), 1.0),
        ],
        strict=True,
    ):
        layer = layer.double()
        cc = c * scale
        ax.plot(c[:, 0], _simulate(layer, cc)[:, 0], label="simulated", lw=2)
        ax.plot(c[:, 0], _model(layer, cc)[:, 0], "--", label="average output")
        ax.set_title(f"{name}, beta 0.9")
        ax.set_xlabel("stationary current / theta")
    axes[0].set_ylabel("rate (spikes/step)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig("docs/img/neurons_rates.png", dpi=110)
    print("wrote docs/img/neurons_rates.png")


if __name__ == "__main__":
    main()
