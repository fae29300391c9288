"""CalibrationWidget: fit a calibrator, reliability diagrams and metrics before / after."""

import math

import numpy as np
import polars as pl
import pytest

import llmlab
from llmlab.calibrate import REGISTRY, TemperatureScaling
from llmlab.errors import InputError
from llmlab.metrics import compare, evaluate, reliability_table
from llmlab.widgets import CalibrationWidget
from llmlab.widgets.calibration import calibrator_names


def overconfident(n=400, k=3, seed=0):
    """Logits of a classifier that is right ~75% of the time and far too sure of itself."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), labels] += 1.5
    return logits * 4, labels


def value(report, metric, variant, side, scheme=None):
    rows = report.filter((pl.col("metric") == metric) & (pl.col("variant") == variant))
    if scheme is not None:
        rows = rows.filter(pl.col("scheme") == scheme)
    return rows[side].item()


def test_calibrate_on_given_fit_and_eval_sets_matches_the_library():
    fit_z, fit_y = overconfident(seed=0)
    eval_z, eval_y = overconfident(seed=1)
    w = CalibrationWidget(class_names=["a", "b", "c"])
    w.set_data(fit_z, fit_y, eval_probs=eval_z, eval_labels=eval_y)
    assert "fit on 400, evaluated on 400" in w.summary.value and "(a, b, c)" in w.summary.value
    w.calibrate_button.click()
    assert w.status.kind == "ok", w.status.message
    cal = TemperatureScaling().fit(fit_z, fit_y)
    expected = compare({"before": evaluate(eval_z, eval_y),
                        "after": evaluate(cal.transform(eval_z), eval_y)})
    assert w.report.equals(expected)
    np.testing.assert_allclose(w.calibrated, cal.transform(eval_z))
    before = value(w.report, "ece", "top_label", "before", "equal_width")
    after = value(w.report, "ece", "top_label", "after", "equal_width")
    assert after < before
    assert f"ECE {before:.4f} -> {after:.4f}" in w.status.message
    assert "CalibrationWidget: TemperatureScaling" in repr(w)


def test_table_and_reliability_diagrams_show_the_report():
    z, y = overconfident()
    w = CalibrationWidget(z, y)
    w.n_bins.value, w.scheme.value = 10, "equal_mass"
    w.calibrate()
    for metric in ("accuracy", "ece", "brier", "nll"):
        assert f"<td>{metric}</td>" in w.table.value
    nll = value(w.report, "nll", "mean", "after")
    assert f"{nll:.4g}" in w.table.value
    bars_before, bars_after = w.figure.data[0], w.figure.data[2]
    fit, evaluation = w._parts()
    table = reliability_table(evaluation.values, evaluation.labels, n_bins=10,
                              scheme="equal_mass")
    assert list(bars_before.y) == table["accuracy"].fill_null(0.0).to_list()
    assert len(bars_after.y) == 10 and [row[0] for row in bars_after.customdata] == \
        reliability_table(w.calibrated, evaluation.labels, n_bins=10,
                          scheme="equal_mass")["count"].to_list()


def test_empty_bins_send_no_nan_to_the_browser():
    z, y = overconfident()
    w = CalibrationWidget(z, y)
    w.n_bins.value = 20  # three classes: no confidence below 1/3, so the low bins are empty
    w.calibrate()
    for bars in (w.figure.data[0], w.figure.data[2]):
        values = [v for row in bars.customdata for v in row]
        assert None in values  # empty bins have no mean confidence
        assert all(v is None or math.isfinite(v) for v in values)
        assert all(math.isfinite(v) for v in bars.y)


def test_split_is_seeded_and_follows_the_fit_fraction():
    z, y = overconfident(n=200)
    w = CalibrationWidget(z, y)
    w.fit_fraction.value = 0.25
    fit, evaluation = w._parts()
    assert (len(fit), len(evaluation)) == (50, 150)
    again, _ = w._parts()
    np.testing.assert_array_equal(fit.values, again.values)
    w.split_seed.value = 1
    other, _ = w._parts()
    assert not np.array_equal(fit.values, other.values)
    assert sorted(np.concatenate([fit.labels, evaluation.labels])) == sorted(y)


@pytest.mark.parametrize("name", calibrator_names(REGISTRY))
def test_every_calibrator_can_be_chosen(name):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p1 = np.clip(0.5 + (y - 0.5) * rng.uniform(-0.5, 1.0, 200), 0.01, 0.99)  # binary [N]
    w = CalibrationWidget(p1, y)
    w.calibrator_name.value = name
    w.calibrate_button.click()
    assert w.status.kind == "ok", w.status.message
    assert type(w.calibrator).__name__ == name and w.calibrated.shape == (100,)


def test_calibrator_warnings_are_shown_not_printed():
    y = np.array([0, 1] * 50)
    z = np.where(y[:, None] == np.arange(2), 5.0, -5.0)  # always right, with a wide margin
    w = CalibrationWidget(z, y)
    w.calibrate_button.click()
    assert w.status.kind == "info" and "warning: the fitted temperature" in w.status.message


def test_mismatched_or_missing_data_show_messages():
    z, y = overconfident()
    w = CalibrationWidget(z, y[:10])
    assert w.status.kind == "error"
    assert "10 labels for 400 rows of scores" in w.status.message
    w.calibrate_button.click()
    assert "there are no data yet" in w.status.message and w.report is None
    assert repr(w) == "CalibrationWidget (no data)"
    with pytest.raises(InputError, match="both eval_probs and eval_labels"):
        w.set_data(z, y, eval_probs=z)
    with pytest.raises(InputError, match="2 classes but probs 3"):
        w.set_data(z, y, eval_probs=z[:, :2], eval_labels=y % 2)
    with pytest.raises(InputError, match="2 class_names for 3 classes"):
        CalibrationWidget(class_names=["a", "b"]).set_data(z, y)


def test_wrong_calibrator_for_the_task_shows_its_message():
    z, y = overconfident()
    w = CalibrationWidget(z, y)
    w.calibrator_name.value = "PlattScaling"  # two classes only
    w.calibrate_button.click()
    assert w.status.kind == "error" and "two-class problems" in w.status.message
    w = CalibrationWidget(z[:3], y[:3])
    w.fit_fraction.value = 0.05
    w.calibrate_button.click()
    assert "leaves one part empty" in w.status.message
    assert set(w.calibrator_name.options) == set(llmlab.calibrate.__all__) & set(REGISTRY)
