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
from collections import deque
from pathlib import Path

import numpy as np
import torch

import tracetorch as tt
from tracetorch.data.envs import encode_cartpole, make_cartpole
from tracetorch.learning.reward import Reflect, reset_streams

SOLVED = 475.0


def make_snn(hidden: int = 64, trace_decay: float = 0.5) -> tt.nn.Sequential:
    """``LIF(8, hidden) -> LIS(hidden, 2)``: fast membranes and short traces (a reactive task)."""
    return tt.nn.Sequential(
        tt.nn.LIF(8, hidden, beta=0.5, trace_decay=trace_decay, bias_correction=False),
        tt.nn.LIS(hidden, 2, beta=0.5, trace_decay=trace_decay, bias_correction=False),
    )


def make_mlp(hidden: int = 64) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(8, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2),
        torch.nn.Softmax(-1),
    )


class Curve:
    """Episode returns in order of completion, and the first episode at which it is solved."""

    def __init__(self) -> None:
        self.returns: list[float] = []
        self.window: deque[float] = deque(maxlen=100)
        self.solved_at: int | None = None

    def add(self, ret: float) -> None:
        self.returns.append(float(ret))
        self.window.append(float(ret))
        if self.solved_at is None and len(self.window) == 100 and np.mean(self.window) >= SOLVED:
            self.solved_at = len(self.returns)

    @property
    def best_mean100(self) -> float:
        r = np.asarray(self.returns)
        if len(r) < 100:
            return float(r.mean()) if len(r) else 0.0
        c = np.cumsum(np.insert(r, 0, 0.0))
        return float(((c[100:] - c[:-100]) / 100).max())


def policy_step(net, obs, substeps: int) -> torch.Tensor:
    """One environment step of the policy: ``substeps`` network steps, the last output [B, 2]."""
    x = encode_cartpole(obs)
    return net(x.expand(substeps, *x.shape))[-1] if substeps > 1 else net(x)


def train_reflect(args, curve: Curve, log) -> dict:
    """REFLECT on ``--envs`` CartPoles at once (a batch of streams)."""
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    net = make_snn(args.hidden, args.trace_decay)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    learner = Reflect(net, decay=args.decay, baseline_decay=args.baseline_decay)
    env, obs = make_cartpole(args.envs, seed=args.seed, same_step_reset=not args.continuing)
    ep_ret = np.zeros(args.envs)
    steps, pending = 0, False
    while len(curve.returns) < args.episodes and steps < args.max_steps and not (
        args.stop_when_solved and curve.solved_at
    ):
        p = policy_step(net, obs, args.substeps)
        a = learner.act(p, generator=gen)
        obs, r, term, trunc, _ = env.step(a.numpy())
        steps += 1
        done = term | trunc
        if args.continuing:  # the learner sees rewards only; the environment resets itself
            learner.reward(torch.as_tensor(r))
        else:
            learner.reward(torch.as_tensor(r), terminated=torch.as_tensor(term),
                           truncated=torch.as_tensor(trunc))
        # The signal enters the local graphs now (before the next forward, and before an
        # ended stream's state is reset); the optimizer steps every k steps on the sum.
        if learner.backward(p):  # False while there is no signal (CartPole between falls)
            pending = True
        if pending and steps % args.learn_every == 0:
            opt.step()
            opt.zero_grad()
            pending = False
        ep_ret += r
        for i in np.flatnonzero(done):
            curve.add(ep_ret[i])
            ep_ret[i] = 0
            if len(curve.returns) % args.log_every == 0:
                log(len(curve.returns), curve)
        if done.any() and not args.continuing:
            reset_streams(net, torch.as_tensor(done))
    env.close()
    return {"env_steps": steps * args.envs}


def train_reinforce(args, curve: Curve, log, spiking: bool) -> dict:
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
            log(len(curve.returns), curve)
    env.close()
    return {"env_steps": steps}


def run(args) -> dict:
    torch.set_num_threads(1)
    curve = Curve()
    start = time.perf_counter()

    def log(n: int, c: Curve) -> None:
        recent = np.mean(c.returns[-100:])
        print(f"  episode {n:5d}  mean100 {recent:6.1f}  {time.perf_counter() - start:6.0f} s",
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
        "best_mean100": round(curve.best_mean100, 1),
        "final_mean100": round(float(np.mean(curve.returns[-100:])), 1) if curve.returns else 0,
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
