r"""gymnasium environments for reward learning (optional extra ``tracetorch[rl]``).

A batch of ``B`` environments is a batch of ``B`` streams: :func:`make_cartpole` builds
gymnasium's ``CartPole-v1`` as a synchronous vector environment, and :func:`encode_cartpole`
turns its observations into input currents for a spiking layer.

CartPole's observation is ``(x, x_dot, angle, angle_dot)``, signed and of different scales.
The encoder divides each by a fixed scale (2.4 m, 2 m/s, 0.21 rad, 2 rad/s: the termination
bounds for position and angle, typical magnitudes for the velocities) and splits it into a
positive and a negative channel, ``[relu(v), relu(-v)]``: 8 non-negative currents, so a
neuron can be driven by "pole leaning right" without being silenced by "leaning left".

:func:`train_cartpole` trains the spiking policy of :func:`cartpole_policy` with
:class:`tracetorch.learning.Reflect` (``examples/cartpole.py``, ``tracetorch train --task
cartpole``, ``docs/reward.md``).

gymnasium is imported lazily: ``import tracetorch`` works without it, and these functions
raise an ``ImportError`` that names the extra.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = [
    "CARTPOLE_SCALE",
    "SOLVED_RETURN",
    "ReturnCurve",
    "cartpole_policy",
    "encode_cartpole",
    "make_cartpole",
    "require_gymnasium",
    "train_cartpole",
]

#: Divisors of CartPole's observation (position, velocity, angle, angular velocity).
CARTPOLE_SCALE = (2.4, 2.0, 0.2095, 2.0)


def require_gymnasium() -> Any:
    """Import and return gymnasium, or raise an ImportError naming the ``rl`` extra."""
    try:
        import gymnasium
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reward learning on gymnasium environments needs gymnasium: "
            "pip install 'tracetorch[rl]' (or pip install 'gymnasium>=1.1')"
        ) from err
    return gymnasium


def make_cartpole(num_envs: int = 1, *, seed: int | None = 0, same_step_reset: bool = True):
    """``CartPole-v1`` as a synchronous vector environment of ``num_envs`` streams, reset.

    Args:
        num_envs: the batch of streams ``B``.
        seed: seeds the environments (``seed, seed + 1, ...``); ``None`` leaves them unseeded.
        same_step_reset: gymnasium's ``AutoresetMode.SAME_STEP``: the step that ends an
            episode returns the first observation of the next one (the episodic learner's
            choice: no wasted step). ``False`` keeps gymnasium's default ``NEXT_STEP``: after
            an episode ends, one more step returns the reset observation with reward 0 and
            ignores the action (what a continuing learner sees: the environment resets
            itself, and the missing reward is the only trace of the fall).

    Returns:
        ``(env, obs)`` with ``obs`` the first observations ``[B, 4]`` (a numpy array).
    """
    gym = require_gymnasium()
    kwargs: dict[str, Any] = {}
    if same_step_reset:
        kwargs["vector_kwargs"] = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}
    env = gym.make_vec("CartPole-v1", num_envs=num_envs, vectorization_mode="sync", **kwargs)
    obs, _ = env.reset(seed=seed)
    return env, obs


def encode_cartpole(obs: Any, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """Observations ``[B, 4]`` (numpy or tensor) -> non-negative input currents ``[B, 8]``.

    ``v = obs / CARTPOLE_SCALE``; the currents are ``[relu(v), relu(-v)]``.
    """
    x = torch.as_tensor(obs, dtype=dtype)
    if x.dim() != 2 or x.shape[-1] != 4:
        raise ValueError(f"CartPole observations must be [B, 4], got {tuple(x.shape)}")
    v = x / torch.tensor(CARTPOLE_SCALE, dtype=dtype)
    return torch.cat([v.clamp_min(0), (-v).clamp_min(0)], dim=-1)


# ---------------------------------------------------------------------- CartPole with REFLECT
#: CartPole-v1 counts as solved when 100 consecutive episodes return 475 on average.
SOLVED_RETURN = 475.0


def cartpole_policy(hidden: int = 64, trace_decay: float = 0.5):
    """The spiking CartPole policy: ``LIF(8, hidden) -> LIS(hidden, 2)``.

    Fast membranes (``beta = 0.5``) and short input traces (``trace_decay = 0.5``, a window of
    about 2 steps): the task is reactive, and the local graph should see the current state.
    No bias correction: the batch of streams restarts row by row (see
    :func:`tracetorch.learning.reset_streams`).
    """
    from .. import nn as ttnn

    return ttnn.Sequential(
        ttnn.LIF(8, hidden, beta=0.5, trace_decay=trace_decay, bias_correction=False),
        ttnn.LIS(hidden, 2, beta=0.5, trace_decay=trace_decay, bias_correction=False),
    )


class ReturnCurve:
    """Episode returns in order of completion, and the episode at which the task was solved."""

    def __init__(self, solved: float = SOLVED_RETURN, window: int = 100) -> None:
        self.returns: list[float] = []
        self.solved, self.window = float(solved), int(window)
        self.solved_at: int | None = None

    def add(self, ret: float) -> None:
        self.returns.append(float(ret))
        n, w = len(self.returns), self.window
        if self.solved_at is None and n >= w and sum(self.returns[-w:]) / w >= self.solved:
            self.solved_at = n

    def mean(self, last: int | None = None) -> float:
        r = self.returns[-(last or self.window) :]
        return sum(r) / len(r) if r else 0.0

    def best_mean(self) -> float:
        """The best mean over ``window`` consecutive episodes (of all, if fewer)."""
        r, w = self.returns, self.window
        if len(r) < w:
            return self.mean(len(r)) if r else 0.0
        run = best = sum(r[:w])
        for i in range(w, len(r)):
            run += r[i] - r[i - w]
            best = max(best, run)
        return best / w


def train_cartpole(
    *,
    seed: int = 0,
    episodes: int = 2000,
    envs: int = 8,
    hidden: int = 64,
    substeps: int = 2,
    trace_decay: float = 0.5,
    lr: float = 1e-3,
    decay: float = 0.95,
    baseline_decay: float = 0.999,
    learn_every: int = 1,
    continuing: bool = False,
    stop_when_solved: bool = False,
    max_steps: int = 10**7,
    log=None,
    log_every: int = 100,
) -> dict[str, Any]:
    """Train :func:`cartpole_policy` on ``envs`` CartPoles at once with :class:`Reflect`.

    Per environment step: ``substeps`` network steps on the encoded observation, an action
    sampled per stream, the rewards (and, unless ``continuing``, the episode ends) given to the
    learner; every ``learn_every`` steps the accumulated learning signal goes into the local
    graphs and Adam steps (episode ends send theirs at once, before the stream restarts).
    ``continuing``: the learner sees rewards only, gymnasium resets each environment itself
    (``NEXT_STEP``: the fall shows as one step of reward 0).

    Returns a dict: ``returns`` (per episode, in order of completion), ``solved_at``,
    ``best_mean100``, ``wall_s``, ``env_steps``, and the ``model``, ``learner``, ``optimizer``.
    """
    import time

    from ..learning.reward import Reflect, reset_streams

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = cartpole_policy(hidden, trace_decay)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    learner = Reflect(net, decay=decay, baseline_decay=baseline_decay)
    env, obs = make_cartpole(envs, seed=seed, same_step_reset=not continuing)
    curve = ReturnCurve()
    ep_ret = [0.0] * envs
    steps, pending, start = 0, False, time.perf_counter()
    while len(curve.returns) < episodes and steps < max_steps:
        if stop_when_solved and curve.solved_at:
            break
        x = encode_cartpole(obs)
        p = net(x.expand(substeps, *x.shape))[-1] if substeps > 1 else net(x)
        a = learner.act(p, generator=gen)
        obs, r, term, trunc, _ = env.step(a.numpy())
        steps += 1
        r_t = torch.as_tensor(r, dtype=torch.float32)
        if continuing:  # rewards only; the environment resets itself
            learner.reward(r_t)
        else:
            learner.reward(r_t, terminated=torch.as_tensor(term), truncated=torch.as_tensor(trunc))
        # Every learn_every steps the accumulated signal enters the local graphs and Adam steps.
        # An episode end sends it at once (before the ended stream's state is reset); the
        # optimizer still waits for the next multiple of learn_every.
        done = term | trunc
        learn = steps % learn_every == 0
        if (learn or (not continuing and done.any())) and learner.backward(p):
            pending = True  # backward() is False while there is no signal (between falls)
        if pending and learn:
            opt.step()
            opt.zero_grad()
            pending = False
        for i in range(envs):
            ep_ret[i] += float(r[i])
            if done[i]:
                curve.add(ep_ret[i])
                ep_ret[i] = 0.0
                if log is not None and len(curve.returns) % log_every == 0:
                    log(len(curve.returns), curve.mean(), time.perf_counter() - start)
        if not continuing and done.any():
            reset_streams(net, torch.as_tensor(done))
    env.close()
    return {
        "returns": curve.returns,
        "solved_at": curve.solved_at,
        "best_mean100": round(curve.best_mean(), 1),
        "final_mean100": round(curve.mean(), 1),
        "episodes": len(curve.returns),
        "wall_s": round(time.perf_counter() - start, 1),
        "env_steps": steps * envs,
        "model": net,
        "learner": learner,
        "optimizer": opt,
    }
