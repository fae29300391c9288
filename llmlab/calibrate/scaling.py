"""Parametric calibrators that rescale logits: temperature, vector and matrix scaling (Guo et
al. 2017), and Platt scaling (Platt 1999) for two classes.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 3, 500)
>>> logits = 4 * (rng.normal(size=(500, 3)) + 1.5 * np.eye(3)[y])   # over-confident
>>> cal = TemperatureScaling().fit(logits, y)
>>> cal.temperature > 1
True
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from llmlab.calibrate.base import Calibrator, _like_input
from llmlab.errors import InputError
from llmlab.metrics import Kind, Scores, prepare

# Inverse temperatures searched (T from 1e-4 to 1e4); hitting one means the data is separable
# (T -> 0) or carries no signal (T -> inf).
_BETA_BOUNDS = (1e-4, 1e4)
# Newton is started from the optimum on a random subsample of this many rows, so that on large
# inputs only two or three passes over all the logits are needed.
_WARM_START_ROWS = 20_000
# Above this many logits, the per-element work runs in float32 (sums in float64): the
# temperature stays accurate to ~1e-6 relative at half the memory traffic.
_FLOAT32_ABOVE = 1 << 22


class _LogitScaler(Calibrator):
    """Shared by the scalers: ``transform`` = softmax of the rescaled logits."""

    def _scaled(self, z: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _transform(self, s: Scores) -> np.ndarray:
        z = self._scaled(s.logits)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def transform_logits(self, scores: Any, *, kind: Kind = "auto") -> Any:
        """Calibrated logits ``[N, K]`` (softmax gives ``transform``'s probabilities)."""
        self._check_fitted()
        s = prepare(scores, kind=kind)
        if s.n_classes != self.n_classes:
            raise InputError(f"{type(self).__name__} was fitted on {self.n_classes} classes "
                             f"but these scores have {s.n_classes}.")
        return _like_input(scores, self._scaled(s.logits))


class TemperatureScaling(_LogitScaler):
    """Divide all logits by one temperature ``T`` fitted to minimise the NLL.

    Dividing by ``T > 0`` never changes which class is largest, so accuracy is untouched;
    ``T > 1`` softens an over-confident model. Probabilities are turned into logits as
    ``log p`` first.

    ``solver="newton"`` (default) minimises the NLL over the inverse temperature
    ``beta = 1/T``, where it is convex (its second derivative is the mean variance of the
    logits under the softmax): safeguarded Newton steps, started from the optimum on a
    20,000-row subsample, converge in two or three passes over the data. ``solver="lbfgs"``
    runs ``torch.optim.LBFGS`` (strong Wolfe line search) on ``log T``, as Guo et al. did;
    both reach the same optimum.

    >>> cal = TemperatureScaling().fit(val_logits, val_labels)         # doctest: +SKIP
    >>> llmlab.evaluate(cal.transform(test_logits), test_labels)       # doctest: +SKIP
    """

    def __init__(self, solver: Literal["newton", "lbfgs"] = "newton", max_iter: int = 100):
        super().__init__()
        if solver not in ("newton", "lbfgs"):
            raise InputError(f"solver={solver!r} is not 'newton' or 'lbfgs'.")
        if not isinstance(max_iter, int) or max_iter < 1:
            raise InputError(f"max_iter must be an int >= 1, got {max_iter!r}.")
        self.solver, self.max_iter = solver, max_iter
        self.temperature: float | None = None

    def settings(self) -> dict[str, Any]:
        return {"solver": self.solver, "max_iter": self.max_iter}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"temperature": np.array([self.temperature], dtype=np.float64)}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.temperature = float(arrays["temperature"][0])
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature {self.temperature} is not a positive number")

    def _fit(self, s: Scores) -> None:
        if self.solver == "newton":
            beta = _newton_beta(s.logits, s.labels, self.max_iter)
        else:
            beta = _lbfgs_beta(s.logits, s.labels, self.max_iter)
        lo, hi = _BETA_BOUNDS
        if beta <= lo * 1.0001 or beta >= hi * 0.9999:
            warnings.warn(
                f"the fitted temperature {1 / beta:.3g} sits at the search bound: the "
                "calibration set is either separated perfectly (every example right with a "
                "margin, T -> 0) or carries no signal (T -> inf). Use a larger held-out set "
                "the model was not trained on.",
                stacklevel=3,
            )
        self.temperature = 1.0 / beta

    def _scaled(self, z: np.ndarray) -> np.ndarray:
        return z / self.temperature


def _newton_beta(z: np.ndarray, y: np.ndarray, max_iter: int) -> float:
    """The inverse temperature minimising ``mean(logsumexp(beta z) - beta z_y)``."""
    if (z.argmax(axis=1) == y).all():
        # every example right: the NLL falls all the way to beta -> inf (no finite optimum)
        return _BETA_BOUNDS[1]
    beta = 1.0
    if len(z) > 2 * _WARM_START_ROWS:
        rows = np.random.default_rng(0).choice(len(z), _WARM_START_ROWS, replace=False)
        beta = _newton_on(z[rows], y[rows], beta, max_iter, torch.float32)
    dtype = torch.float32 if z.size > _FLOAT32_ABOVE else torch.float64
    return _newton_on(z, y, beta, max_iter, dtype)


def _newton_on(z: np.ndarray, y: np.ndarray, beta: float, max_iter: int,
               dtype: torch.dtype) -> float:
    zc = torch.from_numpy(z).to(dtype, copy=True)
    zc.sub_(zc.amax(dim=1, keepdim=True))  # <= 0, so exp never overflows
    zc_y = zc[torch.arange(len(y)), torch.from_numpy(y)].double()
    zc2 = zc * zc
    e = torch.empty_like(zc)  # reused: fresh 10-100 MB buffers cost page faults every pass
    lo, hi = _BETA_BOUNDS
    for _ in range(max_iter):
        torch.mul(zc, beta, out=e).exp_()
        # row sums of e, e*z and e*z^2; a batched matrix product needs no temporaries
        s0 = e.sum(dim=1).double()
        s1 = torch.bmm(e.unsqueeze(1), zc.unsqueeze(2)).view(-1).double()
        s2 = torch.bmm(e.unsqueeze(1), zc2.unsqueeze(2)).view(-1).double()
        mean_z = s1 / s0
        grad = float((mean_z - zc_y).mean())  # d NLL / d beta
        hess = float((s2 / s0 - mean_z * mean_z).mean())  # mean variance of z: >= 0
        if grad > 0:
            hi = min(hi, beta)
        else:
            lo = max(lo, beta)
        if hess <= 0:  # every row's logits are equal: the NLL does not depend on beta
            return beta
        step = grad / hess
        # Newton converges quadratically: after a step this small the error left is ~step^2
        if abs(step) <= 1e-4 * beta:
            return min(max(beta - step, _BETA_BOUNDS[0]), _BETA_BOUNDS[1])
        new = beta - step
        beta = new if lo <= new <= hi else math.sqrt(lo * hi)  # bisect (in log) when outside
    return beta


def _lbfgs_beta(z: np.ndarray, y: np.ndarray, max_iter: int) -> float:
    zt = torch.from_numpy(z)
    yt = torch.from_numpy(y)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    lo, hi = (-math.log(b) for b in reversed(_BETA_BOUNDS))
    opt = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-10, tolerance_change=1e-14)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(zt / log_t.clamp(lo, hi).exp(), yt)
        loss.backward()
        return loss

    opt.step(closure)
    return float(torch.exp(-log_t.detach().clamp(lo, hi)))


def _minimise(params: list[torch.Tensor], loss_fn, max_iter: int) -> None:
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    opt.step(closure)


class _AffineScaler(_LogitScaler):
    """Shared by vector and matrix scaling: a weight and a bias fitted with an L2 penalty."""

    depends_on_kind = True

    def __init__(self, l2: float = 0.0, max_iter: int = 500):
        super().__init__()
        _check_nonneg("l2", l2)
        self.l2, self.max_iter = float(l2), max_iter
        self.weight: np.ndarray | None = None
        self.bias: np.ndarray | None = None

    def settings(self) -> dict[str, Any]:
        return {"l2": self.l2, "max_iter": self.max_iter}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"weight": self.weight, "bias": self.bias}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.weight, self.bias = arrays["weight"], arrays["bias"]


class VectorScaling(_AffineScaler):
    """Per-class scale and shift of the logits, ``z * w + b``, fitted to minimise the NLL.

    More flexible than temperature scaling (it can fix a bias towards one class), so it can
    change the predicted class and needs more calibration data. ``l2`` penalises
    ``|w - 1|^2 + |b|^2`` (0 = plain maximum likelihood).
    """

    def _fit(self, s: Scores) -> None:
        z, y = torch.from_numpy(s.logits), torch.from_numpy(s.labels)
        k = s.n_classes
        w = torch.ones(k, dtype=torch.float64, requires_grad=True)
        b = torch.zeros(k, dtype=torch.float64, requires_grad=True)

        def loss() -> torch.Tensor:
            value = F.cross_entropy(z * w + b, y)
            if self.l2:
                value = value + self.l2 * (((w - 1) ** 2).sum() + (b ** 2).sum())
            return value

        _minimise([w, b], loss, self.max_iter)
        self.weight, self.bias = w.detach().numpy().copy(), b.detach().numpy().copy()

    def _scaled(self, z: np.ndarray) -> np.ndarray:
        return z * self.weight + self.bias


class MatrixScaling(_AffineScaler):
    """A full affine map of the logits, ``z @ W.T + b`` (``K*K + K`` parameters).

    It overfits easily with many classes; ``l2`` penalises the off-diagonal weights and the
    bias (Kull et al. 2019's ODIR regulariser), 0 = plain maximum likelihood.
    """

    def _fit(self, s: Scores) -> None:
        z, y = torch.from_numpy(s.logits), torch.from_numpy(s.labels)
        k = s.n_classes
        w = torch.eye(k, dtype=torch.float64).requires_grad_(True)
        b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
        off = 1.0 - torch.eye(k, dtype=torch.float64)

        def loss() -> torch.Tensor:
            value = F.cross_entropy(z @ w.T + b, y)
            if self.l2:
                value = value + self.l2 * (((w * off) ** 2).sum() + (b ** 2).sum())
            return value

        _minimise([w, b], loss, self.max_iter)
        self.weight, self.bias = w.detach().numpy().copy(), b.detach().numpy().copy()

    def _scaled(self, z: np.ndarray) -> np.ndarray:
        return z @ self.weight.T + self.bias


class PlattScaling(Calibrator):
    """Two-class logistic calibration ``p_1 = sigmoid(a * s + b)`` of the log-odds ``s``.

    ``s`` is ``z_1 - z_0`` for logits and ``log(p_1 / p_0)`` for probabilities. With
    ``smooth_targets`` (default) the 0/1 targets become ``1 / (N_0 + 2)`` and
    ``(N_1 + 1) / (N_1 + 2)``, Platt's (1999) guard against over-fitting small sets.
    Fitted by Newton's method with step halving.
    """

    binary_only = True

    def __init__(self, smooth_targets: bool = True, max_iter: int = 100):
        super().__init__()
        self.smooth_targets, self.max_iter = bool(smooth_targets), max_iter
        self.slope: float | None = None
        self.intercept: float | None = None

    def settings(self) -> dict[str, Any]:
        return {"smooth_targets": self.smooth_targets, "max_iter": self.max_iter}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"slope_intercept": np.array([self.slope, self.intercept], dtype=np.float64)}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.slope, self.intercept = (float(v) for v in arrays["slope_intercept"])

    @staticmethod
    def _log_odds(s: Scores) -> np.ndarray:
        return s.log_probs[:, 1] - s.log_probs[:, 0]

    def _fit(self, s: Scores) -> None:
        x = self._log_odds(s)
        y = s.labels.astype(np.float64)
        if self.smooth_targets:
            n1 = y.sum()
            n0 = len(y) - n1
            t = np.where(y == 1, (n1 + 1) / (n1 + 2), 1 / (n0 + 2))
        else:
            t = y
        self.slope, self.intercept = _logistic_newton(x, t, self.max_iter)

    def _transform(self, s: Scores) -> np.ndarray:
        p1 = _sigmoid(self.slope * self._log_odds(s) + self.intercept)
        return np.stack([1.0 - p1, p1], axis=1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


def _logistic_loss(x: np.ndarray, t: np.ndarray, a: float, b: float) -> float:
    u = a * x + b
    # -[t log sigmoid(u) + (1 - t) log(1 - sigmoid(u))]
    return float((t * np.logaddexp(0.0, -u) + (1 - t) * np.logaddexp(0.0, u)).mean())


def _logistic_newton(x: np.ndarray, t: np.ndarray, max_iter: int) -> tuple[float, float]:
    a, b = 1.0, 0.0
    loss = _logistic_loss(x, t, a, b)
    for _ in range(max_iter):
        p = _sigmoid(a * x + b)
        r = p - t
        grad = np.array([(r * x).mean(), r.mean()])
        w = p * (1 - p)
        hess = np.array([[(w * x * x).mean(), (w * x).mean()], [(w * x).mean(), w.mean()]])
        step = np.linalg.solve(hess + 1e-12 * np.eye(2), grad)
        shrink = 1.0
        while shrink > 1e-10:
            na, nb = a - shrink * step[0], b - shrink * step[1]
            new_loss = _logistic_loss(x, t, na, nb)
            if new_loss <= loss + 1e-15:
                break
            shrink /= 2
        else:
            break
        a, b, converged = na, nb, abs(loss - new_loss) < 1e-14
        loss = new_loss
        if converged or np.abs(shrink * step).max() < 1e-12:
            break
    return float(a), float(b)


def _check_nonneg(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
        raise InputError(f"{name} must be a number >= 0, got {value!r}.")
