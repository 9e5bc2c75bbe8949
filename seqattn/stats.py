"""Small statistics shared by evaluation and plots (no seqattn imports: anything may use them)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def spearman(a: Sequence[float], b: Sequence[float], min_n: int = 3) -> float:
    """Spearman rank correlation over the entries finite in both; NaN when undefined (too few, or constant)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < min_n or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return float("nan")
    return float(spearmanr(a[ok], b[ok]).statistic)
