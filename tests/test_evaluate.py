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


# --------------------------------------------------------------------------- smooth ECE
def reflected_smece(f, y, sigma, points=4000):
    """smECE_sigma straight from its definition: the reflected Gaussian kernel written as a sum
    of mirror images, the integral over [0, 1] by the midpoint rule."""
    t = (np.arange(points) + 0.5) / points
    r = (y - f) / len(f)
    g = np.zeros(points)
    for shift in range(-4, 5, 2):
        for centre in (f + shift, shift - f):
            g += np.exp(-0.5 * ((t[:, None] - centre[None, :]) / sigma) ** 2) @ r
    return np.abs(g / (sigma * math.sqrt(2 * math.pi))).mean()


@pytest.fixture(scope="module")
def skewed():
    """Binary scores whose truth is p**2: over-confident in the middle."""
    rng = np.random.default_rng(5)
    p = rng.uniform(size=250)
    return p, (rng.uniform(size=250) < p ** 2).astype(np.int64)


def test_smooth_ece_matches_its_definition(skewed):
    p, y = skewed
    for sigma in (0.02, 0.1, 0.4):
        assert metrics.smooth_ece(p, y, bandwidth=sigma) == pytest.approx(
            reflected_smece(p, y, sigma), abs=1e-5)
    # the paper's bandwidth is the fixed point smECE_sigma = sigma
    value = metrics.smooth_ece(p, y)
    assert reflected_smece(p, y, value) == pytest.approx(value, abs=1e-5)
    # a third of the scores (almost) at 0 or 1: the reflection counts them twice
    rng = np.random.default_rng(6)
    ends = np.concatenate([p[:170], rng.uniform(0, 1e-4, 40), 1 - rng.uniform(0, 1e-4, 40)])
    truth = np.concatenate([p[:170] ** 2, np.full(40, 0.1), np.full(40, 0.8)])
    hits = (rng.uniform(size=250) < truth).astype(np.int64)
    assert metrics.smooth_ece(ends, hits, bandwidth=0.05) == pytest.approx(
        reflected_smece(ends, hits, 0.05), abs=1e-5)
    curve = metrics.smooth_reliability_curve(p, y, n_boot=1)
    assert curve["bandwidth"][0] == pytest.approx(value, abs=1e-6)


def test_smooth_ece_decreases_with_bandwidth(multi):
    rng = np.random.default_rng(2)
    p = rng.uniform(size=500)
    y = (rng.uniform(size=500) < p + 0.15 * np.sin(2 * np.pi * p)).astype(int)  # both signs
    values = [metrics.smooth_ece(p, y, bandwidth=s) for s in (0.01, 0.03, 0.1, 0.3, 1.0)]
    assert all(b < a for a, b in zip(values, values[1:]))
    # residuals of one sign (over-confident everywhere): |mean residual| at every bandwidth
    logits, labels = multi
    probs = softmax(logits)
    gap = abs((probs.argmax(1) == labels).mean() - probs.max(1).mean())
    for sigma in (0.1, 0.3, 1.0):
        assert metrics.smooth_ece(logits, labels, bandwidth=sigma) == pytest.approx(gap)


def test_smooth_ece_variants(multi, binary):
    logits, y = multi
    probs = softmax(logits)
    top = metrics.smooth_ece(logits, y)
    assert top == metrics.smooth_ece(logits, y, variant="top_label")
    correct = (probs.argmax(1) == y).astype(int)
    assert top == pytest.approx(metrics.smooth_ece(probs.max(1), correct), abs=1e-12)
    per_class = [metrics.smooth_ece(probs[:, k], (y == k).astype(int)) for k in range(4)]
    assert metrics.smooth_ece(probs, y, variant="classwise") == pytest.approx(np.mean(per_class))
    log_odds, yb = binary
    p1 = 1 / (1 + np.exp(-log_odds))
    positive = metrics.smooth_ece(p1, yb)  # [N] binary scores: the positive class
    two = np.stack([1 - p1, p1], 1)
    assert metrics.smooth_ece(two, yb, variant="positive_class") == pytest.approx(positive)
    assert metrics.smooth_ece(two, yb, variant="classwise") == pytest.approx(positive)  # mirror
    assert metrics.smooth_ece(log_odds, yb, variant="top_label") == pytest.approx(
        metrics.smooth_ece(two, yb))


def test_smooth_ece_small_when_calibrated_large_when_not():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=4000)
    calibrated = (rng.uniform(size=p.size) < p).astype(int)
    skew = (rng.uniform(size=p.size) < p ** 2).astype(int)
    assert metrics.smooth_ece(p, calibrated) < 0.03
    # E|p - p^2| = 1/6; smoothing removes a little of it
    assert 0.12 < metrics.smooth_ece(p, skew) < 1 / 6 + 0.01


def test_evaluate_reports_smooth_ece(multi, binary):
    report = metrics.evaluate(*multi)
    rows = report.filter(pl.col("metric") == "smece")
    assert rows["variant"].to_list() == ["top_label", "classwise"]
    assert rows["bins"].null_count() == 2 and rows["scheme"].null_count() == 2
    assert value(report, "smece", "top_label") == metrics.smooth_ece(*multi)
    assert value(report, "smece", "classwise") == metrics.smooth_ece(*multi, variant="classwise")
    both = metrics.evaluate(*binary)
    assert value(both, "smece", "positive_class") == metrics.smooth_ece(*binary)
    wide = metrics.evaluate(*binary, wide=True)
    assert {"smece_top_label", "smece_classwise", "smece_positive_class"} <= set(wide.columns)


# --------------------------------------------------------------------------- registry
def test_report_rows_and_columns_come_from_the_registry(multi, binary):
    keys = [spec.key for spec in metrics.METRICS]
    assert len(set(keys)) == len(keys)
    for data, k in ((multi, 4), (binary, 2)):
        report = metrics.evaluate(*data)
        specs = [s for s in metrics.METRICS if s.applies_to(k)]
        assert list(zip(report["metric"], report["variant"], report["scheme"])) == [
            s.key for s in specs]
        wide = metrics.to_wide(report)
        assert wide.columns == [s.column(b) for s, b in zip(specs, report["bins"])]
    spec = metrics.metric_spec("ece", "top_label", "equal_mass")
    assert spec.binned and spec.column(10) == "ece_top_label_equal_mass10"
    assert metrics.metric_spec("l2_ce", "top_label_debiased").column(15) == "l2_ce"
    assert metrics.metric_spec("roc_auc", "ovr_macro").column() == "roc_auc"
    assert not metrics.metric_spec("smece", "positive_class").applies_to(4)
    with pytest.raises(InputError, match="one row per scheme"):
        metrics.metric_spec("ece", "top_label")
    with pytest.raises(InputError, match="no metric 'ece' with variant 'bogus'"):
        metrics.metric_spec("ece", "bogus")


def test_report_value(multi):
    report = metrics.evaluate(*multi)
    assert metrics.report_value(report, "accuracy") == metrics.accuracy(*multi)
    assert metrics.report_value(report, "smece", "top_label") == metrics.smooth_ece(*multi)
    assert metrics.report_value(report, "ece", "top_label", "equal_mass") == pytest.approx(
        metrics.ece(*multi, scheme="equal_mass"))
    with pytest.raises(InputError, match="rows match 'ece'.*Pass variant="):
        metrics.report_value(report, "ece")
    with pytest.raises(InputError, match="no row for 'smece', variant 'positive_class'"):
        metrics.report_value(report, "smece", "positive_class")
    with pytest.raises(InputError, match="tidy, not wide=True"):
        metrics.report_value(metrics.to_wide(report), "accuracy")


# --------------------------------------------------------------------------- smoothed curve
def test_smooth_curve_follows_the_diagonal_when_calibrated():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=3000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    curve = metrics.smooth_reliability_curve(p, y, grid=101, n_boot=100)
    assert curve.columns == ["class", "x", "y", "low", "high", "density", "bandwidth"]
    assert curve.height == 101 and curve["class"].to_list() == [1] * 101
    assert np.allclose(curve["x"], np.linspace(0, 1, 101))
    inner = curve.filter(pl.col("x").is_between(0.05, 0.95))
    assert (inner["y"] - inner["x"]).abs().max() < 0.06
    assert ((inner["low"] <= inner["x"]) & (inner["x"] <= inner["high"])).mean() >= 0.8
    assert (curve["low"] <= curve["y"]).all() and (curve["y"] <= curve["high"]).all()
    assert np.trapezoid(curve["density"], curve["x"]) == pytest.approx(1.0, abs=0.01)


def test_smooth_curve_lies_below_the_diagonal_when_over_confident(skewed):
    p, y = skewed
    curve = metrics.smooth_reliability_curve(p, y, n_boot=50)
    middle = curve.filter(pl.col("x").is_between(0.3, 0.7))
    assert (middle["y"] < middle["x"] - 0.1).all()  # truth p**2: 0.21 below at 0.5
    assert (middle["high"] < middle["x"]).all()


def test_smooth_curve_per_class_and_top_label(multi):
    logits, y = multi
    per_class = metrics.smooth_reliability_curve(logits, y, variant="classwise", grid=51,
                                                 n_boot=20)
    assert per_class.height == 4 * 51 and per_class["class"].unique().to_list() == [0, 1, 2, 3]
    for k in range(4):
        one = per_class.filter(pl.col("class") == k)
        assert one["bandwidth"][0] == pytest.approx(
            metrics.smooth_ece(softmax(logits)[:, k], (y == k).astype(int)), abs=1e-6)
    top = metrics.smooth_reliability_curve(logits, y, grid=51, n_boot=20)
    assert top["class"].null_count() == 51
    # top-label confidences are >= 1/4: at a narrow bandwidth no estimate far below them
    narrow = metrics.smooth_reliability_curve(logits, y, grid=51, n_boot=5, bandwidth=0.01)
    assert narrow.filter(pl.col("x") < 0.2)[["y", "low", "high"]].null_count().row(0) == (
        10, 10, 10)
    assert narrow["bandwidth"].unique().to_list() == [0.01]
    again = metrics.smooth_reliability_curve(logits, y, grid=51, n_boot=20)
    assert again.equals(top)  # seeded


@pytest.mark.parametrize("call, options, message", [
    ("smooth_ece", {"bandwidth": 0.0}, "bandwidth must be a number >= 0.001"),
    ("smooth_ece", {"bandwidth": -0.1}, "bandwidth must be a number >= 0.001"),
    ("smooth_ece", {"bandwidth": float("nan")}, "bandwidth must be a number >= 0.001"),
    ("smooth_ece", {"bandwidth": 1e-4}, "grid resolves no finer"),
    ("smooth_ece", {"bandwidth": "0.1"}, "bandwidth must be a number"),
    ("smooth_ece", {"variant": "bogus"}, "variant='bogus' is not one of"),
    ("smooth_ece", {"variant": "positive_class"}, "needs 2 classes, the scores have 4"),
    ("smooth_ece_interval", {"level": 0.0}, "level must be a number strictly between 0 and 1"),
    ("smooth_ece_interval", {"level": 1.0}, "level must be"),
    ("smooth_ece_interval", {"level": 95}, "level must be"),
    ("smooth_ece_interval", {"n_boot": 0}, "n_boot must be an int >= 1"),
    ("smooth_ece_interval", {"n_boot": 2.5}, "n_boot must be an int >= 1"),
    ("smooth_ece_interval", {"bandwidth": -1.0}, "bandwidth must be"),
    ("smooth_reliability_curve", {"grid": 1}, "grid must be an int >= 2"),
    ("smooth_reliability_curve", {"level": -0.5}, "level must be"),
    ("smooth_reliability_curve", {"n_boot": 0}, "n_boot must be"),
    ("smooth_reliability_curve", {"bandwidth": 0}, "bandwidth must be"),
])
def test_smooth_ece_bad_options(multi, call, options, message):
    with pytest.raises(InputError, match=message):
        getattr(metrics, call)(*multi, **options)


@pytest.mark.parametrize("call", ["smooth_ece", "smooth_ece_interval",
                                  "smooth_reliability_curve"])
def test_smooth_ece_bad_scores_and_labels(call):
    fn = getattr(metrics, call)
    with pytest.raises(InputError, match="NaN in 1 row"):
        fn([0.2, np.nan, 0.7], [0, 1, 1])
    with pytest.raises(InputError, match="class 3, outside the 3 classes"):
        fn(softmax(np.zeros((2, 3))), [0, 3])
    with pytest.raises(InputError, match="class -1"):
        fn([0.2, 0.7], [-1, 1])
