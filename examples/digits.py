"""Train a spiking network on handwritten digits with trace learning, in constant memory.

    python examples/digits.py                 # trace learning, ~97% test accuracy
    python examples/digits.py --bptt          # the same network trained with BPTT
    python examples/digits.py --seed 1 --epochs 10

Steps:

1. **Data.** ``tt.data.load_digits`` gives scikit-learn's 8x8 digits as 64 intensities in
   [0, 1] (1347 training, 450 test images). ``tt.encode.rate`` turns each batch into
   Bernoulli spikes ``[T=25, B, 64]``: pixel ``f`` fires with probability ``x_f`` each step,
   fresh spikes every epoch.
2. **Network.** ``LIF(64, 128)`` (leaky integrate-and-fire, beta 0.9, threshold 1) feeds a
   leaky-integrator readout ``LI(128, 10)`` whose membranes are the logits; its default beta
   of 0.99 integrates the whole 25-step sequence. Every setting is the library default.
3. **Learning.** ``loss.backward()`` on the latest output, ``out[-1]``, as in plain PyTorch.
   In trace mode (the default) every layer is one autograd node whatever ``T``: its backward
   rebuilds one average step from the layer's input trace and differentiates the average
   output (LIF: firing rate ``rate_fn``, LI: ``c / (1 - beta)``), so memory does not grow
   with ``T``. ``--bptt`` runs the same network inside ``tt.bptt(net)``: surrogate spike
   gradients through all 25 steps, the exact (O(T)-memory) reference.
4. **Recipe** (measured in ``docs/defaults.md``): Adam, learning rate 5e-3 with a cosine
   decay to 0 over 30 epochs, batch 32, cross-entropy on ``out[-1]``.
5. **Test.** Accuracy of ``out[-1].argmax()`` on the test set, the mean over 5 random
   encodings of it.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import tracetorch as tt

STEPS = 25  # timesteps per digit


def accuracy(net: tt.nn.Sequential, x: torch.Tensor, y: torch.Tensor, encodings: int = 5) -> float:
    """Test accuracy of ``out[-1]``, averaged over ``encodings`` spike encodings of ``x``."""
    gen = torch.Generator().manual_seed(1234)
    correct = 0.0
    with torch.no_grad():
        for _ in range(encodings):
            net.reset_states()
            out = net(tt.encode.rate(x, STEPS, generator=gen))  # [T, N, 10]
            correct += (out[-1].argmax(-1) == y).float().mean().item()
    return correct / encodings


def main() -> None:
    parser = argparse.ArgumentParser(description="tracetorch on scikit-learn's digits")
    parser.add_argument("--bptt", action="store_true", help="train with BPTT instead")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    # 1. Data: intensities in [0, 1], rate-coded per batch below.
    x_train, y_train, x_test, y_test = tt.data.load_digits()

    # 2. Network: 64 inputs -> 128 LIF neurons -> 10 leaky-integrator logits.
    net = tt.nn.Sequential(tt.nn.LIF(64, 128), tt.nn.LI(128, 10))

    # 4. Recipe: Adam with a cosine learning-rate decay over all steps.
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    steps_per_epoch = -(-len(x_train) // args.batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * steps_per_epoch)

    mode = "BPTT" if args.bptt else "trace learning"
    print(f"{mode}: {net}")
    start = time.time()
    for epoch in range(1, args.epochs + 1):
        perm = torch.randperm(len(x_train), generator=gen)
        for i in range(0, len(x_train), args.batch):
            idx = perm[i : i + args.batch]
            x = tt.encode.rate(x_train[idx], STEPS, generator=gen)  # [T, B, 64] spikes
            net.reset_states()  # a new sequence
            # 3. Learning: one autograd node per layer (trace), or a graph through time (BPTT).
            if args.bptt:
                with tt.bptt(net):
                    loss = F.cross_entropy(net(x)[-1], y_train[idx])
            else:
                loss = F.cross_entropy(net(x)[-1], y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if epoch % 5 == 0 or epoch == args.epochs:
            print(f"epoch {epoch:3d}  loss {loss.item():.4f}  {time.time() - start:5.1f}s")

    # 5. Test: mean accuracy over 5 encodings of the test set.
    acc = accuracy(net, x_test, y_test)
    print(f"test accuracy ({mode}, seed {args.seed}): {100 * acc:.2f}%")


if __name__ == "__main__":
    main()
