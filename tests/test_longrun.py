"""The long-run check of ``benchmarks/longrun.py``, short: 20,000 steps in float32 and bfloat16.

``python -m benchmarks.longrun`` runs 10^6 steps (``docs/reliability.md`` has its table); this
test keeps the same function from rotting: finite parameters and states, traces within
``max|x| / (1 - d)``, decays below 1, thresholds in range, flat RSS, a loss that falls.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.longrun import run_longrun


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_twenty_thousand_steps_stay_finite_bounded_and_flat(dtype):
    result = run_longrun(20_000, dtype, chunk=1000)
    assert result.ok, result.table()
    assert [row[0] for row in result.rows] == [10_000, 20_000]
    first, last = result.rows[0], result.rows[-1]
    assert last[1] - first[1] < 16.0  # RSS in MiB
    assert last[3] < first[3]  # it learns: mean loss of the second 10^4 steps is lower
