"""CartPole-v1: REFLECT (reward with traces) vs REINFORCE with BPTT vs a non-spiking MLP.

Same policy network for both spiking learners (``examples/cartpole.py``: ``LIF(8, 64) ->
LIS(64, 2)``), same budget of 2,000 episodes, seeds 0-2. A run stops once solved (mean return
of 100 consecutive episodes >= 475) when ``--stop-when-solved`` is given (the default here, to
fit this machine's time). Also measured: peak memory (bytes of tensors, torch.profiler) of
learning from one episode of length L, for both spiking learners.

Run (``pip install -e '.[rl]'``; one run at a time, each a few minutes on one core):
    python -m benchmarks.cartpole run --method reflect --seeds 0 1 2
    python -m benchmarks.cartpole run --method bptt --seeds 0 1 2
    python -m benchmarks.cartpole run --method mlp --seeds 0 1 2
    python -m benchmarks.cartpole run --method reflect --continuing --seeds 0 1 2
    python -m benchmarks.cartpole memory
    python -m benchmarks.cartpole report      # table + docs/img/cartpole.png
Results: ``benchmarks/results/cartpole/*.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "cartpole"


def _example():
    path = ROOT / "examples" / "cartpole.py"
    spec = importlib.util.spec_from_file_location("cartpole_example", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["cartpole_example"] = module
    spec.loader.exec_module(module)
    return module


def cmd_run(args) -> None:
    ex = _example()
    for seed in args.seeds:
        argv = ["--method", args.method, "--seed", str(seed), "--episodes", str(args.episodes)]
        if args.continuing:
            argv.append("--continuing")
        if args.stop_when_solved:
            argv.append("--stop-when-solved")
        argv += args.extra
        label = args.method + ("-continuing" if args.continuing else "") + args.tag
        argv += ["--out", str(OUT / f"{label}_seed{seed}.json")]
        print("examples/cartpole.py", " ".join(argv), flush=True)
        result = ex.main(argv)
        if args.tag:  # the label in the table and the plot
            result["method"] = label
            (OUT / f"{label}_seed{seed}.json").write_text(json.dumps(result))


def _episode_obs(length: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(length, 1, 4, generator=g) - 0.5) * 0.2


def memory_reflect(length: int, substeps: int = 2) -> int:
    import tracetorch as tt
    from tracetorch.data.envs import encode_cartpole
    from tracetorch.metrics import peak_allocated_bytes

    ex = _example()
    net = ex.make_snn()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    learner = tt.learning.Reflect(net, decay=0.95)
    obs = _episode_obs(length)

    def episode() -> None:
        for t in range(length):
            x = encode_cartpole(obs[t])
            p = net(x.expand(substeps, *x.shape))[-1]
            learner.act(p)
            learner.reward(torch.ones(1), terminated=torch.tensor([t == length - 1]))
            opt.zero_grad()
            if learner.backward(p):
                opt.step()

    episode()  # warm-up: optimizer state, lazy buffers
    net.reset_states()
    return peak_allocated_bytes(episode)


def memory_bptt(length: int, substeps: int = 2) -> int:
    import tracetorch as tt
    from tracetorch.data.envs import encode_cartpole
    from tracetorch.metrics import peak_allocated_bytes

    ex = _example()
    net = ex.make_snn()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    obs = _episode_obs(length)

    def episode() -> None:
        with tt.bptt(net):
            net.reset_states()
            logps = []
            for t in range(length):
                x = encode_cartpole(obs[t])
                p = net(x.expand(substeps, *x.shape))[-1]
                a = torch.multinomial(p.detach(), 1)
                logps.append(torch.log(p.gather(-1, a)).squeeze())
            adv = torch.linspace(1, -1, length)
            loss = -(torch.stack(logps) * adv).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()

    episode()
    return peak_allocated_bytes(episode)


def cmd_memory(args) -> None:
    torch.set_num_threads(1)
    rows = []
    for length in args.lengths:
        row = {"episode_length": length}
        row["reflect_bytes"] = memory_reflect(length)
        row["bptt_bytes"] = memory_bptt(length)
        print(json.dumps(row), flush=True)
        rows.append(row)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "memory.json").write_text(json.dumps(rows, indent=1))


def _load_runs() -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {}
    for path in sorted(OUT.glob("*_seed*.json")):
        res = json.loads(path.read_text())
        runs.setdefault(res["method"], []).append(res)
    return runs


#: colour, line width and style of each learner in the plot (REFLECT in front).
STYLE = {
    "reflect": ("C3", 2.0, "-"),
    "mlp": ("C2", 1.0, "-"),
    "bptt-lr1e-3": ("C0", 1.0, "-"),
    "bptt": ("0.6", 0.8, "-"),
    "reflect-continuing": ("C4", 0.8, "--"),
    "reflect-continuing-k10": ("C1", 0.8, ":"),
}


def cmd_report(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = _load_runs()
    lines = [
        "| learner | seeds solved (<= 2,000 episodes) | solved at episode | best mean100 | "
        "wall time per run (s) |",
        "|---|---|---|---|---|",
    ]
    for method, results in runs.items():
        results = sorted(results, key=lambda r: r["seed"])
        solved = [r for r in results if r["solved_at"] is not None]
        at = ", ".join(str(r["solved_at"]) if r["solved_at"] else "-" for r in results)
        best = ", ".join(f"{r['best_mean100']:.0f}" for r in results)
        wall = ", ".join(f"{r['wall_s']:.0f}" for r in results)
        lines.append(f"| {method} | {len(solved)}/{len(results)} | {at} | {best} | {wall} |")
    mem_path = OUT / "memory.json"
    if mem_path.exists():
        lines += ["", "| episode length | REFLECT peak (KiB) | BPTT peak (KiB) |", "|---|---|---|"]
        for row in json.loads(mem_path.read_text()):
            lines.append(
                f"| {row['episode_length']} | {row['reflect_bytes'] / 1024:.0f} | "
                f"{row['bptt_bytes'] / 1024:.0f} |"
            )
    table = "\n".join(lines)
    print(table)
    (OUT / "table.md").write_text(table + "\n")

    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = {}
    for method, results in runs.items():
        for r in sorted(results, key=lambda r: r["seed"]):
            ret = np.asarray(r["returns"])
            w = min(100, len(ret))
            mean = np.convolve(ret, np.ones(w) / w, mode="valid")
            default = (colors.setdefault(method, f"C{len(colors)}"), 1, "-")
            color, lw, ls = STYLE.get(method, default)
            ax.plot(
                np.arange(w, len(ret) + 1),
                mean,
                color=color,
                lw=lw,
                ls=ls,
                label=method if r["seed"] == results[0]["seed"] else None,
            )
    ax.axhline(475, color="k", ls="--", lw=0.8, label="solved (475)")
    ax.set(
        xlabel="episode",
        ylabel="mean return of the last 100 episodes",
        title="CartPole-v1: spiking policy, REFLECT vs REINFORCE (3 seeds each)",
        xlim=(0, 2000),
    )
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = ROOT / "docs" / "img" / "cartpole.png"
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--method", choices=["reflect", "bptt", "mlp"], required=True)
    r.add_argument("--continuing", action="store_true")
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    r.add_argument("--episodes", type=int, default=2000)
    r.add_argument("--no-stop", dest="stop_when_solved", action="store_false")
    r.add_argument("--tag", default="", help="appended to the learner's label, e.g. ' lr=1e-3'")
    r.add_argument("extra", nargs="*", help="more options for examples/cartpole.py (after --)")
    m = sub.add_parser("memory")
    m.add_argument("--lengths", type=int, nargs="+", default=[100, 500, 2000])
    sub.add_parser("report")
    args = p.parse_args(argv)
    {"run": cmd_run, "memory": cmd_memory, "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    main()
