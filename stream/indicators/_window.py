"""Rolling-window reductions shared by the batch indicators.

The windows are taken with `sliding_window_view` and reduced chunk by chunk. A
cumulative-sum difference (`S[i] - S[i-n]`) would be O(N) regardless of the window,
but on a million bars the running total grows to ~1e8 and the subtraction loses
digits that the bar-by-bar state (which sums only the window) keeps; the incremental
state must agree with the batch to 1e-9, so both sum the window itself. Chunking
bounds the temporaries to `_CHUNK * n` floats instead of `N * n`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# Rows of windows reduced per step: large enough to amortise numpy call overhead,
# small enough that a 200-bar window stays within a few tens of megabytes.
_CHUNK = 1 << 15


def as_float_array(values: npt.ArrayLike, name: str) -> FloatArray:
    """Return `values` as a one-dimensional float64 array, refusing other shapes."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def check_period(n: int, name: str = "n") -> None:
    """Refuse window lengths that have no meaning (TA-Lib's own lower bound is 1 or 2)."""
    if n < 1:
        raise ValueError(f"{name} must be >= 1, got {n}")


def _reduce(x: FloatArray, n: int, reducer: Callable[[FloatArray], FloatArray]) -> FloatArray:
    """Apply `reducer` to every full window of `x`; NaN where the window is incomplete."""
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] < n:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(x, n)
    for start in range(0, windows.shape[0], _CHUNK):
        block = windows[start : start + _CHUNK]
        out[start + n - 1 : start + n - 1 + block.shape[0]] = reducer(block)
    return out


def rolling_sum(x: FloatArray, n: int) -> FloatArray:
    """Sum of the last `n` values, NaN for the first `n - 1` positions."""
    return _reduce(x, n, lambda w: np.sum(w, axis=1))


def rolling_max(x: FloatArray, n: int) -> FloatArray:
    """Maximum of the last `n` values, NaN for the first `n - 1` positions."""
    return _reduce(x, n, lambda w: np.max(w, axis=1))


def rolling_min(x: FloatArray, n: int) -> FloatArray:
    """Minimum of the last `n` values, NaN for the first `n - 1` positions."""
    return _reduce(x, n, lambda w: np.min(w, axis=1))


def rolling_std(x: FloatArray, n: int, ddof: int) -> FloatArray:
    """Standard deviation of the last `n` values, two-pass (mean first, then deviations).

    TA-Lib computes sqrt(E[x^2] - E[x]^2), which cancels catastrophically for prices
    far from zero and can go slightly negative (it then clamps to 0); the two-pass form
    agrees with it to rounding and is exactly 0 for a constant window.
    """

    def reducer(w: FloatArray) -> FloatArray:
        mean = np.sum(w, axis=1) / n
        dev = w - mean[:, None]
        std: FloatArray = np.sqrt(np.sum(dev * dev, axis=1) / (n - ddof))
        return std

    return _reduce(x, n, reducer)
