r"""Choose tracetorch's defaults by measurement: the LIF rate function and the training recipe.

One command reproduces every figure of ``docs/defaults.md``::

    python -m benchmarks.defaults            # full: 10-20 min on 2 cores, 2 runs at once
    python -m benchmarks.defaults --quick    # ~1 min: short simulations, 10 epochs, 1 seed

Sections (``--sections rates,network,digits,claims``):

1. **rates**: every registered ``rate_fn`` against the simulated firing rate of the discrete LIF
   (``m = beta m + c; s = [m >= theta]; m -= theta s`` from ``m = 0``, long run), for constant
   input ``c`` in ``[0, 2 theta]`` and for noisy input with the same mean (``c_t = w n_t``,
   ``n_t`` Bernoulli or Poisson), ``beta`` in {0.5, 0.9, 0.99}. Max absolute error per case;
   plot ``rates.png`` (rate vs ``c``) and ``rates_error.png`` (error vs ``c``).
2. **digits**: ``tt.data.load_digits``, Bernoulli rate coding (T=25), ``LIF(64, 128) -> LI(128,
   10)`` (or ``LIS``); trace learning vs BPTT (``tt.bptt``) for every setting of ``SETTINGS``, 3
   seeds. Test accuracy on ``out[-1]`` and on the mean over time, each the mean over 5 test
   encodings; for trace runs the gradient fidelity (``tt.gradient_fidelity``: cosine with BPTT
   per parameter) on 256 test digits after training.
3. **network**: in-network accuracy of every rate function: on trained networks, the actual
   firing rate of each hidden neuron for each test digit vs ``rate_fn`` of the current the
   local graph reconstructs (and, over 200 steps, of the exact mean current), and the gain:
   ``d rate / d bias`` measured with common random input vs the rate function's slope.
4. **claims**: learnable trace decay (where ``d`` goes, what its gradient is) and the
   membrane-decay gradient of the readout (a temperature).

Output: a markdown report on stdout and in ``OUT/defaults.md``, runs in ``OUT/runs.jsonl``
(resumed on a rerun: delete it to start over), plots in ``docs/img/`` (``--quick``:
``OUT/img/``). ``OUT`` is ``out/defaults`` (``out/defaults-quick``), or ``--out``. One thread
per process; ``--jobs`` processes at once (default 2).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

import tracetorch as tt
from tracetorch.functional import RATE_FUNCTIONS
from tracetorch.functional.rates import linear_rate, smooth_clamp

ROOT = Path(__file__).resolve().parent.parent
BETAS = (0.5, 0.9, 0.99)
#: Noisy input with mean c: c_t = w * n_t, n_t ~ Bernoulli(c / w) (c <= w) or Poisson(c / w).
NOISE = (
    ("bernoulli", 0.5),
    ("bernoulli", 1.0),
    ("bernoulli", 2.0),
    ("poisson", 0.1),
    ("poisson", 0.5),
    ("poisson", 1.0),
)


def _linear(k: float) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    def rate(c: Tensor, beta: Tensor, theta: Tensor) -> Tensor:
        return linear_rate(c, beta, theta, sharpness=k)

    return rate


def _mean_field_hard(c: Tensor, beta: Tensor, theta: Tensor) -> Tensor:
    return smooth_clamp(c / theta - (1 - beta) / 2, 1000.0)


#: Variants measured next to the registered rate functions (corner sharpness of ``linear``).
VARIANTS: dict[str, Callable[[Tensor, Tensor, Tensor], Tensor]] = {
    "linear k=10": _linear(10.0),
    "linear k=50": _linear(50.0),
    "mean_field k=1000": _mean_field_hard,
}
CANDIDATES = {**RATE_FUNCTIONS, **VARIANTS}
STEPS = 25  # timesteps of the rate-coded digits
TEST_ENCODINGS = 5  # test accuracy = mean over this many Bernoulli encodings of the test set

#: The training recipe every digits setting starts from (the winner of the recipe rows); the
#: network is the library's defaults (LIF rate_fn "linear", beta 0.9, trace decay 0.95 with
#: bias correction; LI readout beta 0.99).
RECIPE: dict[str, Any] = {
    "lr": 5e-3,
    "epochs": 30,
    "batch": 32,
    "weight_decay": 0.0,
    "schedule": "cosine",
    "loss_on": "last",
}
#: The first probe's recipe (issue): Adam 2e-3, 30 epochs, batch 64, constant lr, the then
#: defaults (rate_fn mean_field, LI readout beta 0.9).
PROBE: dict[str, Any] = {
    **RECIPE,
    "lr": 2e-3,
    "batch": 64,
    "schedule": "none",
    "readout_beta": 0.9,
    "rate_fn": "mean_field",
}

BOTH = ("trace", "bptt")
TRACE = ("trace",)
#: (name, overrides of RECIPE, modes). BPTT is run only where the setting changes BPTT too
#: (the rate function and the trace decay exist only in the local graph of trace learning).
SETTINGS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("recipe (library defaults)", {}, BOTH),
    ("probe: Adam 2e-3, batch 64, const lr, LI beta 0.9, mean_field", PROBE, BOTH),
    ("probe + cosine lr", {**PROBE, "schedule": "cosine"}, BOTH),
    ("probe + readout beta 0.99", {**PROBE, "readout_beta": 0.99}, BOTH),
    ("probe + rate_fn linear", {**PROBE, "rate_fn": "linear"}, TRACE),
    ("batch 64", {"batch": 64}, BOTH),
    ("batch 128", {"batch": 128}, TRACE),
    ("lr 2e-3", {"lr": 2e-3}, BOTH),
    ("lr 1e-2", {"lr": 1e-2}, TRACE),
    ("15 epochs", {"epochs": 15}, TRACE),
    ("60 epochs", {"epochs": 60}, TRACE),
    ("constant lr", {"schedule": "none"}, BOTH),
    ("weight decay 1e-4 (Adam L2)", {"weight_decay": 1e-4}, TRACE),
    ("loss on mean over time", {"loss_on": "mean"}, BOTH),
    ("readout beta 0.9", {"readout_beta": 0.9}, BOTH),
    ("readout beta 0.95", {"readout_beta": 0.95}, BOTH),
    ("readout beta 0.999", {"readout_beta": 0.999}, TRACE),
    ("LIS readout (beta 0.9)", {"readout": "LIS"}, BOTH),
    ("LIS readout, beta 0.99", {"readout": "LIS", "readout_beta": 0.99}, BOTH),
    ("hidden beta 0.8", {"beta": 0.8}, BOTH),
    ("hidden beta 0.95", {"beta": 0.95}, BOTH),
    ("no learned beta", {"learn_beta": False}, BOTH),
    ("learned trace decay", {"learn_trace_decay": True}, TRACE),
    ("readout d = beta, no correction", {"readout_d": 0.99, "readout_bc": False}, TRACE),
]
for _name in ("linear", "mean_field", "log", "staircase", "linear k=10", "linear k=50"):
    SETTINGS.append((f"rate_fn {_name}", {"rate_fn": _name}, TRACE))
for _d in (0.8, 0.9, 0.95, 0.99):
    for _bc in (True, False):
        _label = f"trace decay {_d}, correction {'on' if _bc else 'off'}"
        SETTINGS.append((_label, {"d": _d, "bc": _bc}, TRACE))

QUICK_SETTINGS = (
    "recipe (library defaults)",
    "probe: Adam 2e-3, batch 64, const lr, LI beta 0.9, mean_field",
    "rate_fn mean_field",
    "rate_fn staircase",
    "trace decay 0.99, correction off",
)


# =============================================================================== rates
def simulate_rate(
    c: Tensor,
    beta: float,
    theta: float = 1.0,
    noise: tuple[str, float] | None = None,
    burn_in: int = 2000,
    steps: int = 10000,
    trials: int = 1,
    seed: int = 0,
) -> Tensor:
    """Firing rate (spikes per step) of the discrete LIF for mean input ``c [N]``.

    ``noise=None``: constant input ``c``. ``("bernoulli", w)`` / ``("poisson", w)``: input
    ``w n_t`` with ``n_t`` Bernoulli(``c / w``) / Poisson(``c / w``), averaged over ``trials``
    independent runs. ``burn_in`` steps from ``m = 0`` are discarded.
    """
    gen = torch.Generator().manual_seed(seed)
    cc = c.double().repeat(trials)
    p = tt.functional.LIFParams(
        torch.tensor(beta, dtype=torch.float64), torch.tensor(theta, dtype=torch.float64)
    )
    state, count = tt.functional.LIFState(torch.zeros_like(cc)), torch.zeros_like(cc)
    for i in range(burn_in + steps):
        if noise is None:
            x = cc
        elif noise[0] == "bernoulli":
            x = noise[1] * torch.bernoulli((cc / noise[1]).clamp(0, 1), generator=gen)
        else:
            x = noise[1] * torch.poisson(cc / noise[1], generator=gen)
        s, state = tt.functional.lif_step(x, state, p)
        if i >= burn_in:
            count += s
    return (count / steps).view(trials, -1).mean(0)


def rate_section(quick: bool, img: Path) -> dict[str, Any]:
    """Errors of every registered rate function vs the simulated LIF; plots."""
    n_const, n_noise = (401, 81) if quick else (2001, 201)
    sim_const = {"burn_in": 1000, "steps": 4000} if quick else {"burn_in": 3000, "steps": 20000}
    sim_noise = (
        {"burn_in": 500, "steps": 3000, "trials": 1}
        if quick
        else {"burn_in": 2000, "steps": 20000, "trials": 4}
    )
    c = torch.linspace(0, 2, n_const, dtype=torch.float64)
    cn = torch.linspace(0, 2, n_noise, dtype=torch.float64)
    sims: dict[str, Any] = {"c": c.tolist(), "cn": cn.tolist()}
    errors: dict[str, dict[str, float]] = {name: {} for name in CANDIDATES}
    for beta in BETAS:
        t0 = time.time()
        truth = simulate_rate(c, beta, **sim_const)
        sims[f"const {beta}"] = truth.tolist()
        for kind, w in NOISE:
            cw = cn[cn <= w] if kind == "bernoulli" else cn
            sims[f"{kind} {w} {beta}"] = simulate_rate(
                cw, beta, noise=(kind, w), **sim_noise
            ).tolist()
        b = torch.tensor(beta, dtype=torch.float64)
        one = torch.tensor(1.0, dtype=torch.float64)
        for name, fn in CANDIDATES.items():
            with torch.no_grad():
                errors[name][f"const {beta}"] = float((fn(c, b, one) - truth).abs().max())
                for kind, w in NOISE:
                    sim = torch.tensor(sims[f"{kind} {w} {beta}"], dtype=torch.float64)
                    r = fn(cn[: len(sim)], b, one)
                    errors[name][f"{kind} {w} {beta}"] = float((r - sim).abs().max())
        print(f"  rates: beta={beta} simulated in {time.time() - t0:.0f}s", file=sys.stderr)
    _plot_rates(sims, img)
    return {"errors": errors, "sims": sims}


def _plot_rates(sims: dict[str, Any], img: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        print("  (matplotlib missing: no plots)", file=sys.stderr)
        return
    img.mkdir(parents=True, exist_ok=True)
    c = torch.tensor(sims["c"], dtype=torch.float64)
    cn = torch.tensor(sims["cn"], dtype=torch.float64)
    one = torch.tensor(1.0, dtype=torch.float64)
    colors = {"linear": "C0", "staircase": "C3", "mean_field": "C2", "log": "C1"}
    for kind in ("rates", "rates_error"):
        fig, axes = plt.subplots(1, len(BETAS), figsize=(5 * len(BETAS), 4), sharey=kind == "rates")
        for ax, beta in zip(axes, BETAS, strict=True):
            b = torch.tensor(beta, dtype=torch.float64)
            truth = torch.tensor(sims[f"const {beta}"])
            if kind == "rates":
                ax.plot(c, truth, "k", lw=2.5, label="simulated, constant input")
                ax.plot(
                    cn, sims[f"poisson 0.1 {beta}"], "k:", lw=1.5, label="simulated, Poisson w=0.1"
                )
                ax.plot(
                    cn, sims[f"poisson 1.0 {beta}"], "k--", lw=1, label="simulated, Poisson w=1"
                )
            for name, fn in RATE_FUNCTIONS.items():
                with torch.no_grad():
                    r = fn(c, b, one)
                y = r if kind == "rates" else r - truth
                ax.plot(c, y, color=colors.get(name), lw=1.2, label=name)
            if kind == "rates_error":
                ax.axhspan(-0.05, 0.05, color="0.9", zorder=0, label="+-0.05")
                ax.set_ylim(-0.3, 0.3)
            ax.set_title(f"beta = {beta}")
            ax.set_xlabel("mean input current c / theta")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel(
            "rate (spikes / step)" if kind == "rates" else "rate_fn - simulated (constant)"
        )
        axes[-1].legend(fontsize=8, loc="lower right" if kind == "rates" else "upper right")
        fig.tight_layout()
        fig.savefig(img / f"{kind}.png", dpi=110)
        plt.close(fig)


# =============================================================================== digits
def build_net(cfg: dict[str, Any]) -> tt.nn.Sequential:
    """``LIF(64, 128) -> LI/LIS(128, 10)``; only the keys present in ``cfg`` override defaults."""
    hidden: dict[str, Any] = {}
    readout: dict[str, Any] = {}
    for key in ("rate_fn", "beta", "threshold"):
        if key in cfg:
            hidden[key] = VARIANTS.get(cfg[key], cfg[key]) if key == "rate_fn" else cfg[key]
    if "readout_beta" in cfg:
        readout["beta"] = cfg["readout_beta"]
    for target in (hidden, readout):
        if "d" in cfg:
            target["trace_decay"] = cfg["d"]
        if "bc" in cfg:
            target["bias_correction"] = cfg["bc"]
        for flag in ("learn_beta", "learn_trace_decay"):
            if flag in cfg:
                target[flag] = cfg[flag]
    if "readout_d" in cfg:
        readout["trace_decay"] = cfg["readout_d"]
    if "readout_bc" in cfg:
        readout["bias_correction"] = cfg["readout_bc"]
    head = {"LI": tt.nn.LI, "LIS": tt.nn.LIS}[cfg.get("readout", "LI")]
    return tt.nn.Sequential(tt.nn.LIF(64, 128, **hidden), head(128, 10, **readout))


def _loss_fn(cfg: dict[str, Any]) -> Callable[[Tensor, Tensor], Tensor]:
    lis = cfg.get("readout", "LI") == "LIS"
    mean = cfg.get("loss_on", "last") == "mean"

    def loss(out: Tensor, y: Tensor) -> Tensor:
        o = out.mean(0) if mean else out[-1]
        return F.nll_loss(torch.log(o.clamp_min(1e-12)), y) if lis else F.cross_entropy(o, y)

    return loss


_DATA: tuple[Tensor, ...] | None = None


def _digits() -> tuple[Tensor, ...]:
    global _DATA
    if _DATA is None:
        _DATA = tt.data.load_digits(seed=0)
    return _DATA


def train_digits(cfg: dict[str, Any], seed: int, mode: str) -> dict[str, Any]:
    """Train one network on digits; return accuracies, fidelity and learned decays."""
    torch.set_num_threads(1)
    x_tr, y_tr, x_te, y_te = _digits()
    torch.manual_seed(seed)
    net = build_net(cfg)
    loss_fn = _loss_fn(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    batches = math.ceil(len(x_tr) / cfg["batch"])
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"] * batches)
        if cfg["schedule"] == "cosine"
        else None
    )
    gen = torch.Generator().manual_seed(seed)
    xf = tt.encode.rate(x_te[:256], STEPS, generator=torch.Generator().manual_seed(99))
    yf = y_te[:256]
    fid_init = tt.gradient_fidelity(net, xf, yf, loss_fn) if mode == "trace" else None
    t0 = time.time()
    for _ in range(cfg["epochs"]):
        perm = torch.randperm(len(x_tr), generator=gen)
        for i in range(0, len(x_tr), cfg["batch"]):
            idx = perm[i : i + cfg["batch"]]
            x = tt.encode.rate(x_tr[idx], STEPS, generator=gen)
            net.reset_states()
            if mode == "bptt":
                with tt.bptt(net):
                    loss = loss_fn(net(x), y_tr[idx])
            else:
                loss = loss_fn(net(x), y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
    train_time = time.time() - t0
    res: dict[str, Any] = {"train_time": train_time, "final_loss": float(loss.detach())}
    res.update(evaluate(net, x_te, y_te))
    res["train_acc_last"] = evaluate(net, x_tr, y_tr, encodings=1)["acc_last"]
    if mode == "trace":
        res["fidelity_init"] = fid_init
        res["fidelity"] = tt.gradient_fidelity(net, xf, yf, loss_fn)
        # Yardstick: how much two BPTT references (atan vs fast-sigmoid surrogate) agree.
        atan = _bptt_grads(net, xf, yf, loss_fn)
        surrogate = net[0].surrogate
        net[0].surrogate = tt.functional.fast_sigmoid
        fast = _bptt_grads(net, xf, yf, loss_fn)
        net[0].surrogate = surrogate
        res["surrogate_yardstick"] = {k: tt.learning.cosine(g, fast[k]) for k, g in atan.items()}
    res["beta_hidden"] = float(net[0].beta.detach().mean())
    res["beta_readout"] = float(net[1].beta.detach().mean())
    d = net[0].trace_decay.detach()
    res["d_hidden"] = [float(d.mean()), float(d.min()), float(d.max())]
    if STATE_DIR is not None:
        torch.save(net.state_dict(), _state_path(cfg, seed, mode))
    return res


def _bptt_grads(
    net: tt.nn.Sequential, x: Tensor, y: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor]
) -> dict[str, Tensor]:
    """BPTT gradients of every parameter on ``(x, y)``; leaves no gradient and no state."""
    net.zero_grad(set_to_none=True)
    with tt.bptt(net):
        net.reset_states()
        loss_fn(net(x), y).backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    net.zero_grad(set_to_none=True)
    net.reset_states()
    return grads


STATE_DIR: Path | None = None


def _state_path(cfg: dict[str, Any], seed: int, mode: str) -> Path:
    digest = hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]
    assert STATE_DIR is not None
    return STATE_DIR / f"{digest}-{seed}-{mode}.pt"


@torch.no_grad()
def evaluate(
    net: tt.nn.Sequential, x: Tensor, y: Tensor, encodings: int = TEST_ENCODINGS
) -> dict[str, float]:
    """Accuracy of ``out[-1]`` and of ``out.mean(0)``, mean over ``encodings`` encodings."""
    gen = torch.Generator().manual_seed(1234)
    last, mean = [], []
    for _ in range(encodings):
        net.reset_states()
        out = net(tt.encode.rate(x, STEPS, generator=gen))
        last.append(float((out[-1].argmax(-1) == y).float().mean()))
        mean.append(float((out.mean(0).argmax(-1) == y).float().mean()))
    net.reset_states()
    return {"acc_last": float(np.mean(last)), "acc_mean": float(np.mean(mean))}


def _job(args: tuple[str, dict[str, Any], int, str]) -> dict[str, Any]:
    name, cfg, seed, mode = args
    return {"name": name, "cfg": cfg, "seed": seed, "mode": mode, **train_digits(cfg, seed, mode)}


def digits_section(
    names: list[str], seeds: int, epochs: int | None, jobs: int, runs_file: Path
) -> list[dict[str, Any]]:
    """Run (or resume) every (setting, mode, seed); return all runs of these settings."""
    done: dict[tuple[str, str, int], dict[str, Any]] = {}
    if runs_file.exists():
        for line in runs_file.read_text().splitlines():
            r = json.loads(line)
            done[(json.dumps(r["cfg"], sort_keys=True), r["mode"], r["seed"])] = r
    todo = []
    wanted = []
    for name, overrides, modes in SETTINGS:
        if name not in names:
            continue
        cfg = {**RECIPE, **overrides}
        if epochs is not None:
            cfg["epochs"] = epochs
        for mode in modes:
            for seed in range(seeds):
                key = (json.dumps(cfg, sort_keys=True), mode, seed)
                wanted.append((name, key))
                if key not in done:
                    todo.append((name, cfg, seed, mode))
    print(f"  digits: {len(todo)} runs to do, {len(wanted) - len(todo)} cached", file=sys.stderr)
    if todo:
        with get_context("fork").Pool(jobs) as pool, runs_file.open("a") as f:
            for k, r in enumerate(pool.imap_unordered(_job, todo), 1):
                f.write(json.dumps(r) + "\n")
                f.flush()
                done[(json.dumps(r["cfg"], sort_keys=True), r["mode"], r["seed"])] = r
                print(
                    f"  [{k}/{len(todo)}] {r['name']} {r['mode']} seed {r['seed']}: "
                    f"{100 * r['acc_last']:.2f}% ({r['train_time']:.0f}s)",
                    file=sys.stderr,
                )
    return [{**done[key], "name": name} for name, key in wanted]


# =============================================================================== network
@torch.no_grad()
def network_rates(net: tt.nn.Sequential, x: Tensor, long_steps: int = 200) -> dict[str, Any]:
    """How well each rate function predicts the hidden layer's actual rates in ``net``.

    - ``mae``: |actual spikes per step over T=25, from rest| - ``rate_fn(W a + b)`` with ``a``
      the layer's own average input at the end (what the local graph uses), mean over test
      digits and neurons;
    - ``mae_stationary``: the same over steps 50..``long_steps`` vs ``rate_fn(W p + b)``, ``p``
      the exact mean input (the pixel intensities): the rate function alone;
    - ``gain_cos``: cosine over (digit, neuron) between the measured gain ``d rate / d b``
      (bias +-0.05, same input spikes, over ``long_steps``) and the rate function's slope.
    """
    lif = net[0]
    gen = torch.Generator().manual_seed(7)
    spikes = tt.encode.rate(x, STEPS, generator=gen)
    lif.reset_states()
    actual = lif(spikes).mean(0)
    a = lif.average_input()
    c_local = F.linear(a, lif.weight, lif.bias)
    lif.reset_states()
    long = tt.encode.rate(x, long_steps, generator=gen)
    c_long = F.linear(long, lif.weight, lif.bias)
    burn = 50

    def rate_over(shift: float) -> Tensor:
        state = tt.functional.LIFState(torch.zeros_like(c_long[0]))
        count = torch.zeros_like(state.membrane)
        params = tt.functional.LIFParams(lif.beta, lif.threshold)
        for t in range(long_steps):
            s, state = tt.functional.lif_step(c_long[t] + shift, state, params)
            if t >= burn:
                count += s
        return count / (long_steps - burn)

    delta = 0.05
    r0 = rate_over(0.0)
    gain = (rate_over(delta) - rate_over(-delta)) / (2 * delta)
    c_mean = F.linear(x, lif.weight, lif.bias)
    out: dict[str, Any] = {}
    for name, fn in CANDIDATES.items():
        with torch.enable_grad():
            cm = c_mean.clone().requires_grad_()
            r = fn(cm, lif.beta, lif.threshold)
            (slope,) = torch.autograd.grad(r.sum(), cm)
        out[name] = {
            "mae": float((fn(c_local, lif.beta, lif.threshold) - actual).abs().mean()),
            "mae_stationary": float((r.detach() - r0).abs().mean()),
            "gain_cos": tt.learning.cosine(slope, gain),
        }
    lif.reset_states()
    return out


def network_section(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """In-network rate accuracy on the recipe's trained networks (trace and BPTT, all seeds)."""
    x_te = _digits()[2][:256]
    res: dict[str, list[dict[str, Any]]] = {}
    nets = [r for r in runs if r["name"] == "recipe (library defaults)"]
    for r in nets:
        net = build_net(r["cfg"])
        path = _state_path(r["cfg"], r["seed"], r["mode"])
        if not path.exists():
            continue
        net.load_state_dict(torch.load(path))
        res.setdefault(r["mode"], []).append(network_rates(net, x_te))
    init = build_net({**RECIPE})
    res["init"] = [network_rates(init, x_te)]
    return res


# =============================================================================== claims
def claims_section(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Learnable trace decay and the membrane-decay gradients, at init on 256 training digits.

    1. Trace decay. The forward pass never reads ``d``, so BPTT gives it no gradient. In the
       local graph ``a = t (1 - d) / (1 - d^n)`` is ``t`` times a function of ``d``, so the
       ``d``-gradient of channel ``i`` is a fixed factor times the gradient of an input gain,
       ``sum_b dL/da_bi a_bi``: it says whether a stronger input would help, not whether a
       longer window would. Measured: that cosine, and where learned decays end up.
    2. Readout beta. LI's local graph is ``z = c / (1 - beta)``, so ``dL/dbeta_j =
       sum_b g_bj z_bj / (1 - beta_j)``: the gradient of a per-class logit scale (an inverse
       temperature) ``sum_b g_bj z_bj``. Measured: the cosine between the beta gradient and
       the temperature gradient on the actual logits ``out[-1]``, in trace and BPTT mode.
    """
    torch.set_num_threads(1)
    x_tr, y_tr, _, _ = _digits()
    gen = torch.Generator().manual_seed(3)
    x = tt.encode.rate(x_tr[:256], STEPS, generator=gen)
    y = y_tr[:256]
    loss_fn = _loss_fn(RECIPE)
    out: dict[str, Any] = {}
    for bc in (True, False):
        torch.manual_seed(0)
        net = build_net({**RECIPE, "learn_trace_decay": True, "bc": bc})
        net.reset_states()
        hidden = net[0](x)
        hidden.retain_grad()
        loss_fn(net[1](hidden), y).backward()
        lif = net[0]
        signal = hidden.grad.sum(0)  # the learning signal the hidden layer's backward receives
        with torch.enable_grad():
            a = lif.average_input().detach().requires_grad_()
            (g_a,) = torch.autograd.grad(lif.average_output(a), [a], signal)
        gain = (g_a * a.detach()).sum(0)
        out[f"trace: cos(d grad, input-gain grad), correction {'on' if bc else 'off'}"] = round(
            tt.learning.cosine(lif.trace_decay_raw.grad, gain), 4
        )
        net.zero_grad(set_to_none=True)
        with tt.bptt(net):
            net.reset_states()
            loss_fn(net(x), y).backward()
        grad = net[0].trace_decay_raw.grad
        out["bptt: d grad"] = None if grad is None else float(grad.abs().max())
    learned = [r["d_hidden"] for r in runs if r["name"] == "learned trace decay"]
    if learned:
        out["learned d of the hidden layer after training (mean, min, max), from 0.95"] = [
            [round(v, 3) for v in d] for d in learned
        ]
    for mode in ("trace", "bptt"):
        torch.manual_seed(0)
        net = build_net(dict(RECIPE))
        net.reset_states()
        if mode == "bptt":
            with tt.bptt(net):
                o = net(x)
        else:
            o = net(x)
        o.retain_grad()
        loss_fn(o, y).backward()
        temperature = (o.grad[-1] * o[-1].detach()).sum(0)
        out[f"{mode}: cos(readout beta grad, logit-scale grad)"] = round(
            tt.learning.cosine(net[1].beta_raw.grad, temperature), 4
        )
    for mode in ("trace", "bptt"):
        betas = [
            (round(r["beta_hidden"], 4), round(r["beta_readout"], 4))
            for r in runs
            if r["name"] == "recipe (library defaults)" and r["mode"] == mode
        ]
        if betas:
            out[f"{mode}: learned (hidden, readout) beta after training, from (0.9, 0.99)"] = betas
    return out


# =============================================================================== report
def _pm(values: list[float]) -> str:
    v = 100 * np.asarray(values)
    return f"{v.mean():.2f} +- {v.std():.2f}" if len(v) > 1 else f"{v.mean():.2f}"


def report(
    rates: dict[str, Any] | None,
    runs: list[dict[str, Any]] | None,
    network: dict[str, Any] | None,
    claims: dict[str, Any] | None,
    meta: dict[str, Any],
) -> str:
    lines = [
        "# tracetorch defaults: measurements",
        "",
        f"Command: `{meta['command']}`. Date: {meta['date']}. Machine: {meta['machine']}.",
        "",
    ]
    if rates:
        err = rates["errors"]
        lines += [
            "## Rate functions vs the simulated discrete LIF",
            "",
            "Max |rate_fn(c) - simulated rate| over c in [0, 2 theta], theta = 1.",
            "",
            "| rate_fn | "
            + " | ".join(f"const, beta={b}" for b in BETAS)
            + " | "
            + " | ".join(f"noisy (worst), beta={b}" for b in BETAS)
            + " |",
            "|---|" + "---:|" * (2 * len(BETAS)),
        ]
        for name, e in err.items():
            noisy = [max(e[f"{k} {w} {b}"] for k, w in NOISE) for b in BETAS]
            lines.append(
                f"| `{name}` | "
                + " | ".join(f"{e[f'const {b}']:.3f}" for b in BETAS)
                + " | "
                + " | ".join(f"{v:.3f}" for v in noisy)
                + " |"
            )
        lines += [
            "",
            "Noisy input, per kind (input w n_t with the same mean c; Bernoulli only for c <= w):",
            "",
            "| rate_fn | beta | " + " | ".join(f"{k} w={w}" for k, w in NOISE) + " |",
            "|---|---|" + "---:|" * len(NOISE),
        ]
        for name, e in err.items():
            for b in BETAS:
                lines.append(
                    f"| `{name}` | {b} | "
                    + " | ".join(f"{e[f'{k} {w} {b}']:.3f}" for k, w in NOISE)
                    + " |"
                )
        lines.append("")
    if runs:
        lines += [
            "## Digits: trace learning vs BPTT",
            "",
            "Test accuracy (%), mean +- std over seeds, each the mean over "
            f"{TEST_ENCODINGS} test encodings; `last`: argmax of `out[-1]`, `mean`: of "
            "`out.mean(0)`. Fidelity: cosine of trace vs BPTT gradients after trace training "
            "(256 test digits), hidden weight / readout weight / hidden beta / readout beta.",
            "",
            "| setting | trace last | trace mean | BPTT last | BPTT mean | train acc (trace) "
            "| fidelity W1 / W2 / beta1 / beta2 | s/run (trace) |",
            "|---|---:|---:|---:|---:|---:|---|---:|",
        ]
        names = list(dict.fromkeys(r["name"] for r in runs))
        for name in names:
            tr = [r for r in runs if r["name"] == name and r["mode"] == "trace"]
            bp = [r for r in runs if r["name"] == name and r["mode"] == "bptt"]
            fid = ""
            if tr and "fidelity" in tr[0]:
                keys = ("0.weight", "1.weight", "0.beta_raw", "1.beta_raw")
                fid = " / ".join(
                    f"{np.mean([r['fidelity'].get(k, float('nan')) for r in tr]):.2f}" for k in keys
                )
            lines.append(
                f"| {name} (n={len(tr)}) | "
                + (
                    f"{_pm([r['acc_last'] for r in tr])} | {_pm([r['acc_mean'] for r in tr])} | "
                    if tr
                    else "| | "
                )
                + (
                    f"{_pm([r['acc_last'] for r in bp])} | {_pm([r['acc_mean'] for r in bp])} | "
                    if bp
                    else "- | - | "
                )
                + (f"{100 * np.mean([r['train_acc_last'] for r in tr]):.1f} | " if tr else "| ")
                + f"{fid} | "
                + (f"{np.mean([r['train_time'] for r in tr]):.0f} |" if tr else "|")
            )
        lines.append("")
    recipe = [r for r in runs or [] if r["name"] == "recipe (library defaults)" and "fidelity" in r]
    if recipe:
        lines += [
            "## Gradient fidelity of the recipe",
            "",
            "Cosine between trace and BPTT (atan surrogate) gradients on 256 test digits, mean "
            f"over {len(recipe)} seeds, at initialisation and after trace training; yardstick: "
            "cosine between two BPTT references (atan vs fast-sigmoid surrogate) on the trained "
            "network.",
            "",
            "| parameter | trace vs BPTT, init | trace vs BPTT, trained "
            "| BPTT atan vs fast sigmoid |",
            "|---|---:|---:|---:|",
        ]
        for k in recipe[0]["fidelity"]:
            cells = [
                np.mean([r[f].get(k, float("nan")) for r in recipe])
                for f in ("fidelity_init", "fidelity", "surrogate_yardstick")
            ]
            lines.append(f"| `{k}` | " + " | ".join(f"{v:.3f}" for v in cells) + " |")
        lines.append("")
    if network:
        lines += [
            "## Rate functions inside the trained network",
            "",
            "Hidden LIF layer of the recipe's networks, 256 test digits x 128 neurons: `mae`: "
            "mean |actual rate over T=25 - rate_fn(W a + b)| with `a` the layer's average "
            "input (the local graph); `stationary`: the same over steps 50-200 vs "
            "rate_fn(W p + b), p the pixel intensities; `gain cos`: cosine between the "
            "measured d rate / d bias and the rate function's slope.",
            "",
            "| rate_fn | "
            + " | ".join(f"{k} mae | {k} stationary | {k} gain cos" for k in network)
            + " |",
            "|---|" + "---:|" * (3 * len(network)),
        ]
        for name in CANDIDATES:
            cells = []
            for vals in network.values():
                for field in ("mae", "mae_stationary", "gain_cos"):
                    cells.append(f"{np.mean([v[name][field] for v in vals]):.3f}")
            lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
        lines.append("")
    if claims:
        lines += ["## Claims", "", "```", json.dumps(claims, indent=1), "```", ""]
    return "\n".join(lines)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (
        f"{os.cpu_count()} CPU cores ({cpu}), load average {load} at start, one thread per "
        f"run; torch {torch.__version__}, Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> None:
    global STATE_DIR
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short simulations, 10 epochs, 1 seed")
    parser.add_argument("--sections", default="rates,digits,network,claims")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--settings", default=None, help="comma-separated setting names")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or ROOT / "out" / ("defaults-quick" if args.quick else "defaults")
    img = out / "img" if args.quick else ROOT / "docs" / "img"
    out.mkdir(parents=True, exist_ok=True)
    STATE_DIR = out / "nets"
    STATE_DIR.mkdir(exist_ok=True)
    sections = set(args.sections.split(","))
    meta = {
        "command": "python -m benchmarks.defaults" + (" --quick" if args.quick else ""),
        "date": _dt.date.today().isoformat(),
        "machine": _machine(),
    }
    rates = runs = network = claims = None
    if "rates" in sections:
        rates = rate_section(args.quick, img)
        (out / "rates.json").write_text(json.dumps(rates["errors"], indent=1))
    if sections & {"digits", "network", "claims"}:
        names = [s[0] for s in SETTINGS]
        if args.settings:
            names = args.settings.split(",")
        elif args.quick:
            names = list(QUICK_SETTINGS)
        seeds = args.seeds or (1 if args.quick else 3)
        runs = digits_section(
            names, seeds, 10 if args.quick else None, args.jobs, out / "runs.jsonl"
        )
    if "digits" in sections and runs and not args.quick and args.out is None:
        # the README's digits figures (benchmarks/figures.py) read this file
        from .common import RESULTS, machine_info, write_json

        keep = (
            "name",
            "mode",
            "seed",
            "acc_last",
            "acc_mean",
            "train_time",
            "fidelity",
            "fidelity_init",
            "surrogate_yardstick",
            "cfg",
        )
        write_json(
            RESULTS / "defaults_digits.json",
            {
                "command": "python -m benchmarks.defaults --sections digits",
                "machine": machine_info(threads=1),
                "runs": [
                    {k: r[k] for k in keep if k in r}
                    for r in runs
                    if r["name"] == "recipe (library defaults)"
                ],
            },
        )
    if "network" in sections and runs:
        network = network_section(runs)
    if "claims" in sections and runs is not None:
        claims = claims_section(runs)
    text = report(rates, runs if "digits" in sections else None, network, claims, meta)
    (out / "defaults.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
