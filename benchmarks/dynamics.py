"""Do the peers run the same network? Spike agreement with tracetorch from the same weights.

Every library gets tracetorch's initial weights and the same Bernoulli input; the check
reports, per layer, the fraction of (step, sample, neuron) whose spike equals tracetorch's and
the largest readout difference. Spike trains of chaotic networks drift apart after the first
differing spike, so the agreement is measured over a short window (``steps``).
"""

from __future__ import annotations

import torch

from .common import NetSpec, bernoulli_stream, set_threads
from .peers import available, build


def agreement(
    libraries: list[str], spec: NetSpec | None = None, steps: int = 100, seed: int = 0
) -> dict[str, dict]:
    """``{library: {"layer_agreement": [...], "readout_max_abs_diff": float}}`` vs tracetorch."""
    spec = spec or NetSpec()
    set_threads(1)
    torch.manual_seed(seed)
    ref = build("tracetorch", spec)
    x = next(bernoulli_stream(steps, 16, spec.n_in, 0.2, steps, seed))
    with torch.no_grad():
        ref.reset()
        ref_out = ref.spikes(x)
    usable, missing = available([lib for lib in libraries if lib != "tracetorch"])
    result: dict[str, dict] = {lib: {"error": why} for lib, why in missing.items()}
    for lib in usable:
        peer = build(lib, spec)
        with torch.no_grad():
            for (w, b), (w0, b0) in zip(peer.linears(), ref.linears(), strict=True):
                w.copy_(w0)
                b.copy_(b0)
            peer.reset()
            out = peer.spikes(x)
        pairs = zip(out[:-1], ref_out[:-1], strict=True)
        layers = [float((a == b).float().mean()) for a, b in pairs]
        result[lib] = {
            "layer_agreement": layers,
            "readout_max_abs_diff": float((out[-1] - ref_out[-1]).abs().max()),
            "readout_scale": float(ref_out[-1].abs().max()),
            "spike_rates": [float(s.mean()) for s in ref_out[:-1]],
            "steps": steps,
        }
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(agreement(["snntorch", "norse", "spikingjelly", "floor"]), indent=1))
