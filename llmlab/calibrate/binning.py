"""Non-parametric calibrators on probabilities: isotonic regression and histogram binning
(Zadrozny and Elkan 2001, 2002), one-vs-rest for more than two classes.

Two classes are calibrated through the probability of class 1 (class 0 gets the rest); with
K > 2 each class's probability is mapped on its own and the rows are renormalised.

>>> import numpy as np
>>> cal = IsotonicCalibration().fit(np.array([0.1, 0.4, 0.35, 0.8]), [0, 1, 0, 1])
>>> cal.transform(np.array([0.1, 0.9])).round(2).tolist()
[0.0, 1.0]
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from llmlab.calibrate.base import Calibrator
from llmlab.errors import InputError
from llmlab.metrics import DEFAULT_BINS, Scores, bin_values


def _columns(s: Scores) -> list[int]:
    """The probability columns a one-vs-rest calibrator maps: class 1 only for two classes."""
    return [1] if s.n_classes == 2 else list(range(s.n_classes))


def _assemble(s: Scores, mapped: list[np.ndarray]) -> np.ndarray:
    if s.n_classes == 2:
        p1 = np.clip(mapped[0], 0.0, 1.0)
        return np.stack([1.0 - p1, p1], axis=1)
    probs = np.clip(np.stack(mapped, axis=1), 0.0, None)
    total = probs.sum(axis=1, keepdims=True)
    # a row every class map sent to 0 keeps its original probabilities
    return np.where(total > 0, probs / np.where(total > 0, total, 1.0), s.probs)


def pool_adjacent_violators(x: np.ndarray, y: np.ndarray,
                            weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares non-decreasing fit of ``y`` on ``x``: knots ``(xs, ys)`` to interpolate.

    Equal ``x`` values are pooled first (their mean). Then a left-to-right pass keeps a stack
    of blocks and merges the newest block into its predecessor while the predecessor's mean is
    not below it (Ayer et al. 1955). Each block contributes a knot at its smallest and largest
    ``x``, so ``np.interp(x_new, xs, ys)`` is the fitted step function joined linearly between
    blocks, and constant outside the data.

    >>> pool_adjacent_violators(np.array([1., 2, 3, 4]), np.array([1., 3, 2, 4]))
    (array([1., 2., 3., 4.]), array([1. , 2.5, 2.5, 4. ]))
    """
    w = np.ones_like(y, dtype=np.float64) if weight is None else np.asarray(weight, np.float64)
    order = np.argsort(x, kind="stable")
    x, y, w = np.asarray(x, np.float64)[order], np.asarray(y, np.float64)[order], w[order]
    ux, start = np.unique(x, return_index=True)
    wsum = np.add.reduceat(w, start)
    means = np.add.reduceat(w * y, start) / wsum
    # stack of blocks as parallel lists: mean, weight, first x, last x
    b_mean: list[float] = []
    b_w: list[float] = []
    b_lo: list[float] = []
    b_hi: list[float] = []
    for value, weight_i, xi in zip(means.tolist(), wsum.tolist(), ux.tolist()):
        lo = xi
        while b_mean and b_mean[-1] >= value:
            prev_w = b_w.pop()
            value = (b_mean.pop() * prev_w + value * weight_i) / (prev_w + weight_i)
            weight_i += prev_w
            lo = b_lo.pop()
            b_hi.pop()
        b_mean.append(value)
        b_w.append(weight_i)
        b_lo.append(lo)
        b_hi.append(xi)
    xs: list[float] = []
    ys: list[float] = []
    for m, lo, hi in zip(b_mean, b_lo, b_hi):
        xs.append(lo)
        ys.append(m)
        if hi > lo:
            xs.append(hi)
            ys.append(m)
    return np.array(xs), np.array(ys)


class IsotonicCalibration(Calibrator):
    """Isotonic regression of the outcome on each class's probability (pool-adjacent-violators,
    our own NumPy implementation).

    Monotone and free-form, it needs a few hundred calibration examples or more; ties in its
    output can change the predicted class when K > 2.
    """

    def __init__(self) -> None:
        super().__init__()
        self.knots: list[tuple[np.ndarray, np.ndarray]] = []

    def _fit(self, s: Scores) -> None:
        self.knots = [pool_adjacent_violators(s.probs[:, k], (s.labels == k).astype(np.float64))
                      for k in _columns(s)]

    def _transform(self, s: Scores) -> np.ndarray:
        return _assemble(s, [np.interp(s.probs[:, k], xs, ys)
                             for k, (xs, ys) in zip(_columns(s), self.knots)])

    def arrays(self) -> dict[str, np.ndarray]:
        sizes = [len(xs) for xs, _ in self.knots]
        return {"x": np.concatenate([xs for xs, _ in self.knots]),
                "y": np.concatenate([ys for _, ys in self.knots]),
                "offsets": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        x, y, offsets = arrays["x"], arrays["y"], arrays["offsets"]
        self.knots = [(x[a:b], y[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]


class HistogramBinning(Calibrator):
    """Replace each class's probability by the outcome frequency of its bin on the
    calibration set.

    ``scheme="equal_mass"`` (default) puts about the same number of calibration examples in
    each bin; ``"equal_width"`` splits [0, 1] evenly (an empty bin maps to its midpoint).
    Bins are right-closed, as in :func:`llmlab.metrics.ece`. The output is piecewise
    constant, so it can tie classes and change the predicted class.
    """

    def __init__(self, n_bins: int = DEFAULT_BINS,
                 scheme: Literal["equal_mass", "equal_width"] = "equal_mass"):
        super().__init__()
        if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 1:
            raise InputError(f"n_bins must be an int >= 1, got {n_bins!r}.")
        if scheme not in ("equal_mass", "equal_width"):
            raise InputError(f"scheme={scheme!r} is not 'equal_mass' or 'equal_width'.")
        self.n_bins, self.scheme = n_bins, scheme
        self.edges: np.ndarray | None = None  # [C, B-1] inner bin edges per mapped class
        self.values: np.ndarray | None = None  # [C, B] calibrated probability per bin

    def settings(self) -> dict[str, Any]:
        return {"n_bins": self.n_bins, "scheme": self.scheme}

    def _fit(self, s: Scores) -> None:
        edges, values = [], []
        for k in _columns(s):
            b = bin_values(s.probs[:, k], s.labels == k, self.n_bins, self.scheme)
            midpoint = (b.lower + b.upper) / 2
            values.append(np.where(b.count > 0, b.mean_outcome, midpoint))
            edges.append(b.upper[:-1])
        self.edges, self.values = np.array(edges), np.array(values)

    def _transform(self, s: Scores) -> np.ndarray:
        mapped = []
        for row, k in enumerate(_columns(s)):
            index = np.searchsorted(self.edges[row], s.probs[:, k], side="left")
            mapped.append(self.values[row][index])
        return _assemble(s, mapped)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"edges": self.edges, "values": self.values}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.edges, self.values = arrays["edges"], arrays["values"]
