"""The LIF rate functions against the exact theory of the discrete LIF and against its simulation.

``docs/defaults.md`` explains the choice of the default; these tests pin the facts it rests on:
the closed-form plateaus of the devil's staircase, the staircase rate within 0.05 of the
simulation at every beta, the default within 0.05 where a smooth rate can be (beta >= 0.9),
and values and gradients that stay finite for any finite input.
"""

from __future__ import annotations

import pytest
import torch

import tracetorch as tt
import tracetorch.functional.rates as R

f64 = torch.float64


def simulated(
    c: torch.Tensor, beta: float, theta: float = 1.0, burn: int = 1500, steps: int = 3000
):
    """Spikes per step of ``m = beta m + c; s = [m >= theta]; m -= theta s`` from rest."""
    p = tt.functional.LIFParams(torch.tensor(beta, dtype=f64), torch.tensor(theta, dtype=f64))
    state, count = tt.functional.LIFState(torch.zeros_like(c)), torch.zeros_like(c)
    for i in range(burn + steps):
        s, state = tt.functional.lif_step(c, state, p)
        if i >= burn:
            count += s
    return count / steps


@pytest.mark.parametrize("beta", [0.3, 0.5, 0.8, 0.9])
def test_plateau_edges_match_simulation(beta):
    """Inside each closed-form plateau the simulated rate is exactly p/q; just outside it is not."""
    lo, hi, rate = R.plateau_edges(torch.tensor(beta, dtype=f64), max_period=4)
    width = hi - lo
    # u -> c = theta ((1 - beta) + beta u), theta = 1
    inside = torch.stack([lo + 0.05 * width, 0.5 * (lo + hi), hi - 0.05 * width], -1)
    c_in = (1 - beta) + beta * inside.flatten()
    r_in = simulated(c_in, beta).view(-1, 3)
    torch.testing.assert_close(r_in, rate.unsqueeze(-1).expand(-1, 3), rtol=0, atol=1e-3)
    eps = 0.02 * width
    c_out = (1 - beta) + beta * torch.cat([lo - eps, hi + eps])
    r_out = simulated(c_out, beta)
    assert bool(((r_out - torch.cat([rate, rate])).abs() > 1e-4).all())


def test_plateau_edges_equal_the_hecke_mahler_series():
    beta = torch.tensor([0.5, 0.9], dtype=f64)
    lo, hi, rate = R.plateau_edges(beta, max_period=5)
    j = torch.arange(1, 4000, dtype=f64)
    for k, rho in enumerate(rate.tolist()):
        series = ((1 - beta) / beta) ** 2 * (
            beta.unsqueeze(-1) ** j * torch.floor(j * rho + 1e-9)
        ).sum(-1)
        torch.testing.assert_close(hi[:, k], series, rtol=1e-9, atol=1e-9)
    assert bool((rate.diff() > 0).all())  # fractions in increasing order
    assert bool((lo < hi).all()) and bool((hi[:, :-1] < lo[:, 1:]).all())  # disjoint, in order


@pytest.mark.parametrize("beta", [0.5, 0.7, 0.9, 0.99])
@pytest.mark.parametrize("theta", [1.0, 0.5])
def test_staircase_within_005_of_simulation(beta, theta):
    c = torch.linspace(0, 2 * theta, 401, dtype=f64)
    r = R.staircase_rate(c, torch.tensor(beta, dtype=f64), torch.tensor(theta, dtype=f64))
    steps = 20000 if beta > 0.95 else 3000
    err = (r - simulated(c, beta, theta, steps=steps)).abs().max()
    assert float(err) <= 0.05


@pytest.mark.parametrize("beta", [0.9, 0.95, 0.99])
def test_default_rate_fn_within_005_where_smooth_can_be(beta):
    """The default (``linear``) is within 0.05 of the constant-input rate for beta >= 0.9.

    At beta = 0.5 no rate function with a useful gradient can be: see docs/defaults.md.
    """
    fn = tt.nn.LIF(1, 1).rate_fn
    assert fn is R.linear_rate
    c = torch.linspace(0, 2, 401, dtype=f64)
    r = fn(c, torch.tensor(beta, dtype=f64), torch.tensor(1.0, dtype=f64))
    steps = 20000 if beta > 0.95 else 3000
    assert float((r - simulated(c, beta, steps=steps)).abs().max()) <= 0.05


def test_mean_field_is_the_average_of_the_exact_inverse():
    """Averaged over rates rho in (0, 1), the exact c(rho) of the staircase is rho + (1-beta)/2."""
    for beta in (0.5, 0.9):
        rho = (torch.arange(20000, dtype=f64) + 0.5) / 20000
        j = torch.arange(1, 400, dtype=f64)
        u = ((1 - beta) / beta) ** 2 * (beta**j * torch.floor(rho.unsqueeze(-1) * j)).sum(-1)
        c = (1 - beta) + beta * u  # theta = 1
        assert float((c - rho).mean()) == pytest.approx((1 - beta) / 2, abs=2e-3)


@pytest.mark.parametrize("name", sorted(R.RATE_FUNCTIONS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_values_and_gradients_everywhere(name, dtype):
    fn = R.RATE_FUNCTIONS[name]
    big = 1e30 if dtype == torch.float32 else 1e300
    c = torch.tensor(
        [
            -big,
            -5,
            -1e-3,
            0,
            1e-7,
            0.05,
            0.1,
            0.1 + 1e-6,
            0.3,
            0.5,
            0.5 + 1e-6,
            0.9,
            1.0,
            1.0 + 1e-6,
            1.5,
            1e6,
            big,
        ],
        dtype=dtype,
    )
    c = c.unsqueeze(-1).repeat(2, 1, 3).requires_grad_()  # [B=2, N, F=3]
    beta = torch.tensor([0.5, 0.9, 0.99], dtype=dtype, requires_grad=True)
    theta = torch.tensor([1.0, 1.0, 2.0], dtype=dtype, requires_grad=True)
    r = fn(c, beta, theta)
    assert r.shape == c.shape
    assert bool(((r >= 0) & (r <= 1)).all())
    grads = torch.autograd.grad(r.sum(), [c, beta, theta])
    for g in grads:
        assert bool(torch.isfinite(g).all())


@pytest.mark.parametrize("name", ["linear", "mean_field", "staircase"])
def test_gradcheck(name):
    fn = R.RATE_FUNCTIONS[name]
    c = torch.tensor([0.3, 0.62, 0.75, 0.95, 1.4], dtype=f64, requires_grad=True)
    beta = torch.tensor(0.7, dtype=f64, requires_grad=True)
    theta = torch.tensor(1.1, dtype=f64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (c, beta, theta))


def test_li_average_after_steps_is_the_actual_membrane():
    c = torch.randn(4, 3, dtype=f64)
    beta = torch.tensor([0.5, 0.9, 0.99], dtype=f64)
    state0 = tt.functional.LIState(torch.zeros(4, 3, dtype=f64))
    ms, state = tt.functional.run(
        tt.functional.li_step, c.expand(25, 4, 3), state0, tt.functional.LIParams(beta)
    )
    m = state.membrane
    assert torch.equal(ms[-1], m)
    torch.testing.assert_close(R.li_average(c, beta, steps=25), m)
    torch.testing.assert_close(R.li_average(c, beta), c / (1 - beta))
    torch.testing.assert_close(R.lis_average(c, beta, steps=25), torch.softmax(m, -1))
