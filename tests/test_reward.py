"""Reward learning with traces (REFLECT): math, a CartPole smoke run, mid-episode checkpoints."""

from __future__ import annotations

import io

import pytest
import torch

import tracetorch as tt
from tracetorch.learning import Reflect, reset_streams


def _policy(seed: int = 0, out: str = "lis") -> tt.nn.Sequential:
    torch.manual_seed(seed)
    head = tt.nn.LIS if out == "lis" else tt.nn.LI
    return tt.nn.Sequential(
        tt.nn.LIF(3, 8, beta=0.5, trace_decay=0.5, bias_correction=False),
        head(8, 3, beta=0.5, trace_decay=0.5, bias_correction=False),
    )


def _obs(t: int, batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(100 + t)
    return torch.rand(batch, 3, generator=g) * 3


def test_score_trace_is_the_summed_log_prob_gradient():
    """decay 1: e = sum_t d log p_t(a_t) / d z_t, checked against autograd on the logits."""
    net = _policy()
    learner = Reflect(net, decay=1.0)
    gen = torch.Generator().manual_seed(0)
    expected = torch.zeros(2, 3)
    with torch.no_grad():
        for t in range(6):
            p = net(_obs(t))
            a = learner.act(p, generator=gen)
            z = torch.log(p).clone().requires_grad_()  # logits up to a constant per row
            with torch.enable_grad():
                torch.log_softmax(z, -1).gather(-1, a.unsqueeze(-1)).sum().backward()
            expected += z.grad
    torch.testing.assert_close(learner.score_trace, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(learner.score_trace.sum(-1), torch.zeros(2), atol=1e-5, rtol=0)


def test_baseline_is_the_bias_corrected_mean_of_past_rewards():
    net = _policy()
    learner = Reflect(net, baseline_decay=0.5)
    rewards = [1.0, 2.0, 3.0, -1.0]
    with torch.no_grad():
        for n, r in enumerate(rewards, start=1):
            learner.act(net(_obs(n)))
            learner.reward(torch.tensor([r, 0.0]))
            w = torch.tensor([0.5 ** (n - k) for k in range(1, n + 1)])
            ema = (w * torch.tensor(rewards[:n])).sum() * 0.5 / (1 - 0.5**n)
            assert learner.baseline[0].item() == pytest.approx(ema.item(), rel=1e-6)
            assert learner.baseline[1].item() == 0.0


def test_signal_is_the_forward_view_discounted_advantage():
    """sum_t (r_t - b_{t-1}) e_t == sum_k score_k sum_{t>=k} lam^(t-k) (r_t - b_{t-1}), plus the
    terminal correction: the future of zero rewards, -b_T lam^(T+1-k) / (1 - lam)."""
    lam, net = 0.8, _policy()
    learner = Reflect(net, decay=lam, baseline_decay=0.7)
    gen = torch.Generator().manual_seed(1)
    rewards = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 1.0], [-1.0, 0.5], [2.0, 2.0]])
    scores, advantages = [], []
    with torch.no_grad():
        for t, r in enumerate(rewards):
            p = net(_obs(t))
            a = learner.act(p, generator=gen)
            scores.append(torch.nn.functional.one_hot(a, 3).float() - p)
            advantages.append(r - learner.baseline)
            last = t == len(rewards) - 1
            learner.reward(r, terminated=torch.tensor([last, False]))
    steps = len(rewards)
    expected = torch.zeros(2, 3)
    for k in range(steps):
        ahead = sum(lam ** (t - k) * advantages[t] for t in range(k, steps))
        expected += ahead.unsqueeze(-1) * scores[k]
    # stream 0 terminated at the last step: the zero-reward future against the baseline
    b_end = learner.baseline[0]
    for k in range(steps):
        expected[0] += -b_end * lam ** (steps - k) / (1 - lam) * scores[k][0]
    torch.testing.assert_close(learner.signal, expected, rtol=1e-5, atol=1e-5)
    assert learner.score_trace[0].abs().sum() == 0  # cleared at the episode end
    assert learner.score_trace[1].abs().sum() > 0


@pytest.mark.parametrize("explicit", [False, True])
def test_probability_signal_maps_back_to_the_logit_signal(explicit):
    """Through LIS's local graph (softmax of the average membrane), the learner's signal gives
    the gradients of the logit signal -G/B on an LI head with the same weights and state."""
    grads = {}
    for out in ("lis", "li"):
        net = _policy(out=out)
        learner = Reflect(net, decay=0.9, output="probs" if out == "lis" else "logits")
        gen = torch.Generator().manual_seed(2)
        for t in range(5):
            y = net(_obs(t))
            p = y if out == "lis" else torch.softmax(y, -1)
            with torch.no_grad():
                learner.act(p if out == "lis" else y, generator=gen)
                learner.reward(torch.tensor([1.0, -0.5]) * (t + 1))
        net.zero_grad()
        assert learner.backward(None if explicit else y)
        grads[out] = [p.grad.clone() for p in net.parameters() if p.grad is not None]
        assert learner.signal.abs().sum() == 0
    assert len(grads["lis"]) == len(grads["li"]) > 0
    for g_lis, g_li in zip(grads["lis"], grads["li"], strict=True):
        torch.testing.assert_close(g_lis, g_li, rtol=1e-4, atol=1e-6)


def test_backward_without_signal_does_nothing_and_bad_use_raises():
    net = _policy()
    learner = Reflect(net)
    with pytest.raises(RuntimeError, match="act"):
        learner.reward(1.0)
    p = net(_obs(0))
    learner.act(p)
    learner.reward(0.0)  # reward equal to the (zero) baseline: no signal
    assert learner.backward(p) is False
    assert all(q.grad is None for q in net.parameters())
    with pytest.raises(ValueError, match=r"\[B, A\]"):
        learner.act(torch.full((3, 3), 1 / 3))
    with pytest.raises(ValueError, match="decay"):
        Reflect(net, decay=1.5)
    with pytest.raises(ValueError, match="terminated"):
        lone = Reflect(net, decay=1.0)
        lone.act(net(_obs(1)))
        lone.reward(1.0, terminated=torch.tensor([True, False]))


def _run(net, learner, opt, gen, start: int, steps: int) -> list[torch.Tensor]:
    """A deterministic toy environment: reward 1 when the action matches argmax of obs."""
    record = []
    for t in range(start, start + steps):
        obs = _obs(t)
        p = net(obs)
        a = learner.act(p, generator=gen)
        r = (a == obs.argmax(-1)).float()
        learner.reward(r, terminated=torch.tensor([t % 4 == 3, False]))
        opt.zero_grad()
        if learner.backward(p):
            opt.step()
        reset_streams(net, torch.tensor([t % 4 == 3, False]))
        record += [a.clone(), p.detach().clone()]
    return record


def test_checkpoint_mid_episode_round_trip():
    net = _policy()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    learner = Reflect(net, decay=0.9)
    gen = torch.Generator().manual_seed(3)
    _run(net, learner, opt, gen, 0, 6)  # stop in the middle of an episode
    buf = io.BytesIO()
    torch.save(
        {
            "model": net.state_dict(),
            "stream": net.stream_state_dict(),
            "opt": opt.state_dict(),
            "learner": learner.state_dict(),
            "rng": gen.get_state(),
        },
        buf,
    )
    expected = _run(net, learner, opt, gen, 6, 7)

    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    net2 = _policy(seed=99)
    net2.load_state_dict(ckpt["model"])
    net2.load_stream_state_dict(ckpt["stream"])
    opt2 = torch.optim.Adam(net2.parameters(), lr=1e-2)
    opt2.load_state_dict(ckpt["opt"])
    learner2 = Reflect(net2)
    learner2.load_state_dict(ckpt["learner"])
    gen2 = torch.Generator()
    gen2.set_state(ckpt["rng"])
    got = _run(net2, learner2, opt2, gen2, 6, 7)
    for x, y in zip(expected, got, strict=True):
        assert torch.equal(x, y)


def test_reset_streams_zeroes_only_the_ended_rows():
    net = _policy()
    with torch.no_grad():
        net(_obs(0, batch=3))
    before = net.stream_state_dict()
    reset_streams(net, torch.tensor([False, True, False]))
    after = net.stream_state_dict()
    for key, value in after.items():
        if key.endswith("steps"):
            continue
        assert value[1].abs().sum() == 0
        assert torch.equal(value[[0, 2]], before[key][[0, 2]])


def test_cartpole_smoke():
    pytest.importorskip("gymnasium", reason="gymnasium is not installed (extra tracetorch[rl])")
    from tracetorch.data.envs import encode_cartpole, make_cartpole

    torch.manual_seed(0)
    net = tt.nn.Sequential(tt.nn.LIF(8, 16, beta=0.5), tt.nn.LIS(16, 2, beta=0.5))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    learner = Reflect(net, decay=0.9)
    env, obs = make_cartpole(2, seed=0)
    before = [p.detach().clone() for p in net.parameters()]
    ended = 0
    for _ in range(60):
        p = net(encode_cartpole(obs))
        a = learner.act(p)
        obs, r, term, trunc, _ = env.step(a.numpy())
        learner.reward(
            torch.as_tensor(r), terminated=torch.as_tensor(term), truncated=torch.as_tensor(trunc)
        )
        opt.zero_grad()
        if learner.backward(p):
            opt.step()
        done = torch.as_tensor(term | trunc)
        ended += int(done.sum())
        reset_streams(net, done)
    env.close()
    assert ended > 0  # a random policy falls within 60 steps
    assert all(torch.isfinite(p).all() for p in net.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_cli_cartpole(tmp_path, capsys):
    pytest.importorskip("gymnasium", reason="gymnasium is not installed (extra tracetorch[rl])")
    from tracetorch.cli import main

    assert (
        main(
            [
                "train",
                "--task",
                "cartpole",
                "--episodes",
                "4",
                "--envs",
                "2",
                "--no-plots",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "history.json").exists()
    assert main(["train", "--task", "cartpole", "--epochs", "2", "--out", str(tmp_path)]) == 2
    assert "does not apply" in capsys.readouterr().err
