"""Small statistics shared by the economics metrics: Wilson intervals and a power-law fit.

Both work on a handful of aggregated numbers (one per campaign, one per week), never on events,
so numpy is the right tool here; the heavy counting happens in SQL before these are called.

- :func:`wilson_interval` — the 95 % Wilson score interval of a proportion ``successes / n``.
  Unlike the normal approximation it stays inside [0, 1] and is sensible at 0 % and 100 %:
  ``centre = (p + z²/2n) / (1 + z²/n)``, ``half = z·√(p(1−p)/n + z²/4n²) / (1 + z²/n)``.
  Example: 8 of 10 → p = 0.8 → (0.4902, 0.9433). ``n = 0`` gives (NaN, NaN): no interval.
- :data:`SMALL_SAMPLE` — comparisons on fewer than 30 users are flagged as small samples (SPEC §6).
- :func:`power_fit` — least squares of ``log y = log a + b·log x``, i.e. ``y = a·x^b``; ``r2`` is the
  coefficient of determination on the log-log scale.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from store.errors import UserInputError

Z95 = 1.959964
SMALL_SAMPLE = 30


def wilson_interval(successes, n, z: float = Z95):
    """The Wilson score interval ``(low, high)`` of ``successes / n``.

    Accepts scalars, numpy arrays or pandas Series (element-wise; a Series keeps its index).
    ``n = 0`` or a missing ``n`` gives NaN bounds.
    """
    index = successes.index if isinstance(successes, pd.Series) else (n.index if isinstance(n, pd.Series) else None)
    k = np.asarray(pd.to_numeric(pd.Series(np.atleast_1d(successes)), errors="coerce"), dtype=float)
    m = np.asarray(pd.to_numeric(pd.Series(np.atleast_1d(n)), errors="coerce"), dtype=float)
    k, m = np.broadcast_arrays(k, m)
    with np.errstate(divide="ignore", invalid="ignore"):
        valid = m > 0
        safe_n = np.where(valid, m, 1.0)
        p = np.where(valid, k / safe_n, np.nan)
        z2 = z * z
        denom = 1.0 + z2 / safe_n
        centre = (p + z2 / (2 * safe_n)) / denom
        half = z * np.sqrt(np.clip(p * (1 - p) / safe_n + z2 / (4 * safe_n * safe_n), 0, None)) / denom
        # exact bounds at 0 % and 100 % (the closed form gives them up to rounding)
        low = np.where(valid, np.where(k <= 0, 0.0, np.clip(centre - half, 0.0, 1.0)), np.nan)
        high = np.where(valid, np.where(k >= m, 1.0, np.clip(centre + half, 0.0, 1.0)), np.nan)
    if np.ndim(successes) == 0 and np.ndim(n) == 0:
        return float(low[0]), float(high[0])
    if index is not None:
        return pd.Series(low, index=index), pd.Series(high, index=index)
    return low, high


def power_fit(x, y) -> tuple[float, float, float]:
    """Fit ``y = a·x^b`` by least squares on log-log; return ``(a, b, r2)``.

    Needs at least two points, all positive, and some variation in ``x``.
    """
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.size < 2:
        raise UserInputError("A power-law fit needs at least two (x, y) points.")
    if np.any(~np.isfinite(xs)) or np.any(~np.isfinite(ys)) or np.any(xs <= 0) or np.any(ys <= 0):
        raise UserInputError("A power-law fit needs positive, finite x and y values.")
    lx, ly = np.log(xs), np.log(ys)
    if np.ptp(lx) == 0:
        raise UserInputError("A power-law fit needs x values that vary.")
    b, log_a = np.polyfit(lx, ly, 1)
    fitted = log_a + b * lx
    ss_res = float(np.sum((ly - fitted) ** 2))
    ss_tot = float(np.sum((ly - ly.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return float(np.exp(log_a)), float(b), r2
