"""Classification and calibration metrics: one call gives the whole report as a polars frame.

>>> import numpy as np
>>> report = evaluate(np.array([[2.0, 0.1], [0.3, 1.5], [1.0, 0.2]]), [0, 1, 1])
>>> report.filter(pl.col("metric") == "accuracy")["value"].item()
0.6666666666666666

``scores`` are logits or probabilities, as NumPy arrays, torch tensors or nested lists:

- ``[N, K]``: one row per example. ``kind="auto"`` (the default) takes them as probabilities
  when every value is in [0, 1] and every row sums to 1 within ``PROB_ATOL``; otherwise as
  logits (unnormalised log-probabilities, turned into probabilities with a softmax). Rows that
  look like probabilities but do not sum to 1 are an error: normalise them, or say
  ``kind="logits"``. Pass ``kind="probs"`` or ``kind="logits"`` to skip the guess.
- ``[N]`` (or ``[N, 1]``): a binary task, one score per example for class 1: the probability
  of class 1 (auto: every value in [0, 1]) or its log-odds (logit). Log-odds that all happen to
  lie in [0, 1] need ``kind="logits"``.

``labels`` are integer class ids ``0 .. K-1``.

Which variant each metric is (they differ on binary tasks, so the report names them):

=============  ==================  ==========================================================
metric         variant             definition
=============  ==================  ==========================================================
accuracy       top1                mean of ``argmax(p) == y``
precision,     macro / micro /     per-class values from the confusion matrix; macro = plain
recall, f1     weighted / binary   mean over all K classes, weighted = mean weighted by class
                                   support, micro = pooled counts (= accuracy here), binary
                                   = class 1 only (K = 2). An undefined ratio (no prediction
                                   or no example of a class) counts as 0, as in scikit-learn.
roc_auc        binary / ovr_macro  area under the ROC curve of p[:, 1] (K = 2), else the mean
                                   one-vs-rest AUC over the classes present in ``labels``;
                                   ties count 1/2 (Mann-Whitney). NaN with a single class.
nll            mean                mean of ``-log p[y]`` (natural log; exact log-softmax for
                                   logits, probabilities clipped at 1e-15)
brier          multiclass          mean of ``sum_k (p_k - [y = k])^2`` (Brier 1950), in
                                   [0, 2]
brier          positive_class      mean of ``(p_1 - y)^2`` (K = 2 only; scikit-learn's
                                   ``brier_score_loss``), half the multiclass value
ece            top_label           sum over bins of ``n_b / N * |acc_b - conf_b|`` with the
                                   confidence ``max_k p_k`` and ``acc`` = argmax correct
                                   (Guo et al. 2017); equal_width and equal_mass bins
mce            top_label           max over non-empty bins of ``|acc_b - conf_b|``
ece            classwise           mean over classes k of the ECE of ``p_k`` against
                                   ``[y = k]`` (Kull et al. 2019)
ece            positive_class      ECE of ``p_1`` against ``[y = 1]`` (K = 2 only)
smece          top_label /         smooth ECE (Blasiok & Nakkiran 2024): the residuals
               classwise /         ``y - f`` kernel-smoothed (reflected Gaussian on [0, 1]),
               positive_class      ``integral |smoothed residual x density|``, at the
                                   bandwidth sigma* where smECE = sigma; of the confidence,
                                   mean over classes, or of ``p_1`` (K = 2 only); no bins
l2_ce          top_label_debiased  Kumar et al. 2019: sqrt of ``sum_b n_b/N * ((acc_b -
                                   conf_b)^2 - acc_b (1 - acc_b) / (n_b - 1))`` (clipped at
                                   0), equal-mass bins; the subtracted term removes the
                                   upward bias of the plug-in estimate (the plug-in root-mean-
                                   square gap on equal-width bins, torchmetrics' ``l2`` norm:
                                   ``l2_calibration_error(scheme="equal_width", debias=False)``)
confidence     top_label_mean      mean of ``max_k p_k`` (compare with accuracy)
=============  ==================  ==========================================================

The rows and their wide column names come from one registry, :data:`METRICS` (a
:class:`MetricSpec` per row; :func:`metric_spec` looks one up); :func:`report_value` reads a
value back from a report. :func:`smooth_ece_interval` adds a bootstrap interval to smECE and
:func:`smooth_reliability_curve` gives the smoothed reliability diagram as a frame.

Bins: ``equal_width`` splits [0, 1] into ``n_bins`` intervals ``(lo, hi]`` (0 falls into the
first); ``equal_mass`` sorts the examples by the binned value and cuts them into ``n_bins``
groups whose sizes differ by at most one (fewer bins when there are fewer examples). Every
binned row of a report carries its ``bins`` and ``scheme``.

The module needs NumPy and polars only (torch only when given tensors); scikit-learn,
torchmetrics and relplot are used by the tests as references, never here.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import polars as pl

from llmlab.errors import InputError

__all__ = [
    "DEFAULT_BINS",
    "METRICS",
    "PROB_ATOL",
    "SMOOTH_VARIANTS",
    "MetricSpec",
    "Scores",
    "accuracy",
    "brier_score",
    "classwise_ece",
    "compare",
    "confusion_frame",
    "confusion_matrix",
    "ece",
    "evaluate",
    "l2_calibration_error",
    "log_softmax",
    "mce",
    "metric_spec",
    "nll",
    "per_class",
    "perplexity",
    "precision_recall_f1",
    "prepare",
    "probabilities",
    "reliability_table",
    "report_value",
    "roc_auc",
    "smooth_ece",
    "smooth_ece_interval",
    "smooth_reliability_curve",
]

Kind = Literal["auto", "probs", "logits"]
Scheme = Literal["equal_width", "equal_mass"]

DEFAULT_BINS = 15  # Guo et al. 2017
PROB_ATOL = 1e-3  # how far a row of probabilities may sum from 1 (rounded CSV values pass)
LOG_EPS = 1e-15  # probabilities are clipped here before a log
KINDS = ("auto", "probs", "logits")
SCHEMES = ("equal_width", "equal_mass")


# ---------------------------------------------------------------------------------------------
# inputs


class Scores:
    """Checked scores and labels, with probabilities and log-probabilities made on first use.

    ``values`` are the numbers as given (float64, ``[N, K]`` or ``[N]`` for binary scores),
    ``kind`` what they were taken as ("probs" or "logits"); ``binary_1d`` remembers one score
    per example (so calibrators hand back that shape).
    """

    def __init__(self, values: np.ndarray, kind: str, labels: np.ndarray | None,
                 binary_1d: bool):
        self.values, self.kind, self.labels, self.binary_1d = values, kind, labels, binary_1d

    @property
    def n_classes(self) -> int:
        return 2 if self.binary_1d else self.values.shape[1]

    def __len__(self) -> int:
        return len(self.values)

    @cached_property
    def logits(self) -> np.ndarray:
        """``[N, K]`` logits: the values themselves for logits (``[0, s]`` for binary log-odds
        ``s``), ``log p`` for probabilities (clipped at 1e-15)."""
        v = self.values
        if self.kind == "logits":
            return np.stack([np.zeros_like(v), v], axis=1) if self.binary_1d else v
        return np.log(np.clip(self.probs, LOG_EPS, 1.0))

    @cached_property
    def log_probs(self) -> np.ndarray:
        """``[N, K]`` log-probabilities (an exact log-softmax for logits)."""
        if self.kind == "logits":
            return log_softmax(self.logits)
        return self.logits

    @cached_property
    def probs(self) -> np.ndarray:
        """``[N, K]`` probabilities; rows sum to 1."""
        v = self.values
        if self.kind == "logits":
            return np.exp(self.log_probs)
        if self.binary_1d:
            return np.stack([1.0 - v, v], axis=1)
        return v / v.sum(axis=1, keepdims=True)

    def with_labels(self, labels: Any) -> Scores:
        return Scores(self.values, self.kind, check_labels(labels, len(self), self.n_classes),
                      self.binary_1d)


def to_numpy(x: Any, name: str) -> np.ndarray:
    """``x`` (NumPy, torch, list) as a NumPy array; torch is not imported for other inputs."""
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu()
        if x.is_floating_point():
            x = x.double()
        return x.numpy()
    if isinstance(x, (str, bytes, Mapping)):
        raise InputError(f"{name} must be an array of numbers, got {type(x).__name__}. "
                         "Pass a NumPy array, a torch tensor or a list.")
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as err:
        raise InputError(f"{name} could not be read as an array ({err}); pass a rectangular "
                         "NumPy array, torch tensor or list of lists.") from None


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InputError(f"kind={kind!r} is not one of {KINDS}. Use 'probs' for probabilities, "
                         "'logits' for unnormalised scores, or 'auto' to detect.")


def _check_finite(values: np.ndarray, name: str) -> None:
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(values.sum()):  # one pass; NaN and inf propagate (overflow: check below)
            return
    bad = ~np.isfinite(values)
    if bad.any():
        rows = np.nonzero(bad.reshape(len(values), -1).any(axis=1))[0]
        what = "NaN" if np.isnan(values).any() else "inf"
        raise InputError(
            f"{name} contains {what} in {len(rows)} row(s) (first: row {rows[0]}). Find where "
            "the model produced it (a diverged run, a log of 0) and drop or fix those rows "
            "before evaluating."
        )


def _row_sums_ok(p: np.ndarray) -> np.ndarray:
    return np.abs(p.sum(axis=1) - 1.0) <= PROB_ATOL


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of ``[N, K]`` scores, computed stably.

    >>> log_softmax(np.zeros((1, 2))).round(4).tolist()
    [[-0.6931, -0.6931]]
    """
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _in_unit(values: np.ndarray) -> bool:
    return bool(values.min() >= 0.0 and values.max() <= 1.0)


def _kind_2d(values: np.ndarray, kind: str, name: str) -> str:
    in_unit = _in_unit(values)
    if kind == "logits":
        return kind
    sums_ok = _row_sums_ok(values) if in_unit else None
    if kind == "auto":
        if in_unit and sums_ok.all():
            return "probs"
        if not in_unit:
            return "logits"
        row = int(np.nonzero(~sums_ok)[0][0])
        raise InputError(
            f"{name} look like probabilities (all in [0, 1]) but row {row} sums to "
            f"{values[row].sum():.6g}, not 1 (tolerance {PROB_ATOL}). Normalise them "
            "(p / p.sum(axis=1, keepdims=True)), or pass kind='logits' if they are logits."
        )
    if not in_unit:
        raise InputError(
            f"{name} were given as probabilities (kind='probs') but range over "
            f"[{values.min():.6g}, {values.max():.6g}], outside [0, 1]. Pass kind='logits' for "
            "logits, or apply a softmax."
        )
    if not sums_ok.all():
        row = int(np.nonzero(~sums_ok)[0][0])
        raise InputError(
            f"{name} are probabilities that do not sum to one: row {row} sums to "
            f"{values[row].sum():.6g} (tolerance {PROB_ATOL}). Normalise each row "
            "(p / p.sum(axis=1, keepdims=True)) or pass logits with kind='logits'."
        )
    return kind


def _kind_1d(values: np.ndarray, kind: str) -> str:
    in_unit = _in_unit(values)
    if kind == "auto":
        return "probs" if in_unit else "logits"
    if kind == "probs" and not in_unit:
        raise InputError(
            f"binary scores were given as probabilities of class 1 (kind='probs') but range "
            f"over [{values.min():.6g}, {values.max():.6g}], outside [0, 1]. Pass "
            "kind='logits' for log-odds."
        )
    return kind


def check_labels(labels: Any, n: int | None, n_classes: int | None, name: str = "labels",
                 ) -> np.ndarray:
    """``labels`` as an int64 array ``[N]``, checked against ``n`` rows and ``n_classes``."""
    y = to_numpy(labels, name)
    if y.ndim != 1:
        raise InputError(f"{name} must be one class id per example, shape [N]; got shape "
                         f"{y.shape}. Pass integer labels, not one-hot rows (use argmax).")
    if y.dtype == bool:
        y = y.astype(np.int64)
    elif y.dtype.kind == "f":
        _check_finite(y, name)
        if (y != np.round(y)).any():
            raise InputError(f"{name} must be integer class ids; got {y[y != np.round(y)][0]}. "
                             "Pass ids 0 .. K-1 (map names with a dict first).")
        y = y.astype(np.int64)
    elif y.dtype.kind not in "iu":
        raise InputError(f"{name} must be integer class ids, got dtype {y.dtype}. Map class "
                         "names to ids 0 .. K-1 first, e.g. [names.index(s) for s in labels].")
    y = np.ascontiguousarray(y, dtype=np.int64)
    if n is not None and len(y) != n:
        raise InputError(f"{len(y)} {name} for {n} rows of scores. Pass exactly one label per "
                         "example, in the same order.")
    if n_classes is not None and len(y) and (y.min() < 0 or y.max() >= n_classes):
        bad = int(y.min() if y.min() < 0 else y.max())
        raise InputError(
            f"{name} contain class {bad}, outside the {n_classes} classes of the scores "
            f"(0 .. {n_classes - 1}). Check the label mapping, or pass scores with one column "
            "per class."
        )
    return y


def prepare(scores: Any, labels: Any = None, *, kind: Kind = "auto",
            name: str = "scores") -> Scores:
    """Check and normalise ``scores`` (and ``labels``) into a :class:`Scores`.

    >>> prepare([0.2, 0.9], [0, 1]).probs
    array([[0.8, 0.2],
           [0.1, 0.9]])
    """
    _check_kind(kind)
    values = to_numpy(scores, name)
    if values.dtype == bool or values.dtype.kind not in "iuf":
        raise InputError(f"{name} must be numbers, got dtype {values.dtype}. Pass logits or "
                         "probabilities as a float array.")
    values = np.ascontiguousarray(values, dtype=np.float64)  # torch.from_numpy needs it
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim not in (1, 2):
        raise InputError(
            f"{name} must have shape [N, K] (one row per example) or [N] (binary), got "
            f"{values.shape}. For language-model logits [B, T, V] use perplexity(), or reshape "
            "to [B*T, V]."
        )
    if len(values) == 0:
        raise InputError(f"{name} are empty. Pass at least one example.")
    if values.ndim == 2 and values.shape[1] < 2:
        raise InputError(f"{name} have {values.shape[1]} columns; a classifier needs 2 or more.")
    _check_finite(values, name)
    binary_1d = values.ndim == 1
    kind = _kind_1d(values, kind) if binary_1d else _kind_2d(values, kind, name)
    y = None if labels is None else check_labels(labels, len(values), 2 if binary_1d
                                                 else values.shape[1])
    return Scores(values, kind, y, binary_1d)


def probabilities(scores: Any, *, kind: Kind = "auto") -> np.ndarray:
    """Class probabilities ``[N, K]`` (float64) for logits or probabilities in any layout above.

    >>> probabilities([[0.0, 0.0]], kind="logits").tolist()   # all in [0, 1]: say they are logits
    [[0.5, 0.5]]
    """
    return prepare(scores, kind=kind).probs


def _prepared(scores: Any, labels: Any, kind: Kind) -> Scores:
    if isinstance(scores, Scores):
        return scores if labels is None else scores.with_labels(labels)
    if labels is None:
        raise InputError("labels are missing. Pass one integer class id per example.")
    return prepare(scores, labels, kind=kind)


def _check_bins(n_bins: int, scheme: str) -> None:
    if not isinstance(n_bins, (int, np.integer)) or isinstance(n_bins, bool) or n_bins < 1:
        raise InputError(f"n_bins must be an int >= 1, got {n_bins!r}; 15 is the usual choice.")
    if scheme not in SCHEMES:
        raise InputError(f"scheme={scheme!r} is not one of {SCHEMES}.")


# ---------------------------------------------------------------------------------------------
# binning


@dataclass(frozen=True)
class Bins:
    """Per-bin statistics of a value in [0, 1] against 0/1 outcomes (empty bins kept)."""

    lower: np.ndarray
    upper: np.ndarray
    count: np.ndarray
    mean_value: np.ndarray  # mean binned value (confidence) per bin; NaN when empty
    mean_outcome: np.ndarray  # fraction of outcomes that are 1 (accuracy) per bin; NaN if empty
    scheme: str

    @property
    def n_bins(self) -> int:
        return len(self.count)

    def weighted_gap(self) -> float:
        """``sum_b n_b / N * |outcome_b - value_b|`` over non-empty bins."""
        full = self.count > 0
        gaps = np.abs(self.mean_outcome[full] - self.mean_value[full])
        return float((self.count[full] * gaps).sum() / self.count.sum())


def bin_values(values: np.ndarray, outcomes: np.ndarray, n_bins: int = DEFAULT_BINS,
               scheme: str = "equal_width") -> Bins:
    """Group ``values`` (in [0, 1]) into bins and average them and their ``outcomes`` per bin."""
    _check_bins(n_bins, scheme)
    values = np.asarray(values, dtype=np.float64)
    outcomes = np.asarray(outcomes, dtype=np.float64)
    if scheme == "equal_width":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        # right-closed bins (lo, hi]; 0 goes into the first bin
        index = np.clip(np.ceil(values * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
        lower, upper = edges[:-1], edges[1:]
    else:
        n_bins = min(n_bins, len(values))
        order = np.argsort(values, kind="stable")
        sizes = np.full(n_bins, len(values) // n_bins)
        sizes[: len(values) % n_bins] += 1
        index = np.empty(len(values), dtype=np.int64)
        index[order] = np.repeat(np.arange(n_bins), sizes)
        ends = np.cumsum(sizes)
        ordered = values[order]
        cuts = (ordered[ends[:-1] - 1] + ordered[ends[:-1]]) / 2  # midway between neighbours
        lower = np.concatenate([[0.0], cuts])
        upper = np.concatenate([cuts, [1.0]])
    count = np.bincount(index, minlength=n_bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_value = np.bincount(index, weights=values, minlength=n_bins) / count
        mean_outcome = np.bincount(index, weights=outcomes, minlength=n_bins) / count
    return Bins(lower, upper, count, mean_value, mean_outcome, scheme)


def _top_label(s: Scores) -> tuple[np.ndarray, np.ndarray]:
    confidence = s.probs.max(axis=1)
    correct = (s.probs.argmax(axis=1) == s.labels).astype(np.float64)
    return confidence, correct


def reliability_table(scores: Any, labels: Any = None, *, n_bins: int = DEFAULT_BINS,
                      scheme: Scheme = "equal_width", kind: Kind = "auto") -> pl.DataFrame:
    """Top-label reliability per bin: ``bin, lower, upper, count, confidence, accuracy, gap``.

    ``confidence`` and ``accuracy`` are null for empty bins; ``gap = accuracy - confidence``
    (negative = over-confident). This is the table behind :func:`ece` and the reliability
    diagram.

    >>> reliability_table([[0.9, 0.1], [0.2, 0.8]], [0, 0], n_bins=2)["count"].to_list()
    [0, 2]
    """
    s = _prepared(scores, labels, kind)
    b = bin_values(*_top_label(s), n_bins, scheme)
    accuracy = np.where(b.count > 0, b.mean_outcome, np.nan)
    confidence = np.where(b.count > 0, b.mean_value, np.nan)
    return pl.DataFrame({
        "bin": np.arange(b.n_bins), "lower": b.lower, "upper": b.upper, "count": b.count,
        "confidence": confidence, "accuracy": accuracy, "gap": accuracy - confidence,
    }).with_columns(pl.col("confidence", "accuracy", "gap").fill_nan(None))


# ---------------------------------------------------------------------------------------------
# single metrics


def accuracy(scores: Any, labels: Any, *, kind: Kind = "auto") -> float:
    """Fraction of examples whose highest-scoring class is the label."""
    s = _prepared(scores, labels, kind)
    return float((s.probs.argmax(axis=1) == s.labels).mean())


def _confusion(s: Scores) -> np.ndarray:
    k = s.n_classes
    pred = s.probs.argmax(axis=1)
    return np.bincount(s.labels * k + pred, minlength=k * k).reshape(k, k)


def confusion_matrix(scores: Any, labels: Any, *, kind: Kind = "auto") -> np.ndarray:
    """Counts ``[K, K]``: row = true class, column = predicted class (scikit-learn's layout).

    For hard predictions ``pred``, pass one-hot rows: ``np.eye(K)[pred]``.
    """
    return _confusion(_prepared(scores, labels, kind))


def confusion_frame(scores: Any, labels: Any, *, label_names: Sequence[str] | None = None,
                    kind: Kind = "auto") -> pl.DataFrame:
    """The confusion matrix as a frame: a ``true`` column, then one column per predicted class."""
    s = _prepared(scores, labels, kind)
    names = _names(label_names, s.n_classes)
    matrix = _confusion(s)
    return pl.DataFrame({"true": names, **{f"pred:{n}": matrix[:, i] for i, n in enumerate(names)}})


def _names(label_names: Sequence[str] | None, k: int) -> list[str]:
    if label_names is None:
        return [str(i) for i in range(k)]
    names = [str(n) for n in label_names]
    if len(names) != k:
        raise InputError(f"{len(names)} label_names for {k} classes. Pass one name per class "
                         "(column of the scores), in class-id order.")
    return names


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)


def _per_class_prf(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    tp = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    support = matrix.sum(axis=1).astype(np.float64)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * tp, predicted + support)  # = 2PR / (P + R), 0 where undefined
    return precision, recall, f1, support


def precision_recall_f1(scores: Any, labels: Any, *,
                        average: Literal["macro", "micro", "weighted", "binary", None] = "macro",
                        kind: Kind = "auto") -> tuple[Any, Any, Any]:
    """``(precision, recall, f1)``: floats for an ``average``, arrays ``[K]`` for None.

    ``binary`` is class 1 of a two-class task; see the module docstring for the others.
    """
    s = _prepared(scores, labels, kind)
    matrix = _confusion(s)
    p, r, f, support = _per_class_prf(matrix)
    if average is None:
        return p, r, f
    if average == "macro":
        return float(p.mean()), float(r.mean()), float(f.mean())
    if average == "weighted":
        w = support / support.sum()
        return float(p @ w), float(r @ w), float(f @ w)
    if average == "micro":
        tp, n = np.trace(matrix), matrix.sum()
        return float(tp / n), float(tp / n), float(tp / n)
    if average == "binary":
        if s.n_classes != 2:
            raise InputError(f"average='binary' needs 2 classes, the scores have "
                             f"{s.n_classes}. Use 'macro', 'micro' or 'weighted'.")
        return float(p[1]), float(r[1]), float(f[1])
    raise InputError(f"average={average!r} is not one of 'macro', 'micro', 'weighted', "
                     "'binary' or None.")


def _auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUC: P(score of a positive > score of a negative), ties counting 1/2."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average_rank = ends - (counts - 1) / 2.0  # 1-based mean rank of each tied group
    ranks = average_rank[inverse]
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_auc(scores: Any, labels: Any, *, kind: Kind = "auto") -> float:
    """ROC-AUC: of ``p[:, 1]`` for two classes, else the macro mean one-vs-rest AUC.

    One-vs-rest averages over the classes present in ``labels`` (a class with no example has
    no AUC). NaN when ``labels`` hold a single class.
    """
    s = _prepared(scores, labels, kind)
    if s.n_classes == 2:
        return _auc(s.probs[:, 1], s.labels == 1)
    present = np.unique(s.labels)
    if len(present) < 2:
        return math.nan
    return float(np.mean([_auc(s.probs[:, k], s.labels == k) for k in present]))


def nll(scores: Any, labels: Any, *, kind: Kind = "auto") -> float:
    """Mean negative log-likelihood of the labels (natural log; log loss, cross-entropy)."""
    s = _prepared(scores, labels, kind)
    return float(-s.log_probs[np.arange(len(s.labels)), s.labels].mean())


def brier_score(scores: Any, labels: Any, *,
                variant: Literal["multiclass", "positive_class"] = "multiclass",
                kind: Kind = "auto") -> float:
    """Brier score: ``multiclass`` sums the squared error over classes (0 .. 2);
    ``positive_class`` (two classes only) is ``mean((p_1 - y)^2)``, scikit-learn's binary score.
    """
    s = _prepared(scores, labels, kind)
    if variant == "positive_class":
        if s.n_classes != 2:
            raise InputError("variant='positive_class' needs 2 classes; use 'multiclass'.")
        return float(((s.probs[:, 1] - s.labels) ** 2).mean())
    if variant != "multiclass":
        raise InputError(f"variant={variant!r} is not 'multiclass' or 'positive_class'.")
    onehot = np.eye(s.n_classes)[s.labels]
    return float(((s.probs - onehot) ** 2).sum(axis=1).mean())


def ece(scores: Any, labels: Any, *, n_bins: int = DEFAULT_BINS,
        scheme: Scheme = "equal_width", kind: Kind = "auto") -> float:
    """Top-label expected calibration error (Guo et al. 2017), in [0, 1].

    >>> round(ece([[0.9, 0.1], [0.6, 0.4]], [0, 1], n_bins=10), 3)   # bins (.8,.9] and (.5,.6]
    0.35
    """
    s = _prepared(scores, labels, kind)
    return bin_values(*_top_label(s), n_bins, scheme).weighted_gap()


def mce(scores: Any, labels: Any, *, n_bins: int = DEFAULT_BINS,
        scheme: Scheme = "equal_width", kind: Kind = "auto") -> float:
    """Top-label maximum calibration error: the largest ``|accuracy - confidence|`` of a bin."""
    s = _prepared(scores, labels, kind)
    b = bin_values(*_top_label(s), n_bins, scheme)
    full = b.count > 0
    return float(np.abs(b.mean_outcome[full] - b.mean_value[full]).max())


def classwise_ece(scores: Any, labels: Any, *, n_bins: int = DEFAULT_BINS,
                  scheme: Scheme = "equal_width", kind: Kind = "auto") -> float:
    """Mean over classes k of the ECE of ``p_k`` against ``[y = k]`` (Kull et al. 2019)."""
    s = _prepared(scores, labels, kind)
    return float(np.mean(_classwise(s, n_bins, scheme)))


def _classwise(s: Scores, n_bins: int, scheme: str) -> list[float]:
    return [bin_values(s.probs[:, k], s.labels == k, n_bins, scheme).weighted_gap()
            for k in range(s.n_classes)]


def l2_calibration_error(scores: Any, labels: Any, *, n_bins: int = DEFAULT_BINS,
                         scheme: Scheme = "equal_mass", debias: bool = True,
                         kind: Kind = "auto") -> float:
    """Top-label L2 calibration error, debiased as in Kumar et al. 2019 ("Verified Uncertainty
    Calibration").

    The plug-in estimate ``sum_b n_b/N (acc_b - conf_b)^2`` overstates the error because
    ``acc_b`` is a noisy mean; its expected excess is ``var(acc_b) = a(1-a)/n_b``. Subtracting
    the unbiased estimate ``acc_b (1 - acc_b) / (n_b - 1)`` per bin (bins with one example get
    no correction) and taking the square root of the (clipped at 0) sum gives the debiased
    error. ``debias=False`` returns the plug-in root-mean-square gap.
    """
    s = _prepared(scores, labels, kind)
    b = bin_values(*_top_label(s), n_bins, scheme)
    full = b.count > 0
    n, acc, conf = b.count[full].astype(np.float64), b.mean_outcome[full], b.mean_value[full]
    terms = (acc - conf) ** 2
    if debias:
        terms = terms - np.where(n > 1, acc * (1 - acc) / np.maximum(n - 1, 1), 0.0)
    return float(math.sqrt(max(0.0, float((n * terms).sum() / n.sum()))))


def perplexity(logits: Any, targets: Any, *, ignore_index: int = -100) -> float:
    """``exp`` of the mean cross-entropy of next-token ``targets`` under LM ``logits``.

    ``logits [..., V]`` and ``targets [...]`` as a model's forward takes them (shifted targets,
    -100 = ignore). Torch tensors stay in torch (no copy of a large vocabulary to NumPy).

    >>> perplexity(np.zeros((1, 3, 10)), np.array([[1, 2, -100]]))   # uniform over 10
    10.000000000000002
    """
    if type(logits).__module__.startswith("torch"):
        import torch
        import torch.nn.functional as F

        t = torch.as_tensor(targets, device=logits.device).reshape(-1).long()
        flat = logits.reshape(-1, logits.shape[-1]).float()
        if flat.shape[0] != t.shape[0]:
            raise InputError(f"logits have {flat.shape[0]} positions but targets "
                             f"{t.shape[0]}; pass targets shaped like logits[..., 0].")
        if not bool((t != ignore_index).any()):
            raise InputError("every target is ignore_index; nothing to score.")
        return float(torch.exp(F.cross_entropy(flat, t, ignore_index=ignore_index)))
    z = to_numpy(logits, "logits").astype(np.float64)
    t = to_numpy(targets, "targets").reshape(-1).astype(np.int64)
    z = z.reshape(-1, z.shape[-1])
    if len(z) != len(t):
        raise InputError(f"logits have {len(z)} positions but targets {len(t)}; pass targets "
                         "shaped like logits[..., 0].")
    keep = t != ignore_index
    if not keep.any():
        raise InputError("every target is ignore_index; nothing to score.")
    _check_finite(z[keep], "logits")
    lp = log_softmax(z[keep])
    if t[keep].min() < 0 or t[keep].max() >= z.shape[1]:
        raise InputError(f"targets hold ids outside the vocabulary [0, {z.shape[1]}).")
    return float(np.exp(-lp[np.arange(keep.sum()), t[keep]].mean()))


# ---------------------------------------------------------------------------------------------
# smooth calibration error (Blasiok & Nakkiran 2024)
#
# Written here rather than taken from relplot (the authors' package, the tests' reference):
# the module stays NumPy-only, and the spectral form below applies the reflected kernel
# exactly (relplot truncates it at +-0.5 and counts scores on the end points once), bisects
# the bandwidth of many rows at once and so bootstraps in one vectorised pass. The scores
# are binned linearly onto 4,097 points (an error of order (1/4096 / sigma)^2 / 8).

SmoothVariant = Literal["auto", "top_label", "classwise", "positive_class"]
SMOOTH_VARIANTS = ("top_label", "classwise", "positive_class")
SMECE_GRID = 4096  # intervals of the grid on [0, 1] that the kernel smoothing runs on
SMECE_MIN_BANDWIDTH = 1e-3  # the bandwidth search stops here (an smECE below 0.1% is noise)
SPARSE_DENSITY = 1e-3  # curve points with less density than this (uniform = 1) are null
_BISECTION_STEPS = 22  # the fixed point to 2**-22 (~2.4e-7)
_CHUNK_VALUES = 2_000_000  # scores handled per batch (bounds the memory of the bootstrap)


def _splat(f: np.ndarray, w: np.ndarray, grid: int) -> np.ndarray:
    """Linear binning of weights ``w`` at positions ``f`` (both ``[R, N]``) onto the points
    ``j / grid``: each weight is shared by its two neighbouring points so that the mass and the
    mean of every row are kept. Returns ``[R, grid + 1]``."""
    rows = f.shape[0]
    x = f * grid
    left = np.clip(np.floor(x).astype(np.int64), 0, grid - 1)
    frac = x - left
    left = left + (np.arange(rows) * (grid + 1))[:, None]
    index = np.concatenate([left.ravel(), left.ravel() + 1])
    weight = np.concatenate([(w * (1.0 - frac)).ravel(), (w * frac).ravel()])
    return np.bincount(index, weights=weight, minlength=rows * (grid + 1)).reshape(rows, -1)


def _cosine_coefficients(v: np.ndarray, grid: int) -> np.ndarray:
    """``c_m = sum_j v_j cos(pi m j / grid)`` for ``m = 0 .. grid``, per row."""
    return np.fft.rfft(v, n=2 * grid, axis=1).real


def _smooth(c: np.ndarray, sigma: np.ndarray, points: int) -> np.ndarray:
    """The measure with cosine coefficients ``c`` smoothed by the reflected Gaussian kernel of
    bandwidth ``sigma`` (one per row), at the points ``j / points``.

    The reflected Gaussian kernel on [0, 1] (the density of ``x + N(0, sigma^2)`` folded back
    into [0, 1] at both ends) is the Neumann heat kernel
    ``K(t, x) = 1 + 2 sum_m exp(-(pi m sigma)^2 / 2) cos(pi m t) cos(pi m x)``, so smoothing
    multiplies the coefficients and one inverse FFT evaluates the result on the points.
    Coefficients whose factor is below ``exp(-50)`` are dropped.
    """
    cut = int(min(points + 1, c.shape[1], math.ceil(10.0 / (math.pi * float(sigma.min()))) + 1))
    m = np.arange(cut)
    a = np.exp(-0.5 * (np.pi * m[None, :] * sigma[:, None]) ** 2) * c[:, :cut]
    g = 2 * points * np.fft.irfft(a, n=2 * points, axis=1)[:, : points + 1]
    if cut == points + 1:  # irfft counts the last (Nyquist) coefficient once, the series twice
        g += a[:, -1:] * np.where(np.arange(points + 1) % 2, -1.0, 1.0)
    return g


def _points_for(sigma: np.ndarray, grid: int) -> np.ndarray:
    """Evaluation points enough for the trapezoid rule at each bandwidth ``sigma``: 32 per
    sigma (a power of two, 256 .. ``grid``); fewer points make the bandwidth search cheap."""
    need = np.ceil(np.log2(32.0 / sigma))
    return np.clip(2 ** need, 256, grid).astype(np.int64)


def _integral_abs(g: np.ndarray) -> np.ndarray:
    """Trapezoid rule for the integral over [0, 1] of ``|g|`` given at evenly spaced points."""
    a = np.abs(g)
    return (a.sum(axis=1) - 0.5 * (a[:, 0] + a[:, -1])) / (g.shape[1] - 1)


def _smece_at(c: np.ndarray, sigma: np.ndarray, grid: int) -> np.ndarray:
    """smECE at ``sigma`` of each row of coefficients; rows are grouped by the number of
    points their bandwidth needs, so a row's value does not depend on the others."""
    points = _points_for(sigma, grid)
    out = np.empty(len(c))
    for p in np.unique(points):
        rows = points == p
        out[rows] = _integral_abs(_smooth(c[rows], sigma[rows], int(p)))
    return out


def _smece_rows(f: np.ndarray, residual: np.ndarray, bandwidth: float | None,
                grid: int = SMECE_GRID) -> tuple[np.ndarray, np.ndarray]:
    """smECE and its bandwidth for each row of scores ``f`` and residuals ``y - f``
    (``[R, N]``): ``smECE_sigma = integral_0^1 |1/N sum_i K_sigma(t, f_i) (y_i - f_i)| dt``
    at the fixed point ``sigma* = smECE_sigma*`` (or at ``bandwidth``)."""
    c = _cosine_coefficients(_splat(f, residual / f.shape[1], grid), grid)
    if bandwidth is not None:
        sigma = np.full(len(c), float(bandwidth))
        return _smece_at(c, sigma, grid), sigma
    # smECE_sigma decreases with sigma (smoothing more contracts the L1 norm), so
    # smECE_sigma - sigma has one root in [SMECE_MIN_BANDWIDTH, 1]: bisect every row at once
    lo = np.full(len(c), SMECE_MIN_BANDWIDTH)
    hi = np.ones(len(c))
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        above = _smece_at(c, mid, grid) > mid
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    sigma = 0.5 * (lo + hi)
    return _smece_at(c, sigma, grid), sigma


def _smece_batched(f: np.ndarray, outcome: np.ndarray,
                   bandwidth: float | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_smece_rows` in chunks of rows that keep the work arrays small."""
    step = max(1, min(len(f), _CHUNK_VALUES // max(f.shape[1], 1), 256))
    parts = [_smece_rows(f[i:i + step], outcome[i:i + step] - f[i:i + step], bandwidth)
             for i in range(0, len(f), step)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _smooth_variant(s: Scores, variant: str) -> str:
    if variant == "auto":
        return "positive_class" if s.binary_1d else "top_label"
    if variant not in SMOOTH_VARIANTS:
        raise InputError(f"variant={variant!r} is not one of {('auto', *SMOOTH_VARIANTS)}. "
                         "Use 'top_label' (confidence against correctness), 'classwise' (each "
                         "class's probability) or 'positive_class' (two classes).")
    if variant == "positive_class" and s.n_classes != 2:
        raise InputError(f"variant='positive_class' needs 2 classes, the scores have "
                         f"{s.n_classes}. Use 'top_label' or 'classwise'.")
    return variant


def _smooth_problems(s: Scores, variant: str) -> tuple[np.ndarray, np.ndarray]:
    """The scores and 0/1 outcomes ``[P, N]`` a variant is the (mean) smECE of."""
    if variant == "top_label":
        confidence, correct = _top_label(s)
        return confidence[None, :], correct[None, :]
    if variant == "positive_class":
        return s.probs[None, :, 1], (s.labels == 1).astype(np.float64)[None, :]
    return s.probs.T, (s.labels[None, :] == np.arange(s.n_classes)[:, None]).astype(np.float64)


def _check_bandwidth(bandwidth: float | None) -> None:
    if bandwidth is None:
        return
    ok = isinstance(bandwidth, (int, float, np.floating, np.integer)) and not isinstance(
        bandwidth, bool)
    if not ok or not math.isfinite(bandwidth) or bandwidth < SMECE_MIN_BANDWIDTH:
        raise InputError(f"bandwidth must be a number >= {SMECE_MIN_BANDWIDTH} (the smoothing "
                         f"grid resolves no finer), got {bandwidth!r}. Leave it None to use "
                         "the paper's choice (the fixed point smECE_sigma = sigma), or pass "
                         "e.g. 0.05.")


def _check_bootstrap(level: float, n_boot: int) -> None:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not (
            0.0 < level < 1.0):
        raise InputError(f"level must be a number strictly between 0 and 1, got {level!r}; "
                         "0.95 gives a 95% interval.")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise InputError(f"n_boot must be an int >= 1, got {n_boot!r}; 200 resamples is the "
                         "usual choice.")


def _smece(s: Scores, variant: str, bandwidth: float | None) -> float:
    f, outcome = _smooth_problems(s, variant)
    return float(_smece_batched(f, outcome, bandwidth)[0].mean())


def smooth_ece(scores: Any, labels: Any, *, kind: Kind = "auto",
               variant: SmoothVariant = "auto", bandwidth: float | None = None) -> float:
    """Smooth ECE (smECE) of Blasiok & Nakkiran, "Smooth ECE: Principled Reliability Diagrams
    via Kernel Smoothing" (ICLR 2024), in [0, 1].

    The residuals ``y_i - f_i`` are smoothed with the reflected Gaussian kernel ``K_sigma`` on
    [0, 1] and ``smECE_sigma = integral_0^1 |1/N sum_i K_sigma(t, f_i) (y_i - f_i)| dt``
    (the smoothed residual weighted by the smoothed density of the scores). The bandwidth is
    the paper's: the fixed point ``sigma*`` with ``smECE_sigma* = sigma*`` (unique, since
    smECE_sigma decreases in sigma), found by bisection on [0.001, 1]; ``bandwidth=`` fixes
    sigma instead. Unlike binned ECE it does not jump when a score crosses a bin edge, and it
    is within constant factors of the distance to the nearest calibrated predictor.

    ``variant``: ``top_label`` (confidence ``max_k p_k`` against correctness),
    ``classwise`` (mean over classes k of the smECE of ``p_k`` against ``[y = k]``) or
    ``positive_class`` (``p_1`` against ``y``, two classes). ``auto``: ``positive_class`` for
    binary scores given as ``[N]``, else ``top_label``.

    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=2000)
    >>> round(smooth_ece(p, rng.uniform(size=2000) < p), 2)   # calibrated: small
    0.03
    >>> round(smooth_ece(p, rng.uniform(size=2000) < p ** 3), 2)   # p overstates the truth
    0.25
    """
    _check_bandwidth(bandwidth)
    s = _prepared(scores, labels, kind)
    return _smece(s, _smooth_variant(s, variant), bandwidth)


def _resamples(n: int, n_boot: int, seed: int | None, step: int) -> Iterator[np.ndarray]:
    """Bootstrap resamples of ``n`` rows (indices drawn with replacement from a Generator
    seeded with ``seed``), ``step`` resamples ``[step, n]`` at a time."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, step):
        yield rng.integers(0, n, size=(min(step, n_boot - start), n))


def smooth_ece_interval(scores: Any, labels: Any, *, level: float = 0.95, n_boot: int = 200,
                        seed: int | None = 0, kind: Kind = "auto",
                        variant: SmoothVariant = "auto", bandwidth: float | None = None,
                        ) -> tuple[float, float, float]:
    """``(smece, low, high)``: :func:`smooth_ece` and a percentile bootstrap interval at
    ``level`` (Efron & Tibshirani 1993): the examples are resampled with replacement
    ``n_boot`` times (a NumPy Generator seeded with ``seed``), the smECE of each resample,
    its bandwidth chosen afresh, and the ``(1 - level) / 2`` and ``(1 + level) / 2``
    quantiles of those values. The resamples are computed together (vectorised): 200 of
    1,000 examples take a fraction of a second.

    >>> value, low, high = smooth_ece_interval(probs, labels, level=0.9)   # doctest: +SKIP
    """
    _check_bandwidth(bandwidth)
    _check_bootstrap(level, n_boot)
    s = _prepared(scores, labels, kind)
    variant = _smooth_variant(s, variant)
    f, outcome = _smooth_problems(s, variant)
    value = float(_smece_batched(f, outcome, bandwidth)[0].mean())
    boots = []
    for part in _resamples(len(s), n_boot, seed, max(1, _CHUNK_VALUES // (len(f) * len(s)))):
        fb = f[:, part].reshape(-1, len(s))  # rows: (problem, resample) pairs
        ob = outcome[:, part].reshape(-1, len(s))
        boots.append(_smece_batched(fb, ob, bandwidth)[0].reshape(len(f), -1).mean(axis=0))
    low, high = np.quantile(np.concatenate(boots), [(1 - level) / 2, (1 + level) / 2])
    return value, float(low), float(high)


def _curve_rows(f: np.ndarray, outcome: np.ndarray, sigma: np.ndarray,
                grid: int = SMECE_GRID) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed residual ``sum_i K(t, f_i) (y_i - f_i) / sum_i K(t, f_i)`` and smoothed density
    ``1/N sum_i K(t, f_i)`` of each row, at the points ``j / grid``."""
    rows, n = f.shape
    v = _splat(np.concatenate([f, f]), np.concatenate([outcome - f, np.ones_like(f)]) / n, grid)
    g = _smooth(_cosine_coefficients(v, grid), np.concatenate([sigma, sigma]), grid)
    residual, density = g[:rows], g[rows:]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(density >= SPARSE_DENSITY, residual / density, np.nan)
    return ratio, density


def _at(a: np.ndarray, x: np.ndarray, grid: int = SMECE_GRID) -> np.ndarray:
    """Rows ``a`` given at ``j / grid``, linearly interpolated at the points ``x``."""
    left = np.clip(np.floor(x * grid).astype(np.int64), 0, grid - 1)
    frac = x * grid - left
    return a[:, left] * (1.0 - frac) + a[:, left + 1] * frac


def smooth_reliability_curve(scores: Any, labels: Any, *, variant: SmoothVariant = "auto",
                             kind: Kind = "auto", grid: int = 201, n_boot: int = 200,
                             level: float = 0.95, seed: int | None = 0,
                             bandwidth: float | None = None) -> pl.DataFrame:
    """The smoothed reliability diagram of Blasiok & Nakkiran (ICLR 2024) as a frame:
    ``class, x, y, low, high, density, bandwidth``, ``grid`` rows per curve.

    ``y(x) = x + sum_i K(x, f_i) (y_i - f_i) / sum_i K(x, f_i)`` is the kernel-smoothed
    frequency of the outcome among scores near ``x`` (the diagonal ``y = x`` is perfect
    calibration), ``density`` the smoothed density of the scores (it integrates to 1 over
    [0, 1]), both with the reflected Gaussian kernel at the bandwidth :func:`smooth_ece`
    chooses (or ``bandwidth``). ``low`` / ``high`` is a pointwise percentile bootstrap band at
    ``level`` (``n_boot`` resamples, same bandwidth). ``y``, ``low`` and ``high`` are null
    where the density is below 0.001 (no scores nearby to estimate from).

    ``variant`` as in :func:`smooth_ece`: one curve (``class`` null for ``top_label``, 1 for
    ``positive_class``) or one per class (``classwise``, ``class`` = 0 .. K-1).

    >>> curve = smooth_reliability_curve(probs, labels)                     # doctest: +SKIP
    >>> curve.filter(pl.col("density") > 0.5).select("x", "y", "low", "high")  # doctest: +SKIP
    """
    _check_bandwidth(bandwidth)
    _check_bootstrap(level, n_boot)
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 2:
        raise InputError(f"grid must be an int >= 2 (points on [0, 1]), got {grid!r}; 201 "
                         "draws a smooth line.")
    s = _prepared(scores, labels, kind)
    variant = _smooth_variant(s, variant)
    f, outcome = _smooth_problems(s, variant)
    sigma = (np.full(len(f), float(bandwidth)) if bandwidth is not None
             else _smece_batched(f, outcome, None)[1])
    x = np.linspace(0.0, 1.0, grid)
    ratio, density = _curve_rows(f, outcome, sigma)
    step = max(1, min(n_boot, _CHUNK_VALUES // len(s), 256))
    frames = []
    for p in range(len(f)):  # the same resamples for every curve
        boots = np.concatenate([
            _at(_curve_rows(f[p, part], outcome[p, part], np.full(len(part), sigma[p]))[0], x)
            for part in _resamples(len(s), n_boot, seed, step)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no data there
            low, high = np.nanquantile(boots, [(1 - level) / 2, (1 + level) / 2], axis=0)
        cls = None if variant == "top_label" else (1 if variant == "positive_class" else p)
        frames.append(pl.DataFrame({
            "class": pl.Series([cls] * grid, dtype=pl.Int64), "x": x,
            "y": x + _at(ratio[p:p + 1], x)[0], "low": x + low, "high": x + high,
            "density": _at(density[p:p + 1], x)[0],
            "bandwidth": np.full(grid, sigma[p]),
        }))
    return pl.concat(frames).with_columns(pl.col("y", "low", "high").fill_nan(None))


# ---------------------------------------------------------------------------------------------
# reports

_SCHEMA = {"metric": pl.String, "variant": pl.String, "value": pl.Float64, "bins": pl.Int64,
           "scheme": pl.String}


class _Inputs:
    """What several rows of a report share, computed once: the confusion matrix, the
    top-label pairs and their bins."""

    def __init__(self, s: Scores, n_bins: int):
        self.s, self.n_bins = s, n_bins
        self._bins: dict[str, Bins] = {}

    @cached_property
    def matrix(self) -> np.ndarray:
        return _confusion(self.s)

    @cached_property
    def prf(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return _per_class_prf(self.matrix)

    def averaged(self, which: int, average: str) -> float:
        """precision (0), recall (1) or f1 (2) under ``average``."""
        values, support = self.prf[which], self.prf[3]
        if average == "micro":
            return float(np.trace(self.matrix) / self.matrix.sum())
        if average == "weighted":
            return float(values @ (support / support.sum()))
        return float(values[1] if average == "binary" else values.mean())

    @cached_property
    def top(self) -> tuple[np.ndarray, np.ndarray]:
        return _top_label(self.s)

    def top_bins(self, scheme: str) -> Bins:
        """The top-label bins of ``scheme`` (made on first use)."""
        if scheme not in self._bins:
            self._bins[scheme] = bin_values(*self.top, self.n_bins, scheme)
        return self._bins[scheme]

    def bins_count(self, scheme: str | None) -> int | None:
        """The ``bins`` column: equal-mass bins are fewer when there are fewer examples."""
        if scheme is None:
            return None
        return self.n_bins if scheme == "equal_width" else min(self.n_bins, len(self.s))


def _mce(x: _Inputs) -> float:
    b = x.top_bins("equal_width")
    full = b.count > 0
    return float(np.abs(b.mean_outcome[full] - b.mean_value[full]).max())


def _positive_ece(x: _Inputs) -> float:
    s = x.s
    return bin_values(s.probs[:, 1], s.labels == 1, x.n_bins, "equal_width").weighted_gap()


@dataclass(frozen=True)
class MetricSpec:
    """One row of an :func:`evaluate` report: its key, how it is computed, its wide column.

    ``metric, variant`` (and ``scheme`` for binned metrics) identify the row; ``compute`` maps
    the checked inputs to the value; ``classes`` says on which tasks the row appears
    (``"any"``, ``"binary"``: K = 2 only, ``"multiclass"``: K > 2 only). :func:`to_wide`
    names the row's column :meth:`column`.

    >>> metric_spec("ece", "top_label", "equal_mass").column(15)
    'ece_top_label_equal_mass15'
    """

    metric: str
    variant: str
    compute: Callable[[_Inputs], float] = field(repr=False, compare=False)
    scheme: str | None = None
    classes: Literal["any", "binary", "multiclass"] = "any"
    short_name: bool = False  # the wide column is just the metric's name
    bins_in_name: bool = True  # binned rows: the wide column ends in "_{scheme}{bins}"
    summary: str = ""

    @property
    def key(self) -> tuple[str, str, str | None]:
        return self.metric, self.variant, self.scheme

    @property
    def binned(self) -> bool:
        return self.scheme is not None

    def applies_to(self, n_classes: int) -> bool:
        """Whether a report on ``n_classes`` classes has this row."""
        return (self.classes == "any" or (self.classes == "binary") == (n_classes == 2))

    def column(self, bins: int | None = None) -> str:
        """The row's column in a wide report (:func:`to_wide`)."""
        name = self.metric if self.short_name else f"{self.metric}_{self.variant}"
        if self.binned and self.bins_in_name:
            name = f"{name}_{self.scheme}{bins if bins is not None else DEFAULT_BINS}"
        return name


def _prf_specs() -> list[MetricSpec]:
    specs = []
    for which, metric in enumerate(("precision", "recall", "f1")):
        for average in ("macro", "micro", "weighted", "binary"):
            specs.append(MetricSpec(
                metric, average, lambda x, w=which, a=average: x.averaged(w, a),
                classes="binary" if average == "binary" else "any",
                summary=f"{metric}, {average} average"))
    return specs


#: Every row :func:`evaluate` reports, in report order (see the table in the module docstring).
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("accuracy", "top1", lambda x: accuracy(x.s, None), short_name=True,
               summary="share of argmax predictions that are right"),
    *_prf_specs(),
    MetricSpec("roc_auc", "binary", lambda x: roc_auc(x.s, None), classes="binary",
               short_name=True, summary="ROC-AUC of p_1"),
    MetricSpec("roc_auc", "ovr_macro", lambda x: roc_auc(x.s, None), classes="multiclass",
               short_name=True, summary="mean one-vs-rest ROC-AUC"),
    MetricSpec("nll", "mean", lambda x: nll(x.s, None), short_name=True,
               summary="mean negative log-likelihood"),
    MetricSpec("brier", "multiclass", lambda x: brier_score(x.s, None),
               summary="Brier score summed over classes"),
    MetricSpec("brier", "positive_class",
               lambda x: brier_score(x.s, None, variant="positive_class"), classes="binary",
               summary="Brier score of p_1"),
    MetricSpec("ece", "top_label", lambda x: x.top_bins("equal_width").weighted_gap(),
               scheme="equal_width", summary="top-label ECE, equal-width bins"),
    MetricSpec("ece", "top_label", lambda x: x.top_bins("equal_mass").weighted_gap(),
               scheme="equal_mass", summary="top-label ECE, equal-mass bins"),
    MetricSpec("mce", "top_label", _mce, scheme="equal_width",
               summary="largest bin gap, equal-width bins"),
    MetricSpec("ece", "classwise",
               lambda x: float(np.mean(_classwise(x.s, x.n_bins, "equal_width"))),
               scheme="equal_width", summary="mean ECE of each class's probability"),
    MetricSpec("ece", "positive_class", _positive_ece, scheme="equal_width", classes="binary",
               summary="ECE of p_1"),
    MetricSpec("smece", "top_label", lambda x: _smece(x.s, "top_label", None),
               summary="smooth ECE of the confidence"),
    MetricSpec("smece", "classwise", lambda x: _smece(x.s, "classwise", None),
               summary="mean smooth ECE of each class's probability"),
    MetricSpec("smece", "positive_class", lambda x: _smece(x.s, "positive_class", None),
               classes="binary", summary="smooth ECE of p_1"),
    MetricSpec("l2_ce", "top_label_debiased",
               lambda x: l2_calibration_error(x.s, None, n_bins=x.n_bins), scheme="equal_mass",
               short_name=True, bins_in_name=False,
               summary="debiased top-label L2 calibration error, equal-mass bins"),
    MetricSpec("confidence", "top_label_mean", lambda x: float(x.top[0].mean()),
               short_name=True, summary="mean top-label probability"),
)

_BY_KEY = {spec.key: spec for spec in METRICS}


def metric_spec(metric: str, variant: str, scheme: str | None = None) -> MetricSpec:
    """The :class:`MetricSpec` of a report row (``scheme`` may be left out where the metric
    and variant have one row).

    >>> metric_spec("smece", "top_label").column()
    'smece_top_label'
    """
    found = [s for s in METRICS if s.metric == metric and s.variant == variant
             and (scheme is None or s.scheme == scheme)]
    if len(found) == 1:
        return found[0]
    if not found:
        known = ", ".join(f"{s.metric}/{s.variant}" + (f"/{s.scheme}" if s.scheme else "")
                          for s in METRICS)
        raise InputError(f"no metric {metric!r} with variant {variant!r}"
                         + (f" and scheme {scheme!r}" if scheme else "")
                         + f". evaluate() reports: {known}.")
    raise InputError(f"{metric}/{variant} has one row per scheme "
                     f"({', '.join(str(s.scheme) for s in found)}); pass scheme=.")


def report_value(report: pl.DataFrame, metric: str, variant: str | None = None,
                 scheme: str | None = None) -> float:
    """The value of one row of a tidy :func:`evaluate` report, by ``metric`` (and ``variant``,
    ``scheme`` where the metric has several rows).

    >>> report = evaluate([[0.9, 0.1], [0.3, 0.7]], [0, 0])
    >>> report_value(report, "accuracy")
    0.5
    >>> report_value(report, "ece", "top_label", "equal_mass")                # doctest: +SKIP
    """
    missing = {"metric", "variant", "value", "scheme"} - set(report.columns)
    if missing:
        raise InputError(f"the report lacks columns {sorted(missing)}; pass a frame made by "
                         "llmlab.evaluate (tidy, not wide=True).")
    rows = report.filter(pl.col("metric") == metric)
    if variant is not None:
        rows = rows.filter(pl.col("variant") == variant)
    if scheme is not None:
        rows = rows.filter(pl.col("scheme") == scheme)
    if rows.height == 1:
        return float(rows["value"].item())
    keys = sorted({(m, v, sc) for m, v, sc in report.select("metric", "variant", "scheme")
                   .iter_rows() if m == metric}, key=str)
    if rows.height == 0:
        where = f"{metric!r}" + (f", variant {variant!r}" if variant else "") + (
            f", scheme {scheme!r}" if scheme else "")
        raise InputError(f"the report has no row for {where}; its rows for {metric!r}: "
                         f"{keys or 'none'}.")
    raise InputError(f"{rows.height} rows match {metric!r}: {keys}. Pass variant= (and "
                     "scheme= for binned metrics) to pick one.")


def evaluate(scores: Any, labels: Any, *, n_bins: int = DEFAULT_BINS, kind: Kind = "auto",
             wide: bool = False) -> pl.DataFrame:
    """Every metric of the module docstring in one tidy frame, one row per :data:`METRICS`
    spec that applies to the number of classes.

    Columns: ``metric, variant, value, bins, scheme`` (``bins`` and ``scheme`` are null for
    metrics that do not bin). ``wide=True`` gives one row with a column per metric instead,
    named by :meth:`MetricSpec.column` (``metric``, ``metric_variant`` and for binned ones
    ``..._{scheme}{bins}``): handy for stacking the reports of several models or runs.
    :func:`report_value` reads one value back.

    >>> report = llmlab.evaluate(val_logits, val_labels)                         # doctest: +SKIP
    >>> report_value(report, "smece", "top_label")                               # doctest: +SKIP
    """
    _check_bins(n_bins, "equal_width")
    x = _Inputs(_prepared(scores, labels, kind), n_bins)
    rows = [(spec.metric, spec.variant, float(spec.compute(x)), x.bins_count(spec.scheme),
             spec.scheme) for spec in METRICS if spec.applies_to(x.s.n_classes)]
    report = pl.DataFrame(rows, schema=_SCHEMA, orient="row")
    return to_wide(report) if wide else report


def _column(metric: str, variant: str, bins: int | None, scheme: str | None) -> str:
    spec = _BY_KEY.get((metric, variant, scheme))
    if spec is not None:
        return spec.column(bins)
    name = f"{metric}_{variant}"  # a row from elsewhere: the same rule, spelled out
    return f"{name}_{scheme}{bins}" if scheme is not None else name


def to_wide(report: pl.DataFrame) -> pl.DataFrame:
    """One row with a column per metric of a tidy :func:`evaluate` report."""
    names, values = [], []
    for metric, variant, value, bins, scheme in report.select(list(_SCHEMA)).iter_rows():
        names.append(_column(metric, variant, bins, scheme))
        values.append(value)
    return pl.DataFrame([values], schema=dict.fromkeys(names, pl.Float64), orient="row")


def compare(reports: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Tidy reports side by side: ``metric, variant, bins, scheme``, then a column per name.

    >>> compare({"before": evaluate(p0, y), "after": evaluate(p1, y)})         # doctest: +SKIP
    """
    if not reports:
        raise InputError("compare needs at least one report, e.g. {'before': r0, 'after': r1}.")
    keys = ["metric", "variant", "bins", "scheme"]
    out = None
    for name, report in reports.items():
        missing = set(_SCHEMA) - set(report.columns)
        if missing:
            raise InputError(f"report {name!r} lacks columns {sorted(missing)}; pass frames "
                             "made by llmlab.evaluate (tidy, not wide=True).")
        part = report.select(*keys, pl.col("value").alias(str(name)))
        out = part if out is None else out.join(part, on=keys, how="full", coalesce=True,
                                                nulls_equal=True, maintain_order="left")
    return out


def per_class(scores: Any, labels: Any, *, label_names: Sequence[str] | None = None,
              n_bins: int = DEFAULT_BINS, kind: Kind = "auto") -> pl.DataFrame:
    """One row per class: ``class, name, support, precision, recall, f1, roc_auc_ovr,
    frequency, mean_prob, ece`` (``ece`` = that class's part of the classwise ECE).

    >>> per_class([[0.9, 0.1], [0.2, 0.8]], [0, 1])["f1"].to_list()
    [1.0, 1.0]
    """
    s = _prepared(scores, labels, kind)
    k = s.n_classes
    p, r, f, support = _per_class_prf(_confusion(s))
    return pl.DataFrame({
        "class": np.arange(k),
        "name": _names(label_names, k),
        "support": support.astype(np.int64),
        "precision": p, "recall": r, "f1": f,
        "roc_auc_ovr": [_auc(s.probs[:, c], s.labels == c) for c in range(k)],
        "frequency": support / support.sum(),
        "mean_prob": s.probs.mean(axis=0),
        "ece": _classwise(s, n_bins, "equal_width"),
    }).with_columns(pl.col("roc_auc_ovr").fill_nan(None))
