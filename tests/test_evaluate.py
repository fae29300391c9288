"""llmlab.metrics against scikit-learn where it has the metric, and against hand-computed
values where it has not (ECE, MCE, classwise ECE, the debiased L2 calibration error)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from llmlab import metrics
from llmlab.errors import InputError

sk = pytest.importorskip("sklearn.metrics")


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def multi():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    logits = 2.0 * rng.normal(size=(400, 4)) + 1.5 * np.eye(4)[y]
    return logits, y


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    log_odds = 2.0 * rng.normal(size=300) + 1.2 * (2 * y - 1)
    return log_odds, y


def value(report, metric, variant, scheme=None):
    rows = report.filter((pl.col("metric") == metric) & (pl.col("variant") == variant))
    if scheme is not None:
        rows = rows.filter(pl.col("scheme") == scheme)
    assert rows.height == 1, (metric, variant, scheme)
    return rows["value"].item()


# --------------------------------------------------------------------------- vs scikit-learn
def test_classification_metrics_match_sklearn(multi):
    logits, y = multi
    pred = logits.argmax(1)
    labels = list(range(4))
    report = metrics.evaluate(logits, y)
    assert value(report, "accuracy", "top1") == pytest.approx(sk.accuracy_score(y, pred))
    for average in ("macro", "micro", "weighted"):
        p, r, f, _ = sk.precision_recall_fscore_support(y, pred, average=average, labels=labels,
                                                        zero_division=0)
        assert value(report, "precision", average) == pytest.approx(p)
        assert value(report, "recall", average) == pytest.approx(r)
        assert value(report, "f1", average) == pytest.approx(f)
        assert metrics.precision_recall_f1(logits, y, average=average) == pytest.approx((p, r, f))
    p, r, f, support = sk.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    table = metrics.per_class(logits, y, label_names=["a", "b", "c", "d"])
    assert table["name"].to_list() == ["a", "b", "c", "d"]
    assert np.allclose(table["precision"], p) and np.allclose(table["recall"], r)
    assert np.allclose(table["f1"], f) and table["support"].to_list() == support.tolist()
    assert np.array_equal(metrics.confusion_matrix(logits, y),
                          sk.confusion_matrix(y, pred, labels=labels))


def test_binary_metrics_match_sklearn(binary):
    log_odds, y = binary
    p1 = 1 / (1 + np.exp(-log_odds))
    pred = (p1 > 0.5).astype(int)
    report = metrics.evaluate(log_odds, y)
    p, r, f, _ = sk.precision_recall_fscore_support(y, pred, average="binary")
    assert value(report, "precision", "binary") == pytest.approx(p)
    assert value(report, "recall", "binary") == pytest.approx(r)
    assert value(report, "f1", "binary") == pytest.approx(f)
    assert value(report, "roc_auc", "binary") == pytest.approx(sk.roc_auc_score(y, p1))
    assert value(report, "nll", "mean") == pytest.approx(sk.log_loss(y, p1))
    assert value(report, "brier", "positive_class") == pytest.approx(sk.brier_score_loss(y, p1))
    assert value(report, "brier", "multiclass") == pytest.approx(
        sk.brier_score_loss(y, p1, scale_by_half=False))


def test_probabilistic_metrics_match_sklearn(multi):
    logits, y = multi
    probs = softmax(logits)
    assert metrics.roc_auc(logits, y) == pytest.approx(
        sk.roc_auc_score(y, probs, multi_class="ovr", average="macro"))
    assert metrics.nll(logits, y) == pytest.approx(sk.log_loss(y, probs))
    assert metrics.nll(probs, y) == pytest.approx(sk.log_loss(y, probs))
    assert metrics.brier_score(logits, y) == pytest.approx(
        sk.brier_score_loss(y, probs, labels=[0, 1, 2, 3]))


def test_roc_auc_counts_ties_as_half():
    y = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    score = np.array([0.2, 0.5, 0.5, 0.9, 0.2, 0.1, 0.5, 0.9])  # many ties
    assert metrics.roc_auc(score, y) == pytest.approx(sk.roc_auc_score(y, score))
    assert math.isnan(metrics.roc_auc([0.2, 0.8], [1, 1]))  # a single class: undefined


# --------------------------------------------------------------------------- hand-computed
# Six examples; top-label confidences .95 .85 .80 .62 .55 .45 (the last from a 3-class row),
# correct: yes no yes yes no yes.
HAND_PROBS = np.array([
    [0.95, 0.05, 0.00], [0.15, 0.85, 0.00], [0.80, 0.10, 0.10],
    [0.38, 0.62, 0.00], [0.55, 0.45, 0.00], [0.30, 0.25, 0.45],
])
HAND_LABELS = np.array([0, 0, 0, 1, 1, 2])


def test_ece_and_mce_by_hand():
    # 5 equal-width bins (lo, hi]: (.8, 1] holds .95, .85 (acc 1/2, conf .9);
    # (.6, .8] holds .80, .62 (acc 1, conf .71); (.4, .6] holds .55, .45 (acc 1/2, conf .5)
    expected = (2 * abs(0.5 - 0.9) + 2 * abs(1 - 0.71) + 2 * abs(0.5 - 0.5)) / 6
    assert metrics.ece(HAND_PROBS, HAND_LABELS, n_bins=5) == pytest.approx(expected)
    assert metrics.mce(HAND_PROBS, HAND_LABELS, n_bins=5) == pytest.approx(0.4)
    # 3 equal-mass bins by confidence: {.45, .55}, {.62, .80}, {.85, .95}
    expected = (2 * abs(0.5 - 0.5) + 2 * abs(1 - 0.71) + 2 * abs(0.5 - 0.9)) / 6
    assert metrics.ece(HAND_PROBS, HAND_LABELS, n_bins=3, scheme="equal_mass") == pytest.approx(
        expected)
    table = metrics.reliability_table(HAND_PROBS, HAND_LABELS, n_bins=5)
    assert table["count"].to_list() == [0, 0, 2, 2, 2]
    assert table["accuracy"].to_list()[2:] == pytest.approx([0.5, 1.0, 0.5])
    assert table["accuracy"][0] is None  # empty bins are null, not NaN


def test_right_closed_bins_by_hand():
    # confidence exactly 0.6 belongs to (0.4, 0.6] with 5 bins: gap |1 - 0.6|
    assert metrics.ece([[0.6, 0.4]], [0], n_bins=5) == pytest.approx(0.4)
    table = metrics.reliability_table([[0.6, 0.4]], [0], n_bins=5)
    assert table["count"].to_list() == [0, 0, 1, 0, 0]


def test_classwise_ece_by_hand():
    probs = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    # class 0 with 2 bins (0, .5], (.5, 1]: {.2, .4} freq 0 -> gap .3; {.9, .7} freq .5 -> .3
    # class 1: {.1, .3} freq .5 -> gap .3; {.8, .6} freq 1 -> gap .3
    assert metrics.classwise_ece(probs, y, n_bins=2) == pytest.approx(0.3)
    assert value(metrics.evaluate(probs, y, n_bins=2), "ece", "positive_class") == pytest.approx(
        0.3)


def test_debiased_l2_calibration_error_by_hand():
    conf = np.array([0.6, 0.6, 0.6, 0.6, 0.9, 0.9, 0.9, 0.9])
    probs = np.stack([conf, 1 - conf], axis=1)
    y = np.array([0, 0, 0, 1, 0, 0, 1, 1])  # bins: acc .75 (conf .6), acc .5 (conf .9)
    plug_in = 0.5 * (0.75 - 0.6) ** 2 + 0.5 * (0.5 - 0.9) ** 2
    debiased = plug_in - 0.5 * 0.75 * 0.25 / 3 - 0.5 * 0.5 * 0.5 / 3
    kw = dict(n_bins=2, scheme="equal_mass")
    assert metrics.l2_calibration_error(probs, y, debias=False, **kw) == pytest.approx(
        math.sqrt(plug_in))
    assert metrics.l2_calibration_error(probs, y, **kw) == pytest.approx(math.sqrt(debiased))
    # perfectly calibrated scores give ~0 after debiasing but a clearly positive plug-in value
    rng = np.random.default_rng(0)
    p = rng.uniform(0.5, 1.0, 20_000)
    hits = rng.uniform(size=p.size) < p
    calibrated = np.stack([p, 1 - p], axis=1)
    y = np.where(hits, 0, 1)
    assert metrics.l2_calibration_error(calibrated, y, n_bins=100) < 0.01
    assert metrics.l2_calibration_error(calibrated, y, n_bins=100, debias=False) > 0.015


def test_perplexity_numpy_and_torch():
    assert metrics.perplexity(np.zeros((2, 3, 7)), np.array([[1, 2, 3], [4, 5, -100]])) == (
        pytest.approx(7.0))
    logits = torch.randn(2, 5, 11, generator=torch.Generator().manual_seed(0))
    targets = torch.randint(0, 11, (2, 5))
    targets[1, 3:] = -100
    expected = math.exp(torch.nn.functional.cross_entropy(
        logits.reshape(-1, 11), targets.reshape(-1), ignore_index=-100).item())
    assert metrics.perplexity(logits, targets) == pytest.approx(expected, rel=1e-5)
    assert metrics.perplexity(logits.numpy(), targets.numpy()) == pytest.approx(expected, rel=1e-5)


# --------------------------------------------------------------------------- layouts
def test_every_binary_layout_gives_the_same_report(binary):
    log_odds, y = binary
    p1 = 1 / (1 + np.exp(-log_odds))
    base = metrics.evaluate(log_odds, y)["value"].to_numpy()
    for scores, kind in [(p1, "auto"), (p1[:, None], "auto"), (np.stack([1 - p1, p1], 1), "auto"),
                         (np.stack([np.zeros_like(log_odds), log_odds], 1), "auto"),
                         (torch.tensor(log_odds), "auto"), (p1.tolist(), "probs")]:
        assert np.allclose(metrics.evaluate(scores, y, kind=kind)["value"].to_numpy(), base)


def test_logits_and_probabilities_and_torch_agree(multi):
    logits, y = multi
    base = metrics.evaluate(logits, y)["value"].to_numpy()
    for scores in (softmax(logits), torch.tensor(logits, dtype=torch.float32),
                   torch.tensor(softmax(logits))):
        assert np.allclose(metrics.evaluate(scores, torch.tensor(y))["value"].to_numpy(), base,
                           atol=1e-5)


def test_auto_detection_and_explicit_kind():
    probs = np.array([[0.2, 0.8], [0.6, 0.4]])
    assert metrics.prepare(probs).kind == "probs"
    assert metrics.prepare(probs, kind="logits").kind == "logits"
    assert metrics.prepare(np.array([[2.0, -1.0]])).kind == "logits"
    assert metrics.prepare([0.3, 0.9]).kind == "probs"
    assert metrics.prepare([0.3, 1.9]).kind == "logits"
    assert np.allclose(metrics.probabilities([[0.0, 0.0]], kind="logits"), 0.5)


def test_report_shape_and_binned_rows(multi, binary):
    report = metrics.evaluate(*multi, n_bins=10)
    assert report.columns == ["metric", "variant", "value", "bins", "scheme"]
    binned = report.filter(pl.col("scheme").is_not_null())
    assert set(binned["metric"]) == {"ece", "mce", "l2_ce"}
    assert binned["bins"].to_list() == [10] * binned.height
    assert report.filter(pl.col("scheme").is_null())["bins"].null_count() == (
        report.height - binned.height)
    assert set(zip(binned["metric"], binned["variant"], binned["scheme"])) == {
        ("ece", "top_label", "equal_width"), ("ece", "top_label", "equal_mass"),
        ("mce", "top_label", "equal_width"), ("ece", "classwise", "equal_width"),
        ("l2_ce", "top_label_debiased", "equal_mass")}
    assert "binary" not in report["variant"].to_list()  # K = 4
    assert {"binary", "positive_class"} <= set(metrics.evaluate(*binary)["variant"])
    wide = metrics.evaluate(*multi, wide=True)
    assert wide.height == 1 and wide.width == report.height
    assert wide["ece_top_label_equal_width15"].item() == pytest.approx(metrics.ece(*multi))
    both = metrics.compare({"a": report, "b": metrics.evaluate(multi[0] / 2, multi[1], n_bins=10)})
    assert both.columns == ["metric", "variant", "bins", "scheme", "a", "b"]
    assert both.height == report.height


def test_equal_mass_bins_hold_equal_counts():
    rng = np.random.default_rng(0)
    probs = softmax(rng.normal(size=(103, 3)))
    y = rng.integers(0, 3, 103)
    counts = metrics.reliability_table(probs, y, n_bins=10, scheme="equal_mass")["count"]
    assert counts.sum() == 103 and counts.max() - counts.min() <= 1
    few = metrics.reliability_table(probs[:4], y[:4], n_bins=10, scheme="equal_mass")
    assert few.height == 4  # fewer examples than bins: one bin each


def test_confusion_frame_names_columns():
    frame = metrics.confusion_frame([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]], [0, 1, 1],
                                    label_names=["neg", "pos"])
    assert frame.columns == ["true", "pred:neg", "pred:pos"]
    assert frame.rows() == [("neg", 1, 0), ("pos", 1, 1)]


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("scores, labels, kind, message", [
    ([[0.5, 0.2], [0.1, 0.9]], [0, 1], "auto", "row 0 sums to 0.7"),
    ([[0.5, 0.2], [0.1, 0.9]], [0, 1], "probs", "do not sum to one"),
    ([[1.5, -0.5]], [0], "probs", "outside \\[0, 1\\]"),
    ([[0.5, np.nan], [0.1, 0.9]], [0, 1], "auto", "NaN in 1 row\\(s\\) \\(first: row 0\\)"),
    ([[0.5, 0.5], [np.inf, 0.0]], [0, 1], "auto", "contains inf"),
    ([[0.5, 0.5], [0.1, 0.9]], [0, 2], "auto", "class 2, outside the 2 classes"),
    ([[0.5, 0.5], [0.1, 0.9]], [-1, 0], "auto", "class -1"),
    ([[0.5, 0.5], [0.1, 0.9]], [0, 1, 1], "auto", "3 labels for 2 rows"),
    ([[0.5, 0.5]], [0.5], "auto", "integer class ids"),
    ([[0.5, 0.5]], ["pos"], "auto", "Map class names"),
    ([[0.5, 0.5]], [[1, 0]], "auto", "not one-hot"),
    (np.zeros((2, 3, 4)), [0, 1], "auto", "perplexity"),
    (np.zeros((0, 2)), [], "auto", "empty"),
    ([[1.0], [2.0]], [0, 1], "bogus", "kind='bogus'"),
    ("0.5 0.5", [0], "auto", "array of numbers"),
    ([1.5, 0.2], [0, 1], "probs", "log-odds"),
])
def test_bad_input_is_named(scores, labels, kind, message):
    with pytest.raises(InputError, match=message):
        metrics.evaluate(scores, labels, kind=kind)


def test_bad_options_are_named(multi):
    with pytest.raises(InputError, match="n_bins must be an int >= 1"):
        metrics.ece(*multi, n_bins=0)
    with pytest.raises(InputError, match="scheme='quantile'"):
        metrics.ece(*multi, scheme="quantile")
    with pytest.raises(InputError, match="needs 2 classes"):
        metrics.precision_recall_f1(*multi, average="binary")
    with pytest.raises(InputError, match="labels are missing"):
        metrics.accuracy(multi[0], None)
    with pytest.raises(InputError, match="one name per class"):
        metrics.per_class(*multi, label_names=["a"])
    with pytest.raises(InputError, match="targets"):
        metrics.perplexity(np.zeros((2, 3, 5)), np.zeros((2, 2), dtype=int))
