"""scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes), as features.

Needs scikit-learn (``pip install tracetorch[examples]``); no download: the data ships
inside scikit-learn.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["load_digits"]


def load_digits(
    test_fraction: float = 0.25, seed: int = 0, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The digits as intensities in [0, 1], with a stratified train/test split.

    Args:
        test_fraction: share of each class held out for testing.
        seed: seed of the split.

    Returns:
        ``(x_train [N, 64], y_train [N], x_test [M, 64], y_test [M])``; rate-code the
        features with :func:`tracetorch.encode.rate` to get spikes ``[T, B, 64]``.
    """
    try:
        from sklearn.datasets import load_digits as _sk_digits
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the digits task needs scikit-learn: pip install 'tracetorch[examples]'"
        ) from e
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    data = _sk_digits()
    x = data.data.astype(np.float64) / 16.0
    y = data.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        test[idx[: int(round(len(idx) * test_fraction))]] = True
    xt = torch.as_tensor(x, dtype=dtype)
    yt = torch.as_tensor(y)
    return xt[~test], yt[~test], xt[test], yt[test]
