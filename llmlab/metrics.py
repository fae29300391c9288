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
l2_ce          top_label_debiased  Kumar et al. 2019: sqrt of ``sum_b n_b/N * ((acc_b -
                                   conf_b)^2 - acc_b (1 - acc_b) / (n_b - 1))`` (clipped at
                                   0), equal-mass bins; the subtracted term removes the
                                   upward bias of the plug-in estimate
confidence     top_label_mean      mean of ``max_k p_k`` (compare with accuracy)
=============  ==================  ==========================================================

Bins: ``equal_width`` splits [0, 1] into ``n_bins`` intervals ``(lo, hi]`` (0 falls into the
first); ``equal_mass`` sorts the examples by the binned value and cuts them into ``n_bins``
groups whose sizes differ by at most one (fewer bins when there are fewer examples). Every
binned row of a report carries its ``bins`` and ``scheme``.

The module needs NumPy and polars only (torch only when given tensors); scikit-learn is used by
the tests as the reference, never here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import polars as pl

from llmlab.errors import InputError

__all__ = [
    "DEFAULT_BINS",
    "PROB_ATOL",
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
    "mce",
    "nll",
    "per_class",
    "perplexity",
    "precision_recall_f1",
    "prepare",
    "probabilities",
    "reliability_table",
    "roc_auc",
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
            return _log_softmax(self.logits)
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


def _log_softmax(z: np.ndarray) -> np.ndarray:
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
    lp = _log_softmax(z[keep])
    if t[keep].min() < 0 or t[keep].max() >= z.shape[1]:
        raise InputError(f"targets hold ids outside the vocabulary [0, {z.shape[1]}).")
    return float(np.exp(-lp[np.arange(keep.sum()), t[keep]].mean()))


# ---------------------------------------------------------------------------------------------
# reports

_SCHEMA = {"metric": pl.String, "variant": pl.String, "value": pl.Float64, "bins": pl.Int64,
           "scheme": pl.String}


def evaluate(scores: Any, labels: Any, *, n_bins: int = DEFAULT_BINS, kind: Kind = "auto",
             wide: bool = False) -> pl.DataFrame:
    """Every metric of the module docstring in one tidy frame.

    Columns: ``metric, variant, value, bins, scheme`` (``bins`` and ``scheme`` are null for
    metrics that do not bin). ``wide=True`` gives one row with a column per metric instead,
    named ``metric``, ``metric_variant`` and for binned ones ``..._{scheme}{bins}``:
    handy for stacking the reports of several models or runs.

    >>> report = llmlab.evaluate(val_logits, val_labels)                         # doctest: +SKIP
    >>> report.filter(pl.col("metric") == "ece")                                 # doctest: +SKIP
    """
    _check_bins(n_bins, "equal_width")
    s = _prepared(scores, labels, kind)
    k = s.n_classes
    rows: list[tuple[str, str, float, int | None, str | None]] = []

    def add(metric: str, variant: str, value: float, bins: int | None = None,
            scheme: str | None = None) -> None:
        rows.append((metric, variant, float(value), bins, scheme))

    add("accuracy", "top1", accuracy(s, None))
    matrix = _confusion(s)
    p, r, f, support = _per_class_prf(matrix)
    micro = np.trace(matrix) / matrix.sum()
    weights = support / support.sum()
    for metric, values in (("precision", p), ("recall", r), ("f1", f)):
        add(metric, "macro", values.mean())
        add(metric, "micro", micro)
        add(metric, "weighted", values @ weights)
        if k == 2:
            add(metric, "binary", values[1])
    add("roc_auc", "binary" if k == 2 else "ovr_macro", roc_auc(s, None))
    add("nll", "mean", nll(s, None))
    add("brier", "multiclass", brier_score(s, None))
    if k == 2:
        add("brier", "positive_class", brier_score(s, None, variant="positive_class"))
    confidence, correct = _top_label(s)
    width = bin_values(confidence, correct, n_bins, "equal_width")
    mass = bin_values(confidence, correct, n_bins, "equal_mass")
    add("ece", "top_label", width.weighted_gap(), width.n_bins, "equal_width")
    add("ece", "top_label", mass.weighted_gap(), mass.n_bins, "equal_mass")
    add("mce", "top_label", mce(s, None, n_bins=n_bins), width.n_bins, "equal_width")
    add("ece", "classwise", np.mean(_classwise(s, n_bins, "equal_width")), n_bins,
        "equal_width")
    if k == 2:
        positive = bin_values(s.probs[:, 1], s.labels == 1, n_bins, "equal_width")
        add("ece", "positive_class", positive.weighted_gap(), n_bins, "equal_width")
    add("l2_ce", "top_label_debiased", l2_calibration_error(s, None, n_bins=n_bins),
        mass.n_bins, "equal_mass")
    add("confidence", "top_label_mean", confidence.mean())
    report = pl.DataFrame(rows, schema=_SCHEMA, orient="row")
    return to_wide(report) if wide else report


_SINGLE_VARIANT = {"accuracy", "nll", "roc_auc", "confidence", "l2_ce"}


def to_wide(report: pl.DataFrame) -> pl.DataFrame:
    """One row with a column per metric of a tidy :func:`evaluate` report."""
    names, values = [], []
    for metric, variant, value, bins, scheme in report.select(list(_SCHEMA)).iter_rows():
        name = metric if metric in _SINGLE_VARIANT else f"{metric}_{variant}"
        if scheme is not None and metric != "l2_ce":
            name = f"{name}_{scheme}{bins}"
        names.append(name)
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
