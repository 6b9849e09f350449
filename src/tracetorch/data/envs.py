r"""gymnasium environments for reward learning (optional extra ``tracetorch[rl]``).

A batch of ``B`` environments is a batch of ``B`` streams: :func:`make_cartpole` builds
gymnasium's ``CartPole-v1`` as a synchronous vector environment, and :func:`encode_cartpole`
turns its observations into input currents for a spiking layer.

CartPole's observation is ``(x, x_dot, angle, angle_dot)``, signed and of different scales.
The encoder divides each by a fixed scale (2.4 m, 2 m/s, 0.21 rad, 2 rad/s: the termination
bounds for position and angle, typical magnitudes for the velocities) and splits it into a
positive and a negative channel, ``[relu(v), relu(-v)]``: 8 non-negative currents, so a
neuron can be driven by "pole leaning right" without being silenced by "leaning left".

gymnasium is imported lazily: ``import tracetorch`` works without it, and these functions
raise an ``ImportError`` that names the extra.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["CARTPOLE_SCALE", "encode_cartpole", "make_cartpole", "require_gymnasium"]

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
