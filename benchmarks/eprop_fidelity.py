"""How close eligibility gradients are to BPTT's: cosine per parameter, float64.

Random spike inputs (p = 0.3), cross-entropy on the last readout output, reset detached in
both modes (``detach_reset=True``) unless the row says "kept". Rows: one hidden LIF layer,
two hidden LIF layers (reset detached and kept), and RLIF at three recurrent scales (e-prop's
approximation). Prints a markdown table; ``docs/learning-modes.md`` quotes it.

    python -m benchmarks.eprop_fidelity > benchmarks/results/eprop_fidelity.md
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import tracetorch as tt
from tracetorch.learning import cosine, gradients

f64 = torch.float64


def _loss(out, y):
    return F.cross_entropy(out[-1], y)


def fidelity(net: tt.nn.Sequential, steps: int, batch: int, seed: int = 0) -> dict[str, float]:
    g = torch.Generator().manual_seed(seed)
    n_in = net[0].in_features
    x = (torch.rand(steps, batch, n_in, generator=g) < 0.3).to(f64)
    y = torch.randint(0, net[-1].out_features, (batch,), generator=g)
    ref = gradients(net, [(x, y)], _loss, bptt_mode=True)
    with tt.eligibility(net):
        got = gradients(net, [(x, y)], _loss)
    return {k: cosine(got[k], v) for k, v in ref.items()}


def rows() -> list[tuple[str, dict[str, float]]]:
    torch.manual_seed(0)
    kw = {"beta": 0.9, "threshold": 0.5}
    out = []
    net = tt.nn.Sequential(tt.nn.LIF(6, 20, detach_reset=True, **kw), tt.nn.LI(20, 3, beta=0.95))
    out.append(("LIF, one hidden layer", fidelity(net.to(f64), 80, 16)))
    for detach in (True, False):
        torch.manual_seed(0)
        net = tt.nn.Sequential(
            tt.nn.LIF(6, 20, detach_reset=detach, **kw),
            tt.nn.LIF(20, 20, detach_reset=detach, **kw),
            tt.nn.LI(20, 3, beta=0.95),
        )
        name = "LIF, two hidden layers, reset " + ("detached" if detach else "kept in BPTT")
        out.append((name, fidelity(net.to(f64), 80, 16)))
    for scale in (0.05, 0.3, 1.0):
        torch.manual_seed(0)
        net = tt.nn.Sequential(
            tt.nn.RLIF(6, 12, detach_reset=True, recurrent_scale=scale, **kw),
            tt.nn.LI(12, 3, beta=0.95),
        )
        out.append((f"RLIF, recurrent_scale {scale}", fidelity(net.to(f64), 60, 8)))
    return out


def main() -> None:
    torch.set_num_threads(1)
    print("| net | lowest hidden weight | every parameter (min - max) |\n|---|---|---|")
    for name, fid in rows():
        values = list(fid.values())
        print(f"| {name} | {fid['0.weight']:.4f} | {min(values):.4f} - {max(values):.4f} |")


if __name__ == "__main__":
    main()
