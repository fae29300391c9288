"""Post-hoc calibrators (against scikit-learn where it has them), saving them with a run, and
the reliability diagram."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import llmlab
import llmlab.calibrate as cal
from llmlab import metrics
from llmlab.calibrate import scaling
from llmlab.errors import CheckpointError, InputError

sk_calibration = pytest.importorskip("sklearn.calibration")
from sklearn.base import BaseEstimator, ClassifierMixin  # noqa: E402
from sklearn.frozen import FrozenEstimator  # noqa: E402
from sklearn.isotonic import IsotonicRegression  # noqa: E402

ALL = [cal.TemperatureScaling, cal.VectorScaling, cal.MatrixScaling, cal.IsotonicCalibration,
       cal.HistogramBinning]


def overconfident(n, k, seed=0, sharp=3.0):
    """Logits of an over-confident model: right more often than chance, far too sure."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    return sharp * (rng.normal(size=(n, k)) + 1.2 * np.eye(k)[y]), y


@pytest.fixture(scope="module")
def split():
    z, y = overconfident(3000, 4)
    return (z[:1500], y[:1500]), (z[1500:], y[1500:])


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 2000)
    return 3.0 * (rng.normal(size=2000) + 0.8 * (2 * y - 1)) + 0.7, y  # log-odds, biased


class LogitsAsFeatures(ClassifierMixin, BaseEstimator):
    """A fitted scikit-learn classifier whose decision_function returns its input."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def decision_function(self, X):
        return X

    def predict(self, X):
        return self.classes_[(X > 0).astype(int)] if X.ndim == 1 else X.argmax(1)


# --------------------------------------------------------------------------- temperature
def test_temperature_scaling_keeps_accuracy_and_improves_calibration(split):
    (zv, yv), (zt, yt) = split
    ts = cal.TemperatureScaling().fit(zv, yv)
    after = ts.transform(zt)
    assert ts.temperature > 1.5  # it was over-confident
    assert np.array_equal(after.argmax(1), zt.argmax(1))
    assert metrics.accuracy(after, yt) == metrics.accuracy(zt, yt)
    assert metrics.ece(after, yt) < 0.5 * metrics.ece(zt, yt)
    assert metrics.nll(after, yt) < metrics.nll(zt, yt)
    # the fitted temperature minimises the NLL on the calibration set
    nll_at = {f: metrics.nll(zv / (ts.temperature * f), yv) for f in (0.99, 1.0, 1.01)}
    assert nll_at[1.0] < min(nll_at[0.99], nll_at[1.01])


def test_temperature_solvers_agree_with_sklearn(split):
    (zv, yv), _ = split
    newton = cal.TemperatureScaling().fit(zv, yv).temperature
    lbfgs = cal.TemperatureScaling(solver="lbfgs").fit(zv, yv).temperature
    peer = sk_calibration.CalibratedClassifierCV(
        FrozenEstimator(LogitsAsFeatures().fit(zv, yv)), method="temperature").fit(zv, yv)
    sk_temperature = 1 / float(peer.calibrated_classifiers_[0].calibrators[0].beta_)
    assert newton == pytest.approx(lbfgs, rel=1e-4)
    assert newton == pytest.approx(sk_temperature, rel=1e-4)
    ours = cal.TemperatureScaling().fit(zv, yv).transform(zv)
    assert np.allclose(ours, peer.predict_proba(zv), atol=1e-5)


def test_temperature_large_input_path(monkeypatch):
    """Warm start on a subsample and float32 passes give the float64 answer."""
    z, y = overconfident(6000, 5, seed=4)
    exact = cal.TemperatureScaling().fit(z, y).temperature
    monkeypatch.setattr(scaling, "_WARM_START_ROWS", 500)
    monkeypatch.setattr(scaling, "_FLOAT32_ABOVE", 1000)
    assert cal.TemperatureScaling().fit(z, y).temperature == pytest.approx(exact, rel=1e-5)


def test_temperature_on_probabilities_and_binary_scores(binary):
    log_odds, y = binary
    p1 = 1 / (1 + np.exp(-log_odds))
    from_logits = cal.TemperatureScaling().fit(log_odds, y)
    from_probs = cal.TemperatureScaling().fit(p1, y)
    assert from_logits.temperature == pytest.approx(from_probs.temperature, rel=1e-6)
    out = from_logits.transform(log_odds)
    assert out.shape == (2000,)  # one score per example in, one probability per example out
    assert np.allclose(out, 1 / (1 + np.exp(-log_odds / from_logits.temperature)))


def test_temperature_warns_at_the_bound():
    z = np.array([[10.0, -10.0], [-10.0, 10.0]] * 10)
    with pytest.warns(UserWarning, match="search bound"):
        cal.TemperatureScaling().fit(z, [0, 1] * 10)


# --------------------------------------------------------------------------- other methods
def test_vector_and_matrix_scaling_fix_a_class_bias():
    z, y = overconfident(2000, 3, seed=5, sharp=1.0)
    z = z + np.array([1.5, 0.0, -1.0])  # biased towards class 0
    zv, yv, zt, yt = z[:1000], y[:1000], z[1000:], y[1000:]
    for method in (cal.VectorScaling(), cal.MatrixScaling(), cal.MatrixScaling(l2=1e-3)):
        after = method.fit(zv, yv).transform(zt)
        assert metrics.nll(after, yt) < metrics.nll(zt, yt) - 0.05
        assert metrics.accuracy(after, yt) > metrics.accuracy(zt, yt)
        logits = method.transform_logits(zt)
        assert np.allclose(metrics.probabilities(logits, kind="logits"), after)


def test_platt_matches_sklearn_sigmoid(binary):
    log_odds, y = binary
    ours = cal.PlattScaling().fit(log_odds, y).transform(log_odds)
    peer = sk_calibration.CalibratedClassifierCV(
        FrozenEstimator(LogitsAsFeatures().fit(log_odds, y)), method="sigmoid").fit(log_odds, y)
    assert np.allclose(ours, peer.predict_proba(log_odds)[:, 1], atol=1e-5)
    plain = cal.PlattScaling(smooth_targets=False).fit(log_odds, y)
    assert plain.slope > 0 and plain.intercept < 0  # undoes the +0.7 bias, keeps the order


def test_isotonic_matches_sklearn(binary):
    log_odds, y = binary
    p1 = np.round(1 / (1 + np.exp(-log_odds)), 2)  # rounded: many ties
    ours = cal.IsotonicCalibration().fit(p1, y).transform(p1)
    peer = IsotonicRegression(out_of_bounds="clip").fit(p1, y)
    test = np.linspace(-0.1, 1.1, 300).clip(0, 1)
    assert np.allclose(ours, peer.predict(p1), atol=1e-10)
    assert np.allclose(cal.IsotonicCalibration().fit(p1, y).transform(test), peer.predict(test),
                       atol=1e-10)


def test_pool_adjacent_violators_by_hand():
    xs, ys = cal.pool_adjacent_violators(np.array([1.0, 2, 3, 4, 5]), np.array([1.0, 3, 2, 2, 5]),
                                         np.array([1.0, 1, 1, 2, 1]))
    # 3, 2, 2(x2) pool to (3 + 2 + 4) / 4 = 2.25 over x in [2, 4]
    assert xs.tolist() == [1, 2, 4, 5] and ys.tolist() == [1, 2.25, 2.25, 5]


def test_histogram_binning_by_hand():
    p1 = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9])
    y = np.array([0, 0, 1, 1, 0, 1])
    hb = cal.HistogramBinning(n_bins=2, scheme="equal_width").fit(p1, y)
    # (0, .5] -> 1/3 positive, (.5, 1] -> 2/3 positive
    assert hb.transform(np.array([0.05, 0.5, 0.51, 1.0])) == pytest.approx([1 / 3, 1 / 3, 2 / 3,
                                                                            2 / 3])
    mass = cal.HistogramBinning(n_bins=3).fit(p1, y)  # pairs: {.1,.2} {.3,.6} {.7,.9}
    assert mass.transform(np.array([0.15, 0.45, 0.8])) == pytest.approx([0.0, 1.0, 0.5])


@pytest.mark.parametrize("method", [cal.IsotonicCalibration, cal.HistogramBinning])
def test_one_vs_rest_rows_sum_to_one(method, split):
    (zv, yv), (zt, yt) = split
    out = method().fit(zv, yv).transform(zt)
    assert out.shape == zt.shape and np.allclose(out.sum(1), 1)
    assert metrics.ece(out, yt) < metrics.ece(zt, yt)


# --------------------------------------------------------------------------- save / load
@pytest.mark.parametrize("method", ALL + [cal.PlattScaling])
def test_save_and_load_round_trip(method, split, binary, tmp_path):
    scores, labels = binary if method is cal.PlattScaling else split[0]
    fitted = method().fit(scores, labels)
    folder = fitted.save(tmp_path / "c")
    assert sorted(p.name for p in folder.iterdir()) == ["calibrator.json",
                                                        "calibrator.safetensors"]
    loaded = cal.load(folder)
    assert type(loaded) is method and loaded.settings() == fitted.settings()
    assert np.array_equal(loaded.transform(scores), fitted.transform(scores))
    assert cal.load(folder / "calibrator.json").n_classes == fitted.n_classes


def test_save_to_run_and_load_from_run(split, tmp_path):
    (zv, yv), (zt, _) = split
    run = llmlab.runs.create(store=tmp_path, kind="calibrate", capture_git=False)
    ts = cal.TemperatureScaling().fit(zv, yv)
    folder = ts.save_to_run(run, "temperature")
    assert folder == run.artifacts_dir / "calibrators" / "temperature"
    again = cal.load_from_run(llmlab.runs.get(run.id, store=tmp_path), "temperature")
    assert again.temperature == ts.temperature
    run.finish()
    for bad in ("../escape", "", "a/b", ".hidden"):
        with pytest.raises(InputError, match="calibrator name"):
            ts.save_to_run(run, bad)
    with pytest.raises(InputError, match="expected an llmlab run"):
        ts.save_to_run(str(tmp_path), "x")


def test_corrupt_or_foreign_files_are_refused(split, tmp_path):
    (zv, yv), _ = split
    folder = cal.TemperatureScaling().fit(zv, yv).save(tmp_path / "ts")
    meta = json.loads((folder / "calibrator.json").read_text())
    with pytest.raises(CheckpointError, match="holds no calibrator.json"):
        cal.load(tmp_path)
    cases = [
        ("{not json", "not valid JSON"),
        (json.dumps({**meta, "format": "other"}), "not an llmlab calibrator"),
        (json.dumps({**meta, "format_version": 99}), "format 99 of an llmlab calibrator, written by a newer llmlab"),
        (json.dumps({**meta, "type": "Pickled"}), "unknown calibrator type 'Pickled'"),
        (json.dumps({**meta, "settings": {"nope": 1}}), "not describe a valid"),
    ]
    for text, message in cases:
        (folder / "calibrator.json").write_text(text)
        with pytest.raises(CheckpointError, match=message):
            cal.load(folder)
    (folder / "calibrator.json").write_text(json.dumps(meta))
    (folder / "calibrator.safetensors").write_bytes(b"\x80\x04garbage")  # e.g. a pickle
    with pytest.raises(CheckpointError, match="could not be read"):
        cal.load(folder)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="non-empty folder that holds no calibrator"):
        cal.TemperatureScaling().fit(zv, yv).save(tmp_path / "busy")


# --------------------------------------------------------------------------- layouts and errors
def test_torch_in_torch_out(split):
    (zv, yv), (zt, _) = split
    ts = cal.TemperatureScaling().fit(torch.tensor(zv), torch.tensor(yv))
    out = ts.transform(torch.tensor(zt, dtype=torch.float32))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert np.allclose(out.numpy(), ts.transform(zt), atol=1e-6)
    reversed_rows = cal.TemperatureScaling().fit(zv[::-1], yv[::-1])  # negative strides
    assert reversed_rows.temperature == pytest.approx(ts.temperature)


def test_calibrator_bad_input(split, binary):
    (zv, yv), _ = split
    with pytest.raises(InputError, match="single class \\(2\\)"):
        cal.TemperatureScaling().fit(zv, np.full(len(zv), 2))
    with pytest.raises(InputError, match="PlattScaling is for two-class problems"):
        cal.PlattScaling().fit(zv, yv)
    with pytest.raises(InputError, match="not fitted yet"):
        cal.TemperatureScaling().transform(zv)
    with pytest.raises(InputError, match="fitted on 4 classes but these scores have 2"):
        cal.TemperatureScaling().fit(zv, yv).transform(binary[0])
    with pytest.raises(InputError, match="NaN"):
        cal.VectorScaling().fit(np.where(zv > 5, np.nan, zv), yv)
    with pytest.raises(InputError, match="labels for"):
        cal.IsotonicCalibration().fit(zv, yv[:-1])
    with pytest.raises(InputError, match="solver"):
        cal.TemperatureScaling(solver="adam")
    with pytest.raises(InputError, match="scheme"):
        cal.HistogramBinning(scheme="quantile")
    vs = cal.VectorScaling().fit(zv, yv)
    with pytest.warns(UserWarning, match="fitted on logits and is now given probs"):
        vs.transform(metrics.probabilities(zv))


# --------------------------------------------------------------------------- plots
PNG = b"\x89PNG\r\n\x1a\n"


def test_reliability_diagram_single_and_overlay(split, tmp_path):
    from matplotlib.figure import Figure

    (zv, yv), (zt, yt) = split
    fig = cal.reliability_diagram(zt, yt)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert "ECE" in fig.axes[0].get_legend().get_texts()[1].get_text()
    fig.savefig(tmp_path / "one.png")
    assert (tmp_path / "one.png").read_bytes().startswith(PNG)
    after = cal.TemperatureScaling().fit(zv, yv).transform(zt)
    both = cal.reliability_diagram([zt, after], yt, names=["before", "after"],
                                   scheme="equal_mass", n_bins=10)
    legend = [t.get_text() for t in both.axes[0].get_legend().get_texts()]
    assert legend[1].startswith("before (ECE") and legend[2].startswith("after (ECE")
    assert both._repr_png_().startswith(PNG)
    assert cal.reliability_png(zt, yt, dpi=50).startswith(PNG)
    with pytest.raises(InputError, match="2 names for 1 sets"):
        cal.reliability_diagram(zt, yt, names=["a", "b"])


def _curves(ax, points=201):
    """The smoothed curves of an axes: its lines drawn on the full grid."""
    return [line for line in ax.get_lines() if len(line.get_xdata()) == points]


def test_smoothed_reliability_diagram_top_label(split):
    from matplotlib.collections import PolyCollection

    (zv, yv), (zt, yt) = split
    fig = cal.reliability_diagram(zt, yt, smooth=True, n_boot=30)
    top, bottom = fig.axes
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    smece = metrics.smooth_ece(zt, yt)
    assert any(f"smECE {100 * smece:.1f}%" in text for text in legend)
    assert any("smoothed, 95% band" in text for text in legend)
    (curve,) = _curves(top)
    frame = metrics.smooth_reliability_curve(zt, yt, n_boot=30)
    assert np.allclose(curve.get_ydata(), frame["y"].fill_null(np.nan), equal_nan=True)
    assert any(isinstance(c, PolyCollection) for c in top.collections)  # the band
    assert len(_curves(bottom)) == 1  # the smoothed density
    assert fig._repr_png_().startswith(PNG)
    after = cal.TemperatureScaling().fit(zv, yv).transform(zt)
    both = cal.reliability_png([zt, after], yt, names=["before", "after"], smooth=True,
                               n_boot=20, dpi=50)
    assert both.startswith(PNG)


def test_smoothed_reliability_diagram_binary_and_per_class(split, binary):
    log_odds, y = binary
    fig = cal.reliability_diagram(log_odds, y, smooth=True, variant="positive_class",
                                  n_boot=20)
    assert fig.axes[0].get_ylabel() == "frequency of class 1"
    assert len(_curves(fig.axes[0])) == 1
    assert fig._repr_png_().startswith(PNG)
    (_, _), (zt, yt) = split
    names = ["north", "east", "south", "west"]
    per_class = cal.reliability_diagram(zt, yt, smooth=True, variant="classwise",
                                        label_names=names, n_boot=20)
    assert len(_curves(per_class.axes[0])) == 4
    legend = [t.get_text() for t in per_class.axes[0].get_legend().get_texts()]
    assert [text.split(" (")[0] for text in legend[1:]] == names
    assert per_class._repr_png_().startswith(PNG)
    binned = cal.reliability_diagram(zt, yt, variant="classwise")  # markers, no curves
    assert len(_curves(binned.axes[0])) == 0 and len(binned.axes[0].get_lines()) == 5
    assert binned._repr_png_().startswith(PNG)


def test_smoothed_reliability_diagram_bad_input(split):
    (_, _), (zt, yt) = split
    with pytest.raises(InputError, match="variant='bogus'"):
        cal.reliability_diagram(zt, yt, variant="bogus")
    with pytest.raises(InputError, match="positive_class' needs scores of 2 classes"):
        cal.reliability_diagram(zt, yt, variant="positive_class")
    with pytest.raises(InputError, match="level must be"):
        cal.reliability_diagram(zt, yt, smooth=True, level=1.5)
    with pytest.raises(InputError, match="n_boot must be"):
        cal.reliability_diagram(zt, yt, smooth=True, n_boot=0)
    with pytest.raises(InputError, match="2 label_names but the scores have class 2"):
        cal.reliability_diagram(zt, yt, variant="classwise", label_names=["a", "b"])
    with pytest.raises(InputError, match="NaN"):
        cal.reliability_diagram(np.where(zt > 5, np.nan, zt), yt, smooth=True)


def test_fit_transform_is_fit_then_transform():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 3)) * 3
    labels = rng.integers(0, 3, size=200)
    for make in (cal.TemperatureScaling, cal.HistogramBinning):
        once = make().fit_transform(logits, labels)
        twice = make().fit(logits, labels).transform(logits)
        np.testing.assert_allclose(once, twice)
        assert once.shape == (200, 3)
        np.testing.assert_allclose(once.sum(axis=1), 1.0, atol=1e-6)
