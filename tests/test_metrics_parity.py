"""llmlab.metrics and llmlab.calibrate against the reference implementations, on fixed random
data made here: smECE with relplot (Blasiok & Nakkiran's own package), binned calibration
errors with torchmetrics, classification scores with scikit-learn, temperature scaling with
scikit-learn's CalibratedClassifierCV(method="temperature"). Also the smECE bootstrap
interval's basic properties."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

import llmlab.calibrate as cal
from llmlab import metrics

relplot = pytest.importorskip("relplot")
tm = pytest.importorskip("torchmetrics.classification")
sk = pytest.importorskip("sklearn.metrics")
sk_calibration = pytest.importorskip("sklearn.calibration")
from sklearn.base import BaseEstimator, ClassifierMixin  # noqa: E402
from sklearn.frozen import FrozenEstimator  # noqa: E402

SEEDS = (0, 1, 2)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def multiclass(seed, n=600, k=5):
    """Logits of a model that is right more often than chance and too sure of itself."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    return (1.5 + seed) * (rng.normal(size=(n, k)) + 1.3 * np.eye(k)[y]), y


def mild(seed, n=600, k=5):
    """Logits whose probabilities rarely fall within 0.001 of 0 or 1 (see the relplot tests)."""
    rng = np.random.default_rng(50 + seed)
    y = rng.integers(0, k, n)
    return (0.8 + 0.3 * seed) * (rng.normal(size=(n, k)) + 1.3 * np.eye(k)[y]), y


def binary(seed, n=500):
    """Probabilities of class 1 whose truth bends away from them (both signs of error)."""
    rng = np.random.default_rng(100 + seed)
    p = rng.beta(0.7 + seed, 1.0, size=n)
    truth = np.clip(p + (0.1 + 0.05 * seed) * np.sin(2 * np.pi * p), 0, 1)
    return p, (rng.uniform(size=n) < truth).astype(np.int64)


# --------------------------------------------------------------------------- relplot
# relplot smooths on a grid of 1,001 points and mirrors the grid about its end points, which
# counts a score within 0.001 of 0 or 1 once where the reflected kernel counts it twice; on
# data with much mass there (class-wise probabilities of a sharp model) it reads several
# thousandths high. llmlab follows the definition there (tests/test_evaluate.py checks it
# against a direct sum over mirror images), so the comparisons use data away from the ends.
@pytest.mark.parametrize("seed", SEEDS)
def test_smooth_ece_matches_relplot_binary(seed):
    p, y = binary(seed)
    reference, width = relplot.smECE(p, y.astype(float), return_width=True)
    assert metrics.smooth_ece(p, y) == pytest.approx(reference, abs=1e-3)
    # relplot bisects to 2**-10 and keeps the upper end of its bracket
    bandwidth = metrics.smooth_reliability_curve(p, y, n_boot=1)["bandwidth"][0]
    assert bandwidth == pytest.approx(width, abs=2e-3)
    for sigma in (0.03, 0.1):
        assert metrics.smooth_ece(p, y, bandwidth=sigma) == pytest.approx(
            relplot.smECE_sigma(p, y.astype(float), sigma), abs=1e-3)


@pytest.mark.parametrize("seed", SEEDS)
def test_smooth_ece_matches_relplot_multiclass(seed):
    logits, y = mild(seed)
    assert (softmax(logits) < 1e-3).mean() < 0.01
    confidence, correct = relplot.multiclass_logits_to_confidences(logits, y)
    assert metrics.smooth_ece(logits, y) == pytest.approx(
        relplot.smECE(confidence, correct), abs=1e-3)
    probs = softmax(logits)
    per_class = [relplot.smECE(probs[:, k], (y == k).astype(float)) for k in range(5)]
    assert metrics.smooth_ece(probs, y, variant="classwise") == pytest.approx(
        np.mean(per_class), abs=1e-3)
    report = metrics.evaluate(logits, y)
    assert metrics.report_value(report, "smece", "top_label") == pytest.approx(
        relplot.smECE(confidence, correct), abs=1e-3)


# --------------------------------------------------------------------------- torchmetrics
@pytest.mark.parametrize("seed", SEEDS)
def test_binned_calibration_errors_match_torchmetrics(seed):
    logits, y = multiclass(seed)
    probs = softmax(logits)
    preds, target = torch.tensor(probs), torch.tensor(y)

    def reference(norm):
        metric = tm.MulticlassCalibrationError(num_classes=5, n_bins=15, norm=norm)
        return float(metric(preds, target))

    # torchmetrics' l2 is the plug-in root-mean-square bin gap (no debiasing), equal-width bins
    ours = {"l1": metrics.ece(probs, y, n_bins=15),
            "l2": metrics.l2_calibration_error(probs, y, n_bins=15, scheme="equal_width",
                                               debias=False),
            "max": metrics.mce(probs, y, n_bins=15)}
    for norm, value in ours.items():
        assert value == pytest.approx(reference(norm), abs=1e-6), norm
    report = metrics.evaluate(probs, y, n_bins=15)
    assert metrics.report_value(report, "ece", "top_label", "equal_width") == pytest.approx(
        reference("l1"), abs=1e-6)
    assert metrics.report_value(report, "mce", "top_label") == pytest.approx(
        reference("max"), abs=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_positive_class_ece_matches_torchmetrics_binary(seed):
    p, y = binary(seed)
    report = metrics.evaluate(p, y, n_bins=15)
    for norm, (metric, variant) in {"l1": ("ece", "positive_class")}.items():
        reference = float(tm.BinaryCalibrationError(n_bins=15, norm=norm)(
            torch.tensor(p), torch.tensor(y)))
        assert metrics.report_value(report, metric, variant) == pytest.approx(reference,
                                                                               abs=1e-6)


# --------------------------------------------------------------------------- scikit-learn
def close(ours, reference):
    assert abs(ours - reference) <= 1e-9, (ours, reference)


@pytest.mark.parametrize("seed", SEEDS)
def test_scores_match_sklearn_multiclass(seed):
    logits, y = multiclass(seed)
    probs, pred = softmax(logits), logits.argmax(1)
    report = metrics.evaluate(logits, y)
    close(metrics.report_value(report, "accuracy"), sk.accuracy_score(y, pred))
    for average in ("macro", "micro", "weighted"):
        close(metrics.report_value(report, "f1", average),
              sk.f1_score(y, pred, average=average, labels=range(5), zero_division=0))
    close(metrics.report_value(report, "nll"), sk.log_loss(y, probs))
    close(metrics.report_value(report, "brier", "multiclass"),
          sk.brier_score_loss(y, probs, labels=range(5)))
    close(metrics.report_value(report, "roc_auc"),
          sk.roc_auc_score(y, probs, multi_class="ovr", average="macro"))


@pytest.mark.parametrize("seed", SEEDS)
def test_scores_match_sklearn_binary(seed):
    p, y = binary(seed)
    pred = (p > 0.5).astype(int)
    report = metrics.evaluate(p, y)
    close(metrics.report_value(report, "accuracy"), sk.accuracy_score(y, pred))
    for average in ("macro", "micro", "weighted", "binary"):
        close(metrics.report_value(report, "f1", average),
              sk.f1_score(y, pred, average=average, zero_division=0))
    close(metrics.report_value(report, "nll"), sk.log_loss(y, p))
    close(metrics.report_value(report, "brier", "positive_class"), sk.brier_score_loss(y, p))
    close(metrics.report_value(report, "roc_auc", "binary"), sk.roc_auc_score(y, p))


class Passthrough(ClassifierMixin, BaseEstimator):
    """A 'fitted' classifier whose decision function is its input (the logits)."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def decision_function(self, X):
        return X

    def predict(self, X):
        return self.classes_[(X > 0).astype(int) if X.ndim == 1 else X.argmax(1)]


def sklearn_temperature(scores, y):
    peer = sk_calibration.CalibratedClassifierCV(
        FrozenEstimator(Passthrough().fit(scores, y)), method="temperature").fit(scores, y)
    return 1.0 / float(peer.calibrated_classifiers_[0].calibrators[0].beta_)


@pytest.mark.parametrize("seed", SEEDS)
def test_temperature_matches_sklearn(seed):
    logits, y = multiclass(seed, n=1000)
    ours = cal.TemperatureScaling().fit(logits, y).temperature
    assert ours == pytest.approx(sklearn_temperature(logits, y), rel=0.01)


def test_binary_temperature_matches_sklearn():
    p, y = binary(0, n=2000)
    log_odds = 3.0 * np.log(p / (1 - p))  # over-confident
    ours = cal.TemperatureScaling().fit(log_odds, y).temperature
    # scikit-learn turns a binary decision d into the logits (-d, d): pass half the log-odds
    assert ours == pytest.approx(sklearn_temperature(log_odds / 2, y), rel=0.01)


# --------------------------------------------------------------------------- smECE interval
def test_interval_contains_the_value_and_nests():
    logits, y = multiclass(0)
    for variant in ("top_label", "classwise"):
        value, low, high = metrics.smooth_ece_interval(logits, y, variant=variant, n_boot=100)
        assert value == pytest.approx(metrics.smooth_ece(logits, y, variant=variant))
        assert low <= value <= high and low < high
    _, low50, high50 = metrics.smooth_ece_interval(logits, y, level=0.5, n_boot=100)
    _, low95, high95 = metrics.smooth_ece_interval(logits, y, level=0.95, n_boot=100)
    assert low95 <= low50 < high50 <= high95  # same seed, same resamples


def test_interval_narrows_with_more_data():
    widths = []
    for n in (300, 3000):
        p, y = binary(1, n=n)
        _, low, high = metrics.smooth_ece_interval(p, y)
        widths.append(high - low)
    assert widths[1] < 0.6 * widths[0]  # ~ 1 / sqrt(10) expected


def test_interval_is_reproducible():
    p, y = binary(2)
    first = metrics.smooth_ece_interval(p, y, seed=7)
    assert metrics.smooth_ece_interval(p, y, seed=7) == first
    assert metrics.smooth_ece_interval(p, y, seed=8)[1:] != first[1:]
    fixed = metrics.smooth_ece_interval(p, y, bandwidth=0.05, n_boot=50)
    assert fixed[0] == pytest.approx(metrics.smooth_ece(p, y, bandwidth=0.05))


def test_interval_on_a_report_row():
    """The interval of evaluate()'s smece row (what calibration reports show)."""
    logits, y = multiclass(1)
    report = metrics.evaluate(logits, y)
    value, low, high = metrics.smooth_ece_interval(softmax(logits), y)
    assert value == pytest.approx(metrics.report_value(report, "smece", "top_label"), abs=1e-9)
    assert report.filter(pl.col("metric") == "smece").height == 2 and low < value < high
