"""Tutorial 6, GPU use: device placement, the finiteness check and syncs, mixed precision.

Runs on the CPU too: the CUDA-only parts (float16 with a gradient scaler, the peak memory of
the device) are skipped there. The page is ``docs/tutorials/gpu.md``.

    python examples/tutorial_gpu.py            # 3 epochs
    python examples/tutorial_gpu.py --quick    # 5 batches
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

import tracetorch as tt


def main(quick: bool = False, seed: int = 0) -> dict[str, float]:
    """Train digits on the best device available, in bfloat16 autocast; report accuracy."""
    epochs, max_batches = (1, 5) if quick else (3, None)
    tt.training.seed_everything(seed)

    # --8<-- [start:device]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net = tt.nn.Sequential(tt.nn.LIF(64, 256), tt.nn.LIF(256, 256), tt.nn.LI(256, 10))
    net = net.to(device)  # parameters; the state is created on the input's device
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    task = tt.data.Digits(steps=25, seed=seed)
    # --8<-- [end:device]

    # --8<-- [start:finite]
    for layer in tt.learning.trace_layers(net):
        layer.check_finite = False  # no finiteness reduction (and no host sync) per call
    # --8<-- [end:finite]

    # --8<-- [start:train]
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(enabled=amp_dtype == torch.float16)  # float16 needs it
    for epoch in range(epochs):
        total = torch.zeros((), device=device)  # summed on the device: no sync per batch
        for i, (x, y) in enumerate(task.batches("train", batch_size=128, epoch=epoch)):
            if max_batches is not None and i == max_batches:
                break
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            net.reset_states()
            with torch.autocast(device.type, dtype=amp_dtype):
                out = net(x)  # states, traces and decays stay float32 inside the layers
                loss = F.cross_entropy(out[-1].float(), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            total += loss.detach()
        print(f"epoch {epoch + 1}: mean loss {float(total) / (i + 1):.3f}")  # one sync
    # --8<-- [end:train]

    # --8<-- [start:evaluate]
    for layer in tt.learning.trace_layers(net):
        layer.check_finite = True  # back on: a NaN now raises instead of hiding
    correct = torch.zeros((), device=device)
    with torch.no_grad(), torch.autocast(device.type, dtype=amp_dtype):
        for x, y in task.batches("test", batch_size=512, shuffle=False):
            net.reset_states()
            out = net(x.to(device))
            correct += (out[-1].argmax(-1) == y.to(device)).sum()
    acc = float(correct) / task.num_samples("test")
    print(f"test accuracy {100 * acc:.1f} % on {device}")
    if device.type == "cuda":
        print(f"peak memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    # --8<-- [end:evaluate]
    return {"accuracy": acc}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 batches")
    main(quick=parser.parse_args().quick)
