"""Calibrators for prompted language models: maps of the label log-probabilities a
:class:`~llmlab.PromptClassifier` computes (in-context learning's biases are the target).

Each is a :class:`~llmlab.calibrate.Calibrator` (saved, loaded and registered like the
others). ``fit`` takes label log-probabilities ``[N, K]`` (``kind="logits"``: they need not be
normalised over the labels) and, for the supervised ones, labels; ``transform`` returns
calibrated probabilities and ``transform_log_probs`` calibrated log-probabilities. What the
scores are *of* differs, and ``inputs`` says it; ``PromptClassifier.calibrate(name)`` builds
them:

============  ================================  ================  ===========================
name          class                             fitted on         paper
============  ================================  ================  ===========================
contextual    ContextualCalibration             content-free      Zhao et al. 2021
                                                inputs ("N/A")
domain        DomainContextCalibration          random in-domain  Fei et al. 2023
                                                word strings
batch         BatchCalibration                  unlabelled texts  Zhou et al. 2024
generative    GenerativeCalibration             the LM's samples  Jiang et al. 2023
prior         PriorAdaptation                   unlabelled texts  Estienne et al. 2023
prototypical  PrototypicalCalibration           unlabelled texts  Han et al. 2022
linc          LinearProbeCalibration            labelled texts    Abbas et al. 2024
supervised    SupervisedCalibration             labelled texts    Gundem et al. 2025
hidden        HiddenStateCalibration            hidden states     Cho et al. 2024
                                                + labels
============  ================================  ================  ===========================

>>> import numpy as np
>>> lp = np.log([[0.9, 0.1], [0.6, 0.4]])             # a model that leans to class 0
>>> cal = ContextualCalibration().fit(np.log([[0.75, 0.25]]))   # its answer to "N/A"
>>> cal.transform(lp).round(3).tolist()
[[0.75, 0.25], [0.333, 0.667]]
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from llmlab.calibrate.base import REGISTRY, Calibrator, _like_input
from llmlab.calibrate.binning import HistogramBinning, IsotonicCalibration
from llmlab.calibrate.scaling import (
    MatrixScaling,
    PlattScaling,
    TemperatureScaling,
    VectorScaling,
    _minimise,
)
from llmlab.errors import InputError
from llmlab.metrics import Kind, Scores, check_labels, log_softmax, prepare, to_numpy

__all__ = [
    "BatchCalibration", "ContextualCalibration", "DomainContextCalibration",
    "GenerativeCalibration", "HiddenStateCalibration", "LinearProbeCalibration",
    "NoCalibration", "PriorAdaptation", "PromptCalibrator", "PrototypicalCalibration",
    "METHODS", "SupervisedCalibration", "inputs_of", "log_mean_prob", "log_softmax",
    "make_calibrator", "match_clusters", "method_name", "one_vs_rest_logits",
]


def log_mean_prob(log_probs: np.ndarray) -> np.ndarray:
    """``log(mean_i exp(log_probs[i]))`` per label, computed stably."""
    top = log_probs.max(axis=0)
    return top + np.log(np.exp(log_probs - top).mean(axis=0))


class PromptCalibrator(Calibrator, register=False):
    """Base of the prompted-LM calibrators: ``fit`` may take no labels.

    Subclasses set ``inputs`` (what a PromptClassifier fits them on: "content_free",
    "domain", "texts", "samples", "labelled", "hidden", "nothing"), ``needs_labels``, and
    implement ``_fit(scores)`` and ``_log_transform(scores)``.

    >>> BatchCalibration().fit(np.log([[0.8, 0.2], [0.6, 0.4]])).prior.round(2).tolist()
    [0.7, 0.3]
    """

    inputs: ClassVar[str] = "texts"
    needs_labels: ClassVar[bool] = False
    #: what the method is called in messages
    title: ClassVar[str] = "this calibration"

    def min_examples(self, n_classes: int) -> int:
        """How many fitting examples the method needs for ``n_classes`` labels."""
        return 1

    def fit(self, scores: Any, labels: Any = None, *, kind: Kind = "auto") -> PromptCalibrator:
        """Fit on label log-probabilities ``[N, K]`` (and labels where the method needs them)."""
        if labels is None and self.needs_labels:
            raise InputError(f"{self.title} is supervised: pass labels (one class id per "
                             "example), e.g. cal.fit(log_probs, labels).")
        s = prepare(scores, labels, kind=kind, name="label log-probabilities")
        need = self.min_examples(s.n_classes)
        if len(s) < need:
            raise InputError(
                f"{self.title} needs at least {need} examples for {s.n_classes} labels, got "
                f"{len(s)}. Pass at least {need} texts."
            )
        if self.needs_labels:
            self._check_classes(s)
        self._fit(s)
        self.n_classes, self.fit_kind = s.n_classes, s.kind
        self.fit_info = {"n": len(s), "binary_1d": s.binary_1d}
        return self

    def _transform(self, s: Scores) -> np.ndarray:
        return np.exp(self._log_transform(s))

    def _log_transform(self, s: Scores) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class NoCalibration(PromptCalibrator):
    """The identity: the label probabilities as the model gives them (softmax over labels).

    >>> NoCalibration().fit(np.log([[0.5, 0.5]])).transform(np.log([[0.9, 0.1]])).round(2).tolist()
    [[0.9, 0.1]]
    """

    inputs = "nothing"
    title = "no calibration"

    def _fit(self, s: Scores) -> None:
        pass

    def _log_transform(self, s: Scores) -> np.ndarray:
        return s.log_probs


# --------------------------------------------------------------------------- prior division
class _PriorDivision(PromptCalibrator, register=False):
    """``p(y | x) / p_bar(y)``, renormalised: subtract ``log p_bar`` from the log-probs.

    ``p_bar`` is the mean label probability over the fitting inputs (which inputs is what
    tells the methods apart).
    """

    def __init__(self) -> None:
        super().__init__()
        self.log_prior: np.ndarray | None = None

    @property
    def prior(self) -> np.ndarray | None:
        """The estimated label prior ``p_bar`` (None before fitting)."""
        return None if self.log_prior is None else np.exp(self.log_prior)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"log_prior": self.log_prior}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.log_prior = arrays["log_prior"]

    def _fit(self, s: Scores) -> None:
        self.log_prior = log_mean_prob(s.log_probs)

    def _log_transform(self, s: Scores) -> np.ndarray:
        return log_softmax(s.log_probs - self.log_prior)


class ContextualCalibration(_PriorDivision):
    """Contextual calibration (Zhao et al. 2021, "Calibrate Before Use").

    ``p_bar`` = the mean label probabilities of content-free inputs ("N/A", "", "[MASK]") put
    in the prompt in place of the text; calibrated ``q = diag(p_bar)^-1 p``, renormalised.
    Fit it on the content-free inputs' label log-probabilities.

    >>> cal = ContextualCalibration().fit(clf.label_scores(["N/A", "", "[MASK]"]))  # doctest: +SKIP
    """

    inputs = "content_free"
    title = "contextual calibration"


class DomainContextCalibration(_PriorDivision):
    """Domain-context calibration (Fei et al. 2023, "Mitigating Label Biases for In-context
    Learning"): ``p_bar`` from strings of random in-domain words (as long as an average text)
    in place of the text; otherwise as contextual calibration.

    >>> clf.calibrate("domain", texts=unlabelled)                    # doctest: +SKIP
    """

    inputs = "domain"
    title = "domain-context calibration"


class BatchCalibration(_PriorDivision):
    """Batch calibration (Zhou et al. 2024, "Batch Calibration: Rethinking Calibration for
    In-Context Learning and Prompt Engineering", ICLR): ``p_bar`` = the mean over a batch of
    test texts of their label probabilities.

    >>> BatchCalibration().fit(test_log_probs).transform(test_log_probs)   # doctest: +SKIP
    """

    title = "batch calibration"


class GenerativeCalibration(_PriorDivision):
    """Generative calibration (Jiang et al. 2023, "Generative Calibration for In-context
    Learning"): ``p_bar`` = the label marginal ``p(y | demonstrations)`` estimated by Monte
    Carlo over texts the model itself samples after the demonstrations,
    ``p_bar = mean_j p(y | demonstrations, x_j)`` with ``x_j ~ p(x | demonstrations)``;
    calibrated ``q = p / p_bar``, renormalised. Fit it on the sampled texts' label
    log-probabilities (``PromptClassifier.sample_texts`` draws them).

    >>> clf.calibrate("generative", n_samples=32, seed=0)            # doctest: +SKIP
    """

    inputs = "samples"
    title = "generative calibration"


class PriorAdaptation(PromptCalibrator):
    """Unsupervised calibration through prior adaptation, UCPA (Estienne, Ferrer, Vera and
    Piantanida 2023, "Unsupervised Calibration through Prior Adaptation for Text
    Classification using Large Language Models", RANLP student workshop, arXiv 2307.06713).

    The calibrated posterior is the model's posterior ``p_ik = p(y_k | q_i, context)`` with a
    per-class log-prior correction, the paper's affine calibration with its scale fixed at 1:

        log q_ik = log p_ik + beta_k + gamma_i,    gamma_i = -log sum_j p_ij exp(beta_j)

    (``gamma_i`` normalises row i). ``beta`` is the fixed point of the paper's iteration over
    the N unlabelled adaptation queries, started from ``gamma_i = 0``:

        beta_k <- log pi_k - log( (1/N) sum_i p_ik exp(gamma_i) ),  then gamma from beta,

    run until ``beta`` moves by less than ``tol`` (llmlab's stopping rule; at most
    ``max_iter`` steps). At the fixed point ``mean_i q_ik = pi_k``; equivalently ``beta``
    minimises the convex maximum-likelihood (logistic-regression) objective with the
    unknown label counts ``N_k`` replaced by ``N pi_k``: ``-(1/N) sum_i sum_k pi_k log q_ik``, whose gradient in
    ``beta_k`` is ``mean_i q_ik - pi_k``. The target prior ``pi``:

    - UCPA: uniform (the default);
    - SUCPA: the task's class frequencies ``N_k / N``: ``prior=[...]``, or
      ``fit(log_probs, labels)`` counts them from the labels (every class must occur);
    - the naive variants: ``max_iter=1``, one step from ``gamma = 0``, i.e.
      ``q_ik ∝ p_ik pi_k / mean_i p_ik`` (batch calibration when ``pi`` is uniform).

    Sources: the paper's abstract and the authors' public code; the method section itself
    could not be read here, so its equation numbers are not cited.

    >>> PriorAdaptation().fit(test_log_probs).transform(test_log_probs).mean(0)  # doctest: +SKIP
    array([0.5, 0.5])
    """

    title = "prior adaptation (UCPA)"

    def __init__(self, prior: list[float] | None = None, max_iter: int = 200,
                 tol: float = 1e-9) -> None:
        super().__init__()
        if prior is not None:
            prior = [float(v) for v in _check_prior(prior)]
        if (not isinstance(max_iter, (int, np.integer)) or isinstance(max_iter, bool)
                or max_iter < 1):
            raise InputError(f"max_iter must be an int >= 1, got {max_iter!r} (1 = the "
                             "paper's naive, one-step variant).")
        self.target, self.max_iter, self.tol = prior, int(max_iter), float(tol)
        self.shift: np.ndarray | None = None
        self.fitted_prior: np.ndarray | None = None
        self.iterations = 0

    def settings(self) -> dict[str, Any]:
        return {"prior": self.target, "max_iter": self.max_iter, "tol": self.tol}

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"shift": self.shift}
        if self.fitted_prior is not None:  # None on one saved before it was kept
            out["fitted_prior"] = self.fitted_prior
        return out

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.shift = arrays["shift"]
        self.fitted_prior = arrays.get("fitted_prior")

    def _fit(self, s: Scores) -> None:
        pi = self._target_prior(s)
        beta, self.iterations = _ucpa_shift(s.log_probs, np.log(pi), self.max_iter, self.tol)
        self.shift, self.fitted_prior = beta, pi

    def _target_prior(self, s: Scores) -> np.ndarray:
        """pi: the ``prior`` setting, the label frequencies (SUCPA), or uniform (UCPA)."""
        k = s.n_classes
        if s.labels is not None:
            if self.target is not None:
                raise InputError("prior adaptation got both prior= and labels; pass one: "
                                 "labels estimate the prior as the class frequencies (SUCPA).")
            counts = np.bincount(s.labels, minlength=k)
            if (counts == 0).any():
                missing = np.flatnonzero(counts == 0).tolist()
                raise InputError(f"labels never show class(es) {missing}, so their "
                                 "frequency (the SUCPA prior) is 0; pass labels of every class "
                                 "or prior=[...] with positive values.")
            return counts / counts.sum()
        if self.target is None:
            return np.full(k, 1.0 / k)
        if len(self.target) != k:
            raise InputError(f"prior has {len(self.target)} values for {k} labels; pass one "
                             "per label.")
        return np.asarray(self.target)

    def _log_transform(self, s: Scores) -> np.ndarray:
        return log_softmax(s.log_probs + self.shift)


def _check_prior(prior: Any) -> np.ndarray:
    """``prior`` as positive probabilities summing to 1, or an InputError."""
    p = np.asarray(prior, dtype=np.float64)
    if p.ndim != 1 or (p <= 0).any() or abs(p.sum() - 1) > 1e-6:
        raise InputError(f"prior must be positive probabilities summing to 1, got "
                         f"{prior!r}; e.g. prior=[0.5, 0.5] (None = uniform).")
    return p


def _ucpa_shift(log_probs: np.ndarray, log_prior: np.ndarray, max_iter: int,
                tol: float) -> tuple[np.ndarray, int]:
    """UCPA's fixed-point iteration (see :class:`PriorAdaptation`) on ``[N, K]`` label
    log-probabilities: ``(beta, steps)``. The first step (from ``gamma = 0``) is the naive
    estimate ``log pi - log mean_i p_i``."""
    log_n = np.log(len(log_probs))
    gamma = np.zeros((len(log_probs), 1))
    beta, steps, moved = np.zeros(log_probs.shape[1]), 0, np.inf
    while steps < max_iter and moved >= tol:
        new = log_prior - np.logaddexp.reduce(log_probs + gamma, axis=0) + log_n
        gamma = -np.logaddexp.reduce(log_probs + new, axis=1, keepdims=True)
        moved, beta, steps = np.abs(new - beta).max(), new, steps + 1
    return beta, steps


# --------------------------------------------------------------------------- prototypical
class PrototypicalCalibration(PromptCalibrator):
    """Prototypical calibration (Han et al. 2022, "Prototypical Calibration for Few-shot
    Learning of Language Models").

    A Gaussian mixture of K components (full covariances, ``reg`` added to their diagonal) is
    fitted by EM to the label *probability* vectors of unlabelled texts; each cluster is then
    matched to one label by the one-to-one assignment maximising ``sum_k mu_{c(k)}[k]`` (the
    mean probability each cluster's texts give its label; see :func:`match_clusters`). The
    calibrated probability of label k is the posterior of its cluster,
    ``pi_c N(p | mu_c, S_c) / sum_c' pi_c' N(p | mu_c', S_c')``. EM starts from ``n_init``
    seeded k-means++-style picks and keeps the best log-likelihood.

    >>> clf.calibrate("prototypical", texts=unlabelled)              # doctest: +SKIP
    """

    title = "prototypical calibration"

    def __init__(self, max_iter: int = 100, n_init: int = 3, reg: float = 1e-4, seed: int = 0,
                 tol: float = 1e-6) -> None:
        super().__init__()
        self.max_iter, self.n_init, self.reg = int(max_iter), int(n_init), float(reg)
        self.seed, self.tol = int(seed), float(tol)
        self.weights = self.means = self.covariances = self.cluster_of = None
        self.log_likelihood = float("nan")

    def min_examples(self, n_classes: int) -> int:
        return 2 * n_classes

    def settings(self) -> dict[str, Any]:
        return {"max_iter": self.max_iter, "n_init": self.n_init, "reg": self.reg,
                "seed": self.seed, "tol": self.tol}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights, "means": self.means, "covariances": self.covariances,
                "cluster_of": self.cluster_of}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights, self.means = arrays["weights"], arrays["means"]
        self.covariances, self.cluster_of = arrays["covariances"], arrays["cluster_of"]

    def _fit(self, s: Scores) -> None:
        x, k = s.probs, s.n_classes
        rng = np.random.default_rng(self.seed)
        best = None
        for _ in range(max(1, self.n_init)):
            fitted = gmm_em(x, _seed_means(x, k, rng), self.reg, self.max_iter, self.tol)
            if best is None or fitted[3] > best[3]:
                best = fitted
        self.weights, self.means, self.covariances, self.log_likelihood = best
        self.cluster_of = match_clusters(self.means)

    def _log_transform(self, s: Scores) -> np.ndarray:
        log_resp = gmm_log_responsibilities(s.probs, self.weights, self.means, self.covariances)
        return log_resp[:, self.cluster_of]


def _seed_means(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k starting means: one random row, then rows drawn with probability ~ squared distance
    to the nearest mean so far (k-means++ seeding, Arthur and Vassilvitskii 2007)."""
    means = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d2 = np.min([((x - m) ** 2).sum(1) for m in means], axis=0)
        total = d2.sum()
        means.append(x[rng.integers(len(x))] if total <= 0 else x[rng.choice(len(x),
                                                                          p=d2 / total)])
    return np.array(means)


def _log_joint(x: np.ndarray, weights: np.ndarray, means: np.ndarray,
               covs: np.ndarray) -> np.ndarray:
    """``[N, C]``: log pi_c + log N(x | mu_c, S_c), all components at once through the
    inverses of their Cholesky factors ``S_c = L_c L_c^T``."""
    chol = np.linalg.cholesky(covs)  # [C, D, D]
    centred = x[None] - means[:, None]  # [C, N, D]
    z = centred @ np.linalg.inv(chol).transpose(0, 2, 1)  # rows L_c^-1 (x - mu_c)
    log_det = 2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1)  # [C]
    log_gauss = -0.5 * ((z ** 2).sum(-1) + log_det[:, None] + x.shape[1] * np.log(2 * np.pi))
    return np.log(weights) + log_gauss.T


def gmm_log_responsibilities(x: np.ndarray, weights: np.ndarray, means: np.ndarray,
                             covs: np.ndarray) -> np.ndarray:
    """``[N, C]`` log posterior of each mixture component for each row of ``x``."""
    return log_softmax(_log_joint(x, weights, means, covs))


def gmm_em(x: np.ndarray, means: np.ndarray, reg: float, max_iter: int, tol: float,
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """EM for a full-covariance Gaussian mixture started from ``means``: (weights, means,
    covariances, mean log-likelihood per row) (Dempster et al. 1977)."""
    n, d = x.shape
    c = len(means)
    eye = reg * np.eye(d)
    # start: hard assignment to the nearest mean, then the M-step
    nearest = ((x[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    resp = np.eye(c)[nearest] + 1e-3
    resp /= resp.sum(1, keepdims=True)
    previous = -np.inf
    for _ in range(max_iter):
        nk = resp.sum(0) + 1e-12
        weights = nk / n
        means = resp.T @ x / nk[:, None]
        centred = x[None] - means[:, None]  # [C, N, D]
        covs = (resp.T[:, :, None] * centred).transpose(0, 2, 1) @ centred
        covs = covs / nk[:, None, None] + eye
        joint = _log_joint(x, weights, means, covs)
        top = joint.max(1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(joint - top).sum(1))
        resp = np.exp(joint - log_norm[:, None])
        ll = float(log_norm.mean())
        if ll - previous < tol:
            break
        previous = ll
    return weights, means, covs, ll


def match_clusters(means: np.ndarray) -> np.ndarray:
    """``cluster_of[k]``: the cluster assigned to label k, maximising ``sum_k means[c(k), k]``
    over one-to-one assignments: exact (dynamic programming over subsets of clusters, the
    assignment problem of Kuhn 1955) up to 12 labels, greedy above.

    >>> match_clusters(np.array([[0.2, 0.8], [0.9, 0.1]])).tolist()
    [1, 0]
    """
    k = means.shape[0]
    if k > _EXACT_MATCH_UP_TO:
        return _greedy_match(means)
    full = (1 << k) - 1
    best = np.full(full + 1, -np.inf)
    last = np.zeros(full + 1, dtype=np.int64)  # cluster given to the newest label of a subset
    best[0] = 0.0
    for used in range(full):
        if best[used] == -np.inf:
            continue
        label = bin(used).count("1")
        for c in range(k):
            if not used >> c & 1:
                value, grown = best[used] + means[c, label], used | 1 << c
                if value > best[grown]:
                    best[grown], last[grown] = value, c
    cluster_of, used = np.zeros(k, dtype=np.int64), full
    for label in range(k - 1, -1, -1):
        cluster_of[label] = last[used]
        used ^= 1 << int(last[used])
    return cluster_of


_EXACT_MATCH_UP_TO = 12


def _greedy_match(means: np.ndarray) -> np.ndarray:
    """Repeatedly give the largest remaining ``means[c, k]`` its pair (many labels)."""
    k = means.shape[0]
    cluster_of = np.full(k, -1, dtype=np.int64)
    score = means.astype(np.float64).copy()
    for _ in range(k):
        c, j = np.unravel_index(np.argmax(score), score.shape)
        cluster_of[j] = c
        score[c, :], score[:, j] = -np.inf, -np.inf
    return cluster_of


# --------------------------------------------------------------------------- supervised
class LinearProbeCalibration(PromptCalibrator):
    """Linear-probe calibration, LinC (Abbas et al. 2024, "Enhancing In-context Learning via
    Linear Probe Calibration", AISTATS): an affine map of the label *probabilities*,
    ``q = softmax(A p + b)``, fitted on a few labelled examples by minimising the
    cross-entropy (plus ``l2 * (|A - I|^2 + |b|^2)``), starting from ``A = I, b = 0``.

    >>> clf.calibrate("linc", texts=few_texts, labels=few_labels)    # doctest: +SKIP
    """

    inputs = "labelled"
    needs_labels = True
    title = "linear-probe calibration (LinC)"

    def __init__(self, l2: float = 0.0, max_iter: int = 300) -> None:
        super().__init__()
        self.l2, self.max_iter = float(l2), int(max_iter)
        self.weight = self.bias = None

    def min_examples(self, n_classes: int) -> int:
        return n_classes

    def settings(self) -> dict[str, Any]:
        return {"l2": self.l2, "max_iter": self.max_iter}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"weight": self.weight, "bias": self.bias}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.weight, self.bias = arrays["weight"], arrays["bias"]

    def _fit(self, s: Scores) -> None:
        p, y = torch.from_numpy(s.probs), torch.from_numpy(s.labels)
        k = s.n_classes
        a = torch.eye(k, dtype=torch.float64).requires_grad_(True)
        b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
        eye = torch.eye(k, dtype=torch.float64)

        def loss() -> torch.Tensor:
            value = F.cross_entropy(p @ a.T + b, y)
            if self.l2:
                value = value + self.l2 * (((a - eye) ** 2).sum() + (b ** 2).sum())
            return value

        _fit_small(lambda: _minimise([a, b], loss, self.max_iter))
        self.weight, self.bias = a.detach().numpy().copy(), b.detach().numpy().copy()

    def _log_transform(self, s: Scores) -> np.ndarray:
        return log_softmax(s.probs @ self.weight.T + self.bias)


def _fit_small(run: Any) -> None:
    """Run a fit on one torch thread: the tensors here are ``[N, K]`` with small K, where
    intra-op threads only add synchronisation (and stall beside a busy core)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run()
    finally:
        torch.set_num_threads(threads)


def one_vs_rest_logits(log_probs: np.ndarray) -> np.ndarray:
    """``log p_k - log(1 - p_k)`` per label, with ``1 - p_k`` summed from the other labels."""
    k = log_probs.shape[1]
    rest = np.stack([np.logaddexp.reduce(np.delete(log_probs, j, axis=1), axis=1)
                     for j in range(k)], axis=1)
    return log_probs - rest


class SupervisedCalibration(PromptCalibrator):
    """Supervised calibration, SC (Gundem et al. 2025, "Boosting In-Context Learning in LLMs
    Through the Lens of Classical Supervised Learning", arXiv 2505.23783).

    A per-class affine map in logit space: with ``l_k = log(p_k / (1 - p_k))`` each label's
    log-odds, ``q = softmax(w * l + b)`` (``w``, ``b`` in R^K; a negative ``w_k`` may reverse
    the model's decision direction, which prior-shifting methods cannot). Fitted by
    minimising the cross-entropy plus the paper's two regularisers, in llmlab's form:

    - trust region, ``trust * sum_k ((w_k - 1)^2 + b_k^2)``: how far the map may move from
      the uncalibrated model (0 = unconstrained; the default 0.01 keeps the map finite on
      the few, often separable, examples a context gives);
    - context invariance, ``invariance * mean_i |q_i - mean_{j in g(i)} q_j|^2`` over
      ``groups`` (the same query scored under different demonstration sets or orders: its
      calibrated prediction should not depend on the context).

    ``PromptClassifier.calibrate("supervised")`` with no texts builds the training set from
    the demonstrations alone, as the paper does: each demonstration scored with the others as
    context, in two orders (a group per demonstration).

    >>> cal = SupervisedCalibration(trust=0.1).fit(log_probs, labels)   # doctest: +SKIP
    """

    inputs = "labelled"
    needs_labels = True
    title = "supervised calibration (SC)"

    def __init__(self, trust: float = 0.01, invariance: float = 0.0, max_iter: int = 300,
                 ) -> None:
        super().__init__()
        for name, v in (("trust", trust), ("invariance", invariance)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= 0:
                raise InputError(f"{name} must be a number >= 0, got {v!r}.")
        self.trust, self.invariance, self.max_iter = float(trust), float(invariance), max_iter
        self.weight = self.bias = None

    def min_examples(self, n_classes: int) -> int:
        return n_classes

    def settings(self) -> dict[str, Any]:
        return {"trust": self.trust, "invariance": self.invariance, "max_iter": self.max_iter}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"weight": self.weight, "bias": self.bias}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.weight, self.bias = arrays["weight"], arrays["bias"]

    def fit(self, scores: Any, labels: Any = None, *, kind: Kind = "auto",
            groups: Any = None) -> SupervisedCalibration:
        """As :meth:`PromptCalibrator.fit`; ``groups`` (one id per row) marks rows that are
        the same query under different contexts, for the context-invariance term."""
        self._groups = None if groups is None else check_labels(groups, None, None, "groups")
        rows = len(to_numpy(scores, "label log-probabilities"))
        if self._groups is not None and len(self._groups) != rows:
            raise InputError(f"{len(self._groups)} groups for {rows} rows; pass one group id "
                             "per row.")
        if self.invariance and self._groups is None:
            raise InputError(
                f"invariance={self.invariance} needs groups: one id per row, the same id for "
                "the same query scored under different contexts. Pass groups=..., or use "
                "invariance=0 (clf.calibrate('supervised') without texts builds the groups "
                "from the demonstrations)."
            )
        try:
            return super().fit(scores, labels, kind=kind)
        finally:
            del self._groups

    def _fit(self, s: Scores) -> None:
        z = torch.from_numpy(one_vs_rest_logits(s.log_probs))
        y = torch.from_numpy(s.labels)
        k = s.n_classes
        w = torch.ones(k, dtype=torch.float64, requires_grad=True)
        b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
        groups = self._groups
        if groups is not None:
            g = torch.from_numpy(np.unique(groups, return_inverse=True)[1])
            counts = torch.bincount(g).double()[:, None]

        def loss() -> torch.Tensor:
            logits = z * w + b
            value = F.cross_entropy(logits, y)
            if self.trust:
                value = value + self.trust * (((w - 1) ** 2).sum() + (b ** 2).sum())
            if self.invariance and groups is not None:
                q = torch.softmax(logits, 1)
                means = torch.zeros(len(counts), k, dtype=q.dtype).index_add(0, g, q) / counts
                value = value + self.invariance * ((q - means[g]) ** 2).sum(1).mean()
            return value

        _fit_small(lambda: _minimise([w, b], loss, self.max_iter))
        self.weight, self.bias = w.detach().numpy().copy(), b.detach().numpy().copy()

    def _log_transform(self, s: Scores) -> np.ndarray:
        return log_softmax(one_vs_rest_logits(s.log_probs) * self.weight + self.bias)


# --------------------------------------------------------------------------- hidden states
class HiddenStateCalibration(PromptCalibrator):
    """Hidden calibration (Cho et al. 2024, "Token-based Decision Criteria Are Suboptimal in
    In-context Learning"): classify by the nearest class centroid of the LM's last hidden
    state (at the position that predicts the label), not by the label tokens' scores.

    ``fit(hidden [N, D], labels)`` stores each class's mean hidden state ``c_k``; the
    probabilities are those of an isotropic Gaussian per class with the pooled within-class
    variance ``s^2`` (per dimension): ``q_k = softmax_k(-|h - c_k|^2 / (2 s^2))``, whose
    argmax is the nearest centroid. Its inputs are hidden states, not label scores, so
    ``PromptClassifier.hidden_states(texts)`` gives them.

    >>> clf.calibrate("hidden", texts=train_texts, labels=train_labels)   # doctest: +SKIP
    """

    inputs = "hidden"
    needs_labels = True
    title = "hidden-state calibration"

    def __init__(self, n_classes: int | None = None) -> None:
        super().__init__()
        self.classes = n_classes
        self.centroids: np.ndarray | None = None
        self.variance: float | None = None

    def settings(self) -> dict[str, Any]:
        return {"n_classes": self.classes}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"centroids": self.centroids, "variance": np.array([self.variance])}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.centroids, self.variance = arrays["centroids"], float(arrays["variance"][0])

    def _features(self, hidden: Any) -> np.ndarray:
        """``[N, D]`` float64 features (one score per example, ``[N]``, is a width of 1)."""
        h = to_numpy(hidden, "hidden states")
        if h.dtype == bool or h.dtype.kind not in "iuf":
            raise InputError(f"hidden states must be numbers, got dtype {h.dtype}; get them "
                             "with clf.hidden_states(texts).")
        h = h.astype(np.float64).reshape(len(h), -1) if h.ndim == 1 else h.astype(np.float64)
        if h.ndim != 2 or not len(h):
            raise InputError(f"hidden states must be [N, D] (one vector per text), got shape "
                             f"{h.shape}; get them with clf.hidden_states(texts).")
        if not np.isfinite(h).all():
            raise InputError("hidden states contain NaN or inf; check that the model's weights "
                             "are finite (a diverged run? reload the last good checkpoint).")
        return h

    def fit(self, hidden: Any, labels: Any = None, *, kind: Kind = "auto",
            ) -> HiddenStateCalibration:
        """Class centroids of ``hidden`` ``[N, D]`` under ``labels``; returns self."""
        if labels is None:
            raise InputError(f"{self.title} is supervised: pass labels, e.g. "
                             "cal.fit(clf.hidden_states(texts), labels).")
        h = self._features(hidden)
        y = check_labels(labels, len(h), self.classes)
        k = self.classes or int(y.max()) + 1
        missing = sorted(set(range(k)) - set(y.tolist()))
        if missing or k < 2:
            raise InputError(f"{self.title} needs at least one example of each of the "
                             f"{max(k, 2)} classes; none of class {missing[0] if missing else 1}"
                             f" among {len(y)}. Pass at least {max(k, 2)} labelled texts "
                             "covering every class.")
        self.centroids = np.stack([h[y == j].mean(0) for j in range(k)])
        within = ((h - self.centroids[y]) ** 2).sum() / h.size
        self.variance = float(max(within, 1e-12))
        self.n_classes, self.fit_kind = k, "hidden"
        self.fit_info = {"n": len(h), "binary_1d": np.ndim(hidden) == 1}
        return self

    def _log_scores(self, h: np.ndarray) -> np.ndarray:
        self._check_fitted()
        if h.shape[1] != self.centroids.shape[1]:
            raise InputError(f"hidden states of width {h.shape[1]}, but the centroids were "
                             f"fitted on width {self.centroids.shape[1]}; use the same model.")
        c = self.centroids
        # |h - c|^2 expanded: no [N, K, D] temporary for wide hidden states
        d2 = (h ** 2).sum(1)[:, None] - 2 * h @ c.T + (c ** 2).sum(1)[None]
        return log_softmax(-np.maximum(d2, 0.0) / (2 * self.variance))

    def transform(self, hidden: Any, *, kind: Kind = "auto") -> Any:
        """Class probabilities ``[N, K]`` for hidden states ``[N, D]`` (``[N]`` of class 1
        for ``[N]`` inputs of a two-class fit, as the other calibrators do)."""
        h = self._features(hidden)
        probs = np.exp(self._log_scores(h))
        one_column = np.ndim(hidden) == 1 and self.n_classes == 2
        return _like_input(hidden, probs[:, 1] if one_column else probs)

    def transform_log_probs(self, hidden: Any, *, kind: Kind = "auto") -> np.ndarray:
        """Class log-probabilities ``[N, K]`` for hidden states ``[N, D]``."""
        return self._log_scores(self._features(hidden))


# --------------------------------------------------------------------------- names
#: the names PromptClassifier.calibrate takes -> calibrator classes (the post-hoc
#: calibrators fit on labelled texts' label scores; any REGISTRY class name works too)
METHODS: dict[str, type[Calibrator]] = {
    "none": NoCalibration, "contextual": ContextualCalibration,
    "domain": DomainContextCalibration, "batch": BatchCalibration,
    "generative": GenerativeCalibration, "prior": PriorAdaptation,
    "prototypical": PrototypicalCalibration, "linc": LinearProbeCalibration,
    "supervised": SupervisedCalibration, "hidden": HiddenStateCalibration,
    "temperature": TemperatureScaling, "vector": VectorScaling, "matrix": MatrixScaling,
    "isotonic": IsotonicCalibration, "histogram": HistogramBinning,
}
_ = PlattScaling  # reached by its class name, "PlattScaling" (two classes only)


def method_name(cal: Calibrator) -> str:
    """The short name of a calibrator's method ("contextual"), else its class name."""
    return next((name for name, cls in METHODS.items() if type(cal) is cls),
                type(cal).__name__)


def inputs_of(cal: Calibrator) -> str:
    """What a PromptClassifier fits ``cal`` on: a prompted calibrator's ``inputs``, and
    "labelled" (labelled texts' label scores) for every other calibrator."""
    return getattr(cal, "inputs", "labelled")


def make_calibrator(method: str | Calibrator, n_classes: int, **settings: Any) -> Calibrator:
    """A new calibrator for a method name (``METHODS`` or a ``REGISTRY`` class name), or
    ``method`` itself when it already is one.

    >>> type(make_calibrator("contextual", 2)).__name__
    'ContextualCalibration'
    """
    if isinstance(method, Calibrator):
        if settings:
            raise InputError(f"settings {sorted(settings)} were given with a calibrator "
                             "object; pass them to its constructor instead.")
        return method
    cls = METHODS.get(method) if isinstance(method, str) else None
    cls = cls or (REGISTRY.get(method) if isinstance(method, str) else None)
    if cls is None:
        import difflib

        names = [*METHODS, *sorted(n for n in REGISTRY if not n.startswith("_"))]
        close = difflib.get_close_matches(str(method).lower(), [n.lower() for n in names], 1,
                                          0.5)
        hint = ""
        if close:
            hint = f" Did you mean {next(n for n in names if n.lower() == close[0])!r}?"
        raise InputError(f"unknown calibration {method!r}; use one of {list(METHODS)} or a "
                         f"calibrator class name from llmlab.calibrate.REGISTRY.{hint}")
    if cls is HiddenStateCalibration:
        settings.setdefault("n_classes", n_classes)
    try:
        return cls(**settings)
    except TypeError as err:
        raise InputError(f"{cls.__name__} does not take these settings ({err}).") from None
