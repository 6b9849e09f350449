"""CartPole-v1 with a spiking policy, trained by reward with traces (REFLECT), in constant memory.

The policy: CartPole's 4 observations, scaled and split into 8 non-negative currents
(``tt.data.envs.encode_cartpole``), drive ``LIF(8, 64)``; ``LIS(64, 2)`` turns its spikes into
a distribution over the two pushes. Each environment step runs ``--substeps`` network steps on
the same currents. ``tt.learning.Reflect`` samples the actions, keeps the score trace and the
reward baseline, and at each learning step sends its signal into the layers' local graphs:
no episode buffer, no graph through time (``docs/reward.md``).

Run (``pip install -e '.[rl]'``):
    python examples/cartpole.py                       # REFLECT, seed 0, up to 2,000 episodes
    python examples/cartpole.py --method bptt         # the same SNN, REINFORCE with BPTT
    python examples/cartpole.py --method mlp          # a non-spiking MLP, REINFORCE
    python examples/cartpole.py --continuing          # no episode ends seen by the learner

"Solved": the mean return of 100 consecutive episodes reaches 475.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import tracetorch as tt
from tracetorch.data.envs import (
    ReturnCurve,
    cartpole_policy,
    encode_cartpole,
    make_cartpole,
    train_cartpole,
)


def make_mlp(hidden: int = 64) -> torch.nn.Module:
    """The non-spiking reference: the same 8 inputs, a ReLU hidden layer, a softmax."""
    return torch.nn.Sequential(
        torch.nn.Linear(8, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2),
        torch.nn.Softmax(-1),
    )


def make_snn(hidden: int = 64, trace_decay: float = 0.5) -> tt.nn.Sequential:
    """The spiking policy, ``LIF(8, hidden) -> LIS(hidden, 2)`` (shared by both SNN learners)."""
    return cartpole_policy(hidden, trace_decay)


def policy_step(net, obs, substeps: int) -> torch.Tensor:
    """One environment step of the policy: ``substeps`` network steps, the last output [B, 2]."""
    x = encode_cartpole(obs)
    return net(x.expand(substeps, *x.shape))[-1] if substeps > 1 else net(x)


def train_reflect(args, curve: ReturnCurve, log) -> dict:
    """REFLECT on ``--envs`` CartPoles at once (a batch of streams): the library's loop."""
    result = train_cartpole(
        seed=args.seed, episodes=args.episodes, envs=args.envs, hidden=args.hidden,
        substeps=args.substeps, trace_decay=args.trace_decay, lr=args.lr, decay=args.decay,
        baseline_decay=args.baseline_decay, learn_every=args.learn_every,
        continuing=args.continuing, stop_when_solved=args.stop_when_solved,
        max_steps=args.max_steps, log=lambda n, mean, s: log(n, mean), log_every=args.log_every,
    )
    for ret in result["returns"]:
        curve.add(ret)
    return {"env_steps": result["env_steps"]}


def train_reinforce(args, curve: ReturnCurve, log, spiking: bool) -> dict:
    """REINFORCE, one episode at a time: BPTT through the SNN, or a non-spiking MLP."""
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    net = make_snn(args.hidden, args.trace_decay) if spiking else make_mlp(args.hidden)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    env, obs = make_cartpole(1, seed=args.seed)
    steps = 0
    while len(curve.returns) < args.episodes and steps < args.max_steps and not (
        args.stop_when_solved and curve.solved_at
    ):
        logps, rewards = [], []
        with tt.bptt(net):
            if spiking:
                net.reset_states()
            done = False
            while not done:
                p = policy_step(net, obs, args.substeps) if spiking else net(encode_cartpole(obs))
                a = torch.multinomial(p.detach(), 1, generator=gen).squeeze(-1)
                logps.append(torch.log(p.gather(-1, a.unsqueeze(-1)).clamp_min(1e-12)).squeeze())
                obs, r, term, trunc, _ = env.step(a.numpy())
                rewards.append(float(r[0]))
                done = bool(term[0] or trunc[0])
                steps += 1
            ret, g = np.zeros(len(rewards)), 0.0
            for t in range(len(rewards) - 1, -1, -1):
                g = rewards[t] + args.gamma * g
                ret[t] = g
            adv = torch.as_tensor((ret - ret.mean()) / (ret.std() + 1e-8), dtype=torch.float32)
            loss = -(torch.stack(logps) * adv).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        curve.add(sum(rewards))
        if len(curve.returns) % args.log_every == 0:
            log(len(curve.returns), curve.mean())
    env.close()
    return {"env_steps": steps}


def run(args) -> dict:
    torch.set_num_threads(1)
    curve = ReturnCurve()
    start = time.perf_counter()

    def log(n: int, mean100: float) -> None:
        print(f"  episode {n:5d}  mean100 {mean100:6.1f}  {time.perf_counter() - start:6.0f} s",
              flush=True)

    if args.method == "reflect":
        extra = train_reflect(args, curve, log)
    else:
        extra = train_reinforce(args, curve, log, spiking=args.method == "bptt")
    result = {
        "method": args.method + ("-continuing" if args.continuing else ""),
        "seed": args.seed,
        "settings": {k: v for k, v in vars(args).items() if k not in ("out",)},
        "episodes": len(curve.returns),
        "solved_at": curve.solved_at,
        "best_mean100": round(curve.best_mean(), 1),
        "final_mean100": round(curve.mean(), 1),
        "wall_s": round(time.perf_counter() - start, 1),
        "returns": curve.returns,
        **extra,
    }
    return result


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", choices=["reflect", "bptt", "mlp"], default="reflect")
    p.add_argument("--continuing", action="store_true",
                   help="REFLECT without episode ends: rewards only, the env resets itself")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episodes", type=int, default=2000)
    p.add_argument("--stop-when-solved", action="store_true")
    p.add_argument("--max-steps", type=int, default=10**7, help="cap on environment steps")
    p.add_argument("--envs", type=int, default=8, help="REFLECT: environments (streams) at once")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--substeps", type=int, default=2, help="network steps per environment step")
    p.add_argument("--trace-decay", type=float, default=0.5)
    p.add_argument("--lr", type=float, default=None, help="default: 1e-3 REFLECT, 1e-2 others")
    p.add_argument("--decay", type=float, default=0.95, help="REFLECT score-trace decay (discount)")
    p.add_argument("--baseline-decay", type=float, default=0.999)
    p.add_argument("--learn-every", type=int, default=1, help="REFLECT: learn every k steps")
    p.add_argument("--gamma", type=float, default=0.99, help="REINFORCE discount")
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    return p


def main(argv=None) -> dict:
    args = make_parser().parse_args(argv)
    if args.lr is None:
        args.lr = 1e-3 if args.method == "reflect" else 1e-2
    result = run(args)
    print(f"{result['method']} seed {args.seed}: solved at episode {result['solved_at']}, "
          f"best mean100 {result['best_mean100']}, {result['episodes']} episodes, "
          f"{result['wall_s']} s")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
