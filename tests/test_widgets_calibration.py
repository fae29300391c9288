"""CalibrationWidget: fit several calibration methods, binned and smoothed reliability
diagrams and metrics side by side, on scores or on a PromptClassifier."""

import json
import math

import numpy as np
import polars as pl
import pytest

import llmlab
from llmlab import ModelConfig
from llmlab.calibrate import TemperatureScaling
from llmlab.calibrate.prompted import make_calibrator
from llmlab.errors import InputError
from llmlab.metrics import compare, evaluate, reliability_table, smooth_reliability_curve
from llmlab.models import GPT
from llmlab.prompting import PromptClassifier
from llmlab.widgets import CalibrationWidget
from llmlab.widgets.calibration import SHOWN_METRICS, method_options


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


def traces(w, panel, part=None):
    return [t for t in w.figure.data if t.meta and t.meta.get("panel") == panel
            and (part is None or t.meta.get("part") == part)]


def test_methods_side_by_side_on_given_fit_and_eval_sets_match_the_library():
    fit_z, fit_y = overconfident(seed=0)
    eval_z, eval_y = overconfident(seed=1)
    w = CalibrationWidget(class_names=["a", "b", "c"])
    w.set_data(fit_z, fit_y, eval_probs=eval_z, eval_labels=eval_y)
    assert "fit on 400, evaluated on 400" in w.summary.value and "(a, b, c)" in w.summary.value
    w.methods.value = ("none", "temperature", "batch")
    w.calibrate_button.click()
    assert w.status.kind == "ok", w.status.message
    ts = TemperatureScaling().fit(fit_z, fit_y)
    batch = make_calibrator("batch", 3).fit(fit_z)  # unsupervised: the fit part's scores
    expected = compare({"none": evaluate(eval_z, eval_y),
                        "temperature": evaluate(ts.transform(eval_z), eval_y),
                        "batch": evaluate(batch.transform(eval_z), eval_y)})
    assert w.report.columns[-3:] == ["none", "temperature", "batch"]
    for name in ("none", "temperature", "batch"):
        np.testing.assert_allclose(w.report[name].to_numpy(), expected[name].to_numpy(),
                                   rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(w.calibrated["temperature"], ts.transform(eval_z))
    assert isinstance(w.calibrators["temperature"], TemperatureScaling)
    before = value(w.report, "ece", "top_label", "none", "equal_width")
    after = value(w.report, "ece", "top_label", "temperature", "equal_width")
    assert after < before
    assert f"none {before:.4f}, temperature {after:.4f}" in w.status.message
    assert "lowest smECE" in w.status.message
    assert "CalibrationWidget: ECE on the evaluation part" in repr(w)


def test_table_shows_smece_and_a_column_per_method():
    z, y = overconfident()
    w = CalibrationWidget(z, y)
    w.methods.value = ("none", "isotonic")
    w.calibrate()
    assert ("smece", "top_label", None) in SHOWN_METRICS
    for metric in ("accuracy", "ece", "smece", "brier", "nll"):
        assert f"<td>{metric}</td>" in w.table.value
    assert ('<th class="llmlab-num">none</th><th class="llmlab-num">isotonic</th>'
            in w.table.value)
    smece = value(w.report, "smece", "top_label", "isotonic")
    assert f"{smece:.4g}" in w.table.value


def test_binned_and_smoothed_diagrams_show_every_method():
    z, y = overconfident()
    w = CalibrationWidget(z, y)
    w.n_bins.value, w.scheme.value = 10, "equal_mass"
    w.methods.value = ("none", "temperature", "vector")
    w.calibrate()
    _, evaluation = w._parts()
    bars = traces(w, "binned")
    assert [b.meta["method"] for b in bars] == ["none", "temperature", "vector"]
    for bar in bars:
        table = reliability_table(w.calibrated[bar.meta["method"]], evaluation.labels,
                                  n_bins=10, scheme="equal_mass")
        assert list(bar.y) == table["accuracy"].fill_null(0.0).to_list()
        assert [row[0] for row in bar.customdata] == table["count"].to_list()
    offsets = [bar.offset[0] for bar in bars]  # side by side within a bin
    assert offsets[0] == 0 and offsets[1] < offsets[2]
    curves, bands = traces(w, "smoothed", "curve"), traces(w, "smoothed", "band")
    assert len(curves) == len(bands) == 3
    curve = smooth_reliability_curve(w.calibrated["temperature"], evaluation.labels,
                                     variant="top_label", n_boot=100).drop_nulls("y")
    np.testing.assert_allclose(curves[1].y, curve["y"].to_numpy())
    smece = value(w.report, "smece", "top_label", "temperature")
    assert f"smECE {smece:.3f}" in curves[1].name
    json.dumps(w.figure.to_plotly_json()["data"], allow_nan=False)  # strict JSON
    w.methods.value = ("none",)
    w.calibrate()
    assert len(traces(w, "binned")) == 1 and len(traces(w, "diagonal")) == 2


def test_empty_bins_send_no_nan_to_the_browser():
    z, y = overconfident()
    w = CalibrationWidget(z, y)
    w.n_bins.value = 20  # three classes: no confidence below 1/3, so the low bins are empty
    w.calibrate()
    for bars in traces(w, "binned"):
        values = [v for row in bars.customdata for v in row]
        assert None in values  # empty bins have no mean confidence
        assert all(v is None or math.isfinite(v) for v in values)
        assert all(math.isfinite(v) for v in bars.y)
    json.dumps(w.figure.to_plotly_json()["data"], allow_nan=False)


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


def test_the_method_picker_offers_what_the_data_can_fit():
    z, y = overconfident()
    w = CalibrationWidget(z, y)
    offered = set(w.methods.options)
    assert {"none", "temperature", "isotonic", "batch", "prior", "linc"} <= offered
    # these need a prompt (content-free inputs, random words, samples, hidden states)
    assert not offered & {"contextual", "domain", "generative", "hidden"}
    assert "PlattScaling" not in offered  # two classes only
    assert "PlattScaling" in method_options(2)
    assert set(w.methods.value) == {"none", "temperature"}


@pytest.mark.parametrize("name", method_options(2))
def test_every_offered_method_can_be_chosen(name):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p1 = np.clip(0.5 + (y - 0.5) * rng.uniform(-0.5, 1.0, 200), 0.01, 0.99)  # binary [N]
    w = CalibrationWidget(p1, y)
    w.methods.value = (name,)
    w.calibrate_button.click()
    assert w.status.kind in ("ok", "info") and not w.failed, w.status.message
    assert list(w.calibrated) == [name]
    assert len(w.calibrated[name]) == 100


def test_calibrator_warnings_are_shown_not_printed():
    y = np.array([0, 1] * 50)
    z = np.where(y[:, None] == np.arange(2), 5.0, -5.0)  # always right, with a wide margin
    w = CalibrationWidget(z, y)
    w.calibrate_button.click()
    assert w.status.kind == "info" and "warning: the fitted temperature" in w.status.message


def test_mismatched_or_missing_data_show_messages_for_the_gui():
    z, y = overconfident()
    w = CalibrationWidget(z, y[:10])
    assert w.status.kind == "error"
    assert "10 labels for 400 rows of scores" in w.status.message
    w.calibrate_button.click()
    assert "No data to calibrate yet" in w.status.message and w.report is None
    assert "set_data" not in w.status.message and "(" not in w.status.message.split(":", 2)[-1]
    assert repr(w) == "CalibrationWidget (no data)"
    w = CalibrationWidget(z, y)
    w.methods.value = ()
    w.calibrate_button.click()
    assert "no method is picked: choose one or more in the methods list" in w.status.message
    with pytest.raises(InputError, match="both eval_probs and eval_labels"):
        w.set_data(z, y, eval_probs=z)
    with pytest.raises(InputError, match="2 classes but probs 3"):
        w.set_data(z, y, eval_probs=z[:, :2], eval_labels=y % 2)
    with pytest.raises(InputError, match="2 class_names for 3 classes"):
        CalibrationWidget(class_names=["a", "b"]).set_data(z, y)


def test_a_method_that_cannot_be_fit_is_named_and_the_others_shown():
    z, y = overconfident(n=10)
    w = CalibrationWidget(z, y)
    w.methods.value = ("none", "prototypical")  # needs 2 examples per class: 6 > 5
    w.calibrate_button.click()
    assert w.status.kind == "info" and list(w.calibrated) == ["none"]
    assert "prototypical left out: prototypical calibration needs at least 6" in \
        w.status.message
    w = CalibrationWidget(z[:3], y[:3])
    w.fit_fraction.value = 0.05
    w.calibrate_button.click()
    assert "leaves one part empty; move the fit fraction towards 0.5" in w.status.message


# --------------------------------------------------------------------------- a classifier
CHARS = "abcdefghijklmnopqrstuvwxyz .,:!?'\n/[]ABCDEFGHIJKLMNOPQRSTUVWXYZ"
TEMPLATE = "Review: {text}\nSentiment: {label}\n"
OTHER = "Text: {text}\nIt was {label}\n"
WORDS = {"bad": 0, "good": 1}
GOOD = ["a fine film", "great cast", "so good", "loved it", "fun", "a joy", "nice", "superb"]
BAD = ["dull", "a mess", "boring plot", "awful", "meh", "weak", "bland", "poor"]
TEXTS = [t for pair in zip(GOOD, BAD) for t in pair] * 2
LABELS = [1, 0] * 16


@pytest.fixture(scope="module")
def tok():
    return llmlab.CharTokenizer.train(CHARS)


def tiny_gpt(tok, cls=None):
    cfg = ModelConfig(family="gpt", vocab_size=tok.vocab_size, context_length=256, n_layer=1,
                      n_head=2, d_model=16)
    model = llmlab.build_model(cfg, seed=0).eval()
    if cls is not None:
        model.__class__ = cls
    return model


class NoHiddenGPT(GPT):
    """A model whose forward gives no hidden states."""

    def forward(self, *args, **kwargs):
        out = super().forward(*args, **kwargs)
        out.last_hidden_state = None
        return out


@pytest.fixture(scope="module")
def clf(tok):
    return PromptClassifier(tiny_gpt(tok), tok, TEMPLATE, WORDS, batch_size=8,
                            demonstrations=[("fun", 1), ("dull", 0)])


def test_a_classifier_offers_every_prompted_method_and_fits_them_as_calibrate_does(clf):
    w = CalibrationWidget(classifier=clf, texts=TEXTS, labels=LABELS)
    assert w.status.kind == "info" and not w.status.message, w.status.message
    offered = set(w.methods.options)
    assert {"contextual", "domain", "generative", "hidden", "supervised", "batch"} <= offered
    assert "hidden-state calibration offered" in w.summary.value
    assert set(w.methods.value) == {"none", "contextual", "domain", "batch"}
    assert w.template.layout.display == "none"  # one template: no picker
    names = ("none", "contextual", "domain", "batch", "generative", "linc", "hidden")
    w.methods.value = names
    w.calibrate_button.click()
    assert w.status.kind == "ok", w.status.message
    fit_rows, eval_rows = w._split(len(TEXTS))
    fit_texts, eval_texts = [TEXTS[i] for i in fit_rows], [TEXTS[i] for i in eval_rows]
    fit_labels = [LABELS[i] for i in fit_rows]
    for name in names:
        other = clf.with_demonstrations(clf.demonstrations)
        other.calibrate(name, texts=fit_texts, labels=fit_labels)
        # float32 forwards over other batches: equal to ~1e-7
        np.testing.assert_allclose(w.calibrated[name], other.predict_proba(eval_texts),
                                   atol=1e-6, err_msg=name)
    assert clf.calibration == "none"  # the classifier's own calibration is left alone


def test_a_template_picker_when_templates_are_given(clf):
    w = CalibrationWidget(classifier=clf, texts=TEXTS, labels=LABELS, templates=[OTHER])
    assert list(w.template.options) == [TEMPLATE, OTHER] and w.template.layout.display == "flex"
    w.methods.value = ("none",)
    w.calibrate()
    first = w.calibrated["none"]
    w.template.value = OTHER
    w.calibrate()
    _, eval_rows = w._split(len(TEXTS))
    expected = clf.with_template(OTHER).predict_proba([TEXTS[i] for i in eval_rows])
    np.testing.assert_allclose(w.calibrated["none"], expected, atol=1e-9)
    assert not np.allclose(first, w.calibrated["none"])
    with pytest.raises(InputError, match="list of templates"):
        w.set_classifier(clf, TEXTS, LABELS, templates="{text} {label}")


def test_hidden_state_calibration_only_where_the_model_gives_hidden_states(tok):
    model = tiny_gpt(tok, NoHiddenGPT)
    clf = PromptClassifier(model, tok, TEMPLATE, WORDS, demonstrations=[("fun", 1)])
    w = CalibrationWidget(classifier=clf, texts=TEXTS, labels=LABELS)
    assert "hidden" not in w.methods.options and "contextual" in w.methods.options
    assert "gives no hidden states" in w.summary.value
    w.set_data(*overconfident())  # back to scores: the prompt methods go
    assert "contextual" not in w.methods.options and w.template.layout.display == "none"


def test_bad_classifier_input_shows_messages(clf):
    w = CalibrationWidget(classifier=clf, texts=TEXTS, labels=LABELS[:3])
    assert w.status.kind == "error" and "3 labels" in w.status.message
    w = CalibrationWidget(classifier="clf", texts=TEXTS, labels=LABELS)
    assert "must be a llmlab.PromptClassifier" in w.status.message
    with pytest.raises(InputError, match="needs labelled texts"):
        CalibrationWidget().set_classifier(clf, None, None)
