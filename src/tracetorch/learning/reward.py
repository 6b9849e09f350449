r"""REFLECT: reward learning with traces (a REINFORCE whose credit lives in traces).

A policy network ends in :class:`~tracetorch.nn.LIS` (or in logits); at each step it gives a
distribution :math:`p_t` over actions, one per stream of a batch of ``B`` streams (e.g. ``B``
environments). The learner keeps, per stream, three small traces and no episode buffer:

.. math::
    e_t = \lambda\, e_{t-1} + (\mathrm{onehot}(a_t) - p_t)
        \qquad \text{(score trace, [B, A])}

    b_t = \text{the mean of past rewards, decay } \mu \qquad \text{(baseline, [B])}

    G \mathrel{+}= (r_t - b_{t-1})\, e_t \qquad \text{(learning signal, [B, A])}

:math:`\mathrm{onehot}(a) - p` is :math:`\partial \log p(a) / \partial z`, the gradient of the
log-probability of the action taken with respect to the logits :math:`z` (``p = softmax(z)``).
Summed over a stream, :math:`\sum_t (r_t - b) e_t = \sum_k (\mathrm{onehot}(a_k) - p_k)
\sum_{t \ge k} \lambda^{t-k} (r_t - b)`: each action's score times its discounted
advantage-to-go (the backward view of REINFORCE, Williams 1992). The discount, or credit
horizon, is the score-trace decay :math:`\lambda` (about :math:`1/(1-\lambda)` steps).

**Episode ends.** For a terminated stream (the episode is over: no reward ever again) the
future advantage :math:`\sum_{t > T} \lambda^{t-k}(0 - b) = -b\lambda^{T+1-k}/(1-\lambda)` is
added at once, :math:`G \mathrel{+}= -b\,\lambda/(1-\lambda)\, e_T`, and the stream's score
trace is cleared. This is REINFORCE with discount :math:`\lambda` and the constant baseline
:math:`b/(1-\lambda)` (the value of receiving the mean reward forever); with CartPole's reward
of 1 per step it blames the actions of the last :math:`\sim 1/(1-\lambda)` steps before a
fall. A truncated stream (a time limit) clears its trace without the correction. A
continuing task passes no ends at all.

**Into the local graphs.** When the network learns (every step, every ``k`` steps, or
when a reward arrives), the loss is :math:`L = -\frac{1}{B}\sum G \cdot z`, so
:math:`\partial L/\partial z = -G/B`. The policy layer's trace-mode backward applies a signal
to its *average* output :math:`\bar p = \mathrm{softmax}(\bar z)` (the local graph). Since
every row of :math:`G` sums to zero (every score does), the output-space signal
:math:`g_p = -G / (B\,\bar p)` maps back exactly through the softmax Jacobian:
:math:`J(\bar p)^\top g_p = \bar p \odot g_p - \bar p\,(\bar p \cdot g_p) = -G/B`. The signal
then goes down the same local graphs as supervised learning (``output.backward(g_p)`` through
autograd, or ``net.backward(g_p)``), and any optimizer steps. For a policy that outputs logits
(``output="logits"``) the signal is :math:`-G/B` itself.

**What is approximate.** The exact gradient pairs each score with the input of its own step
(:math:`\sum_k (\ldots)_k \otimes x_k`); the local graph pairs the accumulated signal with the
layers' *average* input at learning time. It is right when the states that earned the credit
resemble the recent average (slowly changing observations, short :math:`\lambda` and trace
windows) and blurs credit across states otherwise (``docs/reward.md``).

Checkpointing mid-episode: save ``net.state_dict()``, ``net.stream_state_dict()``, the
optimizer's and this learner's :meth:`Reflect.state_dict`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["Reflect", "reset_streams"]


def _policy_layer(policy: nn.Module) -> nn.Module | None:
    from ..nn.base import TraceLayer  # nn imports learning: resolve at call time

    layers = [m for m in policy.modules() if isinstance(m, TraceLayer)]
    return layers[-1] if layers else None


class Reflect:
    r"""Reward learning with traces for a policy ending in ``LIS`` (or logits).

    Args:
        policy: the network whose output is the action distribution ``[B, A]``
            (probabilities from :class:`~tracetorch.nn.LIS`, or logits).
        decay: score-trace decay :math:`\lambda` in [0, 1]: the discount, i.e. the credit
            horizon of about ``1 / (1 - decay)`` steps (1: undiscounted, no terminal
            correction possible).
        baseline_decay: decay :math:`\mu` in [0, 1) of the reward trace that is the baseline
            (bias-corrected while young).
        output: ``"probs"`` (the policy ends in ``LIS``; default) or ``"logits"``.

    The loop, per step (``B`` streams)::

        p = net(encode(obs))                 # [B, A]
        a = learner.act(p)                   # sample, update the score trace
        obs, r, term, trunc, _ = env.step(a.numpy())
        learner.reward(r, terminated=term, truncated=trunc)
        learner.backward(p)                  # every k steps: the signal into the local graphs
        opt.step(); opt.zero_grad()

    ``backward`` may be called every step or every ``k`` steps: the signal accumulates in
    :math:`G` (``[B, A]``) in between. Call it before the next forward of the network (a
    trace-mode output is bound to its state); without an output it uses
    ``policy.backward(signal)`` (tracetorch layers only).

    Attributes:
        score_trace: :math:`e` ``[B, A]``; ``signal``: :math:`G` ``[B, A]``;
        baseline: :math:`b` ``[B]``; ``reward_steps``: rewards seen per stream ``[B]``.
    """

    def __init__(
        self,
        policy: nn.Module,
        *,
        decay: float = 0.95,
        baseline_decay: float = 0.99,
        output: str = "probs",
    ) -> None:
        if not isinstance(policy, nn.Module):
            raise TypeError(f"policy must be an nn.Module, got {type(policy).__name__}")
        if not 0.0 <= float(decay) <= 1.0:
            raise ValueError(f"decay must be in [0, 1], got {decay}")
        if not 0.0 <= float(baseline_decay) < 1.0:
            raise ValueError(f"baseline_decay must be in [0, 1), got {baseline_decay}")
        if output not in ("probs", "logits"):
            raise ValueError(f"output must be 'probs' or 'logits', got {output!r}")
        self.policy = policy
        self.decay = float(decay)
        self.baseline_decay = float(baseline_decay)
        self.output = output
        if output == "probs" and _policy_layer(policy) is None:
            raise ValueError("output='probs' needs a tracetorch policy layer (LIS) in the policy")
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget every trace (the next :meth:`act` starts new streams, any batch size)."""
        self.score_trace: Tensor | None = None
        self.signal: Tensor | None = None
        self.baseline: Tensor | None = None
        self.reward_steps: Tensor | None = None

    def _prepare(self, p: Tensor) -> None:
        if self.score_trace is None:
            z = torch.zeros_like(p, dtype=torch.float32)
            self.score_trace, self.signal = z, z.clone()
            self.baseline = torch.zeros(p.shape[0], device=p.device)
            self.reward_steps = torch.zeros(p.shape[0], device=p.device, dtype=torch.int64)
        elif self.score_trace.shape != p.shape:
            raise ValueError(
                f"Reflect: the policy output has shape {tuple(p.shape)} but the traces are "
                f"{tuple(self.score_trace.shape)} ([B, A]); call reset() for a new batch"
            )

    def state_dict(self) -> dict[str, Any]:
        """The learner's traces and settings (tensors and numbers; ``torch.save``-able)."""
        out: dict[str, Any] = {
            "decay": self.decay,
            "baseline_decay": self.baseline_decay,
            "output": self.output,
        }
        for name in ("score_trace", "signal", "baseline", "reward_steps"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.clone()
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the streams continue where they were saved."""
        self.decay = float(state_dict["decay"])
        self.baseline_decay = float(state_dict["baseline_decay"])
        self.output = state_dict["output"]
        self.reset()
        for name in ("score_trace", "signal", "baseline", "reward_steps"):
            if name in state_dict:
                setattr(self, name, state_dict[name].clone())

    # ------------------------------------------------------------------ the three calls
    def probabilities(self, output: Tensor) -> Tensor:
        """The action distribution ``[B, A]`` of a policy output (detached)."""
        output = output.detach()
        if output.dim() != 2:
            raise ValueError(
                f"Reflect: the policy output must be one step [B, A], got {tuple(output.shape)}"
            )
        return torch.softmax(output.float(), -1) if self.output == "logits" else output.float()

    def act(
        self,
        output: Tensor,
        *,
        generator: torch.Generator | None = None,
        greedy: bool = False,
    ) -> Tensor:
        """Sample one action per stream from ``output`` ``[B, A]`` and trace its score.

        Returns the actions ``[B]`` (int64). ``greedy=True`` takes the most likely action
        (and still traces its score).
        """
        p = self.probabilities(output)
        self._prepare(p)
        if greedy:
            a = p.argmax(-1)
        else:
            a = torch.multinomial(p.clamp_min(0), 1, generator=generator).squeeze(-1)
        score = -p
        score.scatter_add_(-1, a.unsqueeze(-1), torch.ones_like(p[:, :1]))
        self.score_trace.mul_(self.decay).add_(score)
        return a

    def reward(
        self,
        reward: Tensor | float,
        *,
        terminated: Tensor | None = None,
        truncated: Tensor | None = None,
    ) -> None:
        """Take the rewards ``[B]`` of the last actions (any step; 0 where none arrived).

        ``terminated`` ``[B]`` (bool) ends those streams' episodes with the terminal
        correction; ``truncated`` ends them without it. Both clear the streams' score traces
        (the baseline carries over: it is a statistic of the task, not of one episode).
        """
        if self.score_trace is None:
            raise RuntimeError("Reflect.reward: call act() first (no action was taken yet)")
        e = self.score_trace
        r = torch.as_tensor(reward, dtype=torch.float32, device=e.device).expand(e.shape[0])
        b = self.baseline  # the mean of past rewards (before this one)
        self.signal.add_((r - b).unsqueeze(-1) * e)
        # baseline: bias-corrected trace of rewards (exact running mean while young)
        self.reward_steps += 1
        mu = self.baseline_decay
        weight = (1 - mu) / (1 - mu ** self.reward_steps.float())
        self.baseline = b + weight * (r - b)
        ended = None
        if terminated is not None:
            term = torch.as_tensor(terminated, device=e.device).bool()
            lam = self.decay
            if lam >= 1.0 and bool(term.any()):
                raise ValueError(
                    "Reflect: a terminated episode needs decay < 1 (the terminal correction "
                    "is -b * decay / (1 - decay)); pass it as truncated for decay = 1"
                )
            self.signal.add_((-self.baseline * (lam / (1 - lam)) * term).unsqueeze(-1) * e)
            ended = term
        if truncated is not None:
            trunc = torch.as_tensor(truncated, device=e.device).bool()
            ended = trunc if ended is None else ended | trunc
        if ended is not None:
            e.masked_fill_(ended.unsqueeze(-1), 0.0)

    def learning_signal(self) -> Tensor:
        r"""``dL/d(policy output)`` ``[B, A]`` for the accumulated :math:`G` (not cleared).

        Logits: :math:`-G/B`. Probabilities: :math:`-G/(B \bar p)`, with :math:`\bar p` the
        policy layer's average output now (its local graph), so that the softmax Jacobian of
        the local graph maps it back to :math:`-G/B` on the average logits.
        """
        if self.signal is None:
            raise RuntimeError("Reflect: no action was taken yet")
        g = -self.signal / self.signal.shape[0]
        if self.output == "logits":
            return g
        layer = _policy_layer(self.policy)
        with torch.no_grad():
            p_bar = layer.average_output(layer.average_input()).float()
        return g / p_bar.clamp_min(torch.finfo(p_bar.dtype).tiny)

    def backward(self, output: Tensor | None = None) -> bool:
        """Send the accumulated signal into the network's local graphs and clear it.

        Args:
            output: the policy's latest output (from the forward since which the network has
                not advanced): the signal goes through autograd (``output.backward``), so
                ``torch.nn`` modules before the policy learn too. ``None``: the explicit path
                ``policy.backward(signal)`` (tracetorch layers only).

        Gradients accumulate into ``.grad``; step the optimizer after. Returns False (and
        does nothing) while the accumulated signal is zero, e.g. CartPole between falls:
        then skip the optimizer step too (Adam would still move the weights by momentum).
        """
        signal = self.learning_signal()
        if not bool(self.signal.any()):
            return False
        if output is not None:
            output.backward(signal.to(output.dtype))
        else:
            self.policy.backward(signal.to(next(self.policy.parameters()).dtype))
        self.signal.zero_()
        return True


def reset_streams(net: nn.Module, mask: Tensor) -> None:
    """Zero the stream state (neuron state and input traces) of the rows ``mask`` ``[B]``.

    For a batch of streams whose episodes end at different times: the ended streams restart
    from rest while the others continue. (The layers' steps-since-reset counter is shared by
    the batch and is left as it is; bias correction of young traces then treats the restarted
    rows as old: turn ``bias_correction`` off for long batched runs, or accept the small
    difference.) Uses :func:`~tracetorch.nn.state.stream_state_dict` /
    ``load_stream_state_dict``.
    """
    from ..nn.state import load_stream_state_dict, stream_state_dict

    mask = torch.as_tensor(mask).bool()
    if not bool(mask.any()):
        return
    state = stream_state_dict(net)
    for key, value in state.items():
        if not key.endswith("steps") and value.dim() > 0:
            value[mask.to(value.device)] = 0
    load_stream_state_dict(net, state)
