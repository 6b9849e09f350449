"""Shared test setup: one CPU thread, seeded RNG per test, a hypothesis profile without deadlines.

The machine the suite runs on is small and shared, so every test keeps its sizes small and the
hypothesis profile bounds the number of examples. Set ``HYPOTHESIS_PROFILE=thorough`` for a
longer property-test run.
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(1)

# Timing on a shared machine is noisy: no per-example deadline, and a small, fixed example
# budget so that the suite stays fast and reproducible.
settings.register_profile(
    "tracetorch",
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "tracetorch"))


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from the same torch RNG state."""
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed batch of 128 digits ``(x [128, 64] in [0, 1], y [128])``, loaded once."""
    pytest.importorskip("sklearn")
    import tracetorch as tt

    x, y, _, _ = tt.data.load_digits(seed=0)
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:128]
    return x[idx], y[idx]
