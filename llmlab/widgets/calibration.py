"""``CalibrationWidget``: pick calibration methods, fit them, and compare them side by side.

The data are either a model's scores (probabilities or logits) and the true labels, or a
:class:`~llmlab.PromptClassifier` with labelled texts (then every prompted-LM method of
:mod:`llmlab.calibrate.prompted` is offered, and a template picker when you give
templates). The methods are fit on one part and judged on the other: a seeded random split of
one set, or a fit set and an evaluation set you give. Metrics come from
:func:`llmlab.evaluate` and :func:`llmlab.metrics.compare` (one column per method); the two
reliability diagrams, binned (:func:`llmlab.metrics.reliability_table`) and smoothed with its
bootstrap band (:func:`llmlab.metrics.smooth_reliability_curve`), are drawn with plotly.

>>> w = CalibrationWidget(val_probs, val_labels, class_names=["neg", "pos"])  # doctest: +SKIP
>>> w.methods.value = ("none", "temperature", "isotonic"); w.calibrate_button.click()  # doctest: +SKIP
>>> w.report                                     # one column per method  # doctest: +SKIP
>>> CalibrationWidget(classifier=clf, texts=test.texts, labels=test.labels,  # doctest: +SKIP
...                   templates=["Text: {text}\\nLabel: {label}"])
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np

from llmlab.widgets.snapshot import Snapshot, png_img, snapshot_html, text_html
from llmlab.widgets.status import StatusLine

#: (metric, variant, scheme) rows of the evaluate() report the table shows
SHOWN_METRICS = (("accuracy", "top1", None), ("ece", "top_label", "equal_width"),
                 ("ece", "top_label", "equal_mass"), ("smece", "top_label", None),
                 ("mce", "top_label", "equal_width"), ("brier", "multiclass", None),
                 ("nll", "mean", None), ("confidence", "top_label_mean", None))
#: what the methods read, by ``inputs_of``: from scores alone, or from a PromptClassifier
SCORE_INPUTS = ("nothing", "texts", "labelled")
CLASSIFIER_INPUTS = ("content_free", "domain", "samples")
DEFAULT_METHODS = {"scores": ("none", "temperature"),
                   "classifier": ("none", "contextual", "domain", "batch")}
#: bootstrap resamples of the smoothed diagram's band (a widget answers quickly)
BAND_RESAMPLES = 100
#: inputs of domain-context and generative calibration (as PromptClassifier.calibrate)
N_SAMPLES = 20
_COLORS = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6",
           "#9d755d", "#bab0ac", "#eeca3b"]
NO_DATA = ("No data to calibrate yet: in the notebook, give this widget a model's held-out "
           "probabilities and the true labels, or a PromptClassifier and labelled texts; then "
           "press Calibrate here.")


def method_options(n_classes: int | None = None, *, classifier: bool = False,
                   hidden: bool = False) -> list[str]:
    """The calibration methods the widget offers: :data:`llmlab.calibrate.prompted.METHODS`
    (then the registry's other public calibrators, e.g. ``PlattScaling`` for two classes),
    kept when what the method is fitted on (``inputs_of``) is there: label scores always,
    content-free inputs, random in-domain words and the LM's own samples with a classifier,
    hidden states only with a classifier whose model gives them.

    >>> method_options(3)[:4]
    ['none', 'batch', 'prior', 'prototypical']
    >>> "hidden" in method_options(2, classifier=True, hidden=True)
    True
    """
    from llmlab.calibrate import REGISTRY
    from llmlab.calibrate.prompted import METHODS, inputs_of, make_calibrator

    allowed = set(SCORE_INPUTS)
    if classifier:
        allowed |= set(CLASSIFIER_INPUTS) | ({"hidden"} if hidden else set())
    known = set(METHODS.values())
    names = [*METHODS, *sorted(n for n, cls in REGISTRY.items()
                               if not n.startswith("_") and cls not in known)]
    out = []
    for name in names:
        cal = make_calibrator(name, n_classes or 2)
        if inputs_of(cal) not in allowed:
            continue
        if name == "PlattScaling" and n_classes not in (None, 2):
            continue  # two classes only
        out.append(name)
    order = {"nothing": 0, "texts": 1, "content_free": 1, "domain": 1, "samples": 1}
    return sorted(out, key=lambda n: order.get(inputs_of(make_calibrator(n, 2)), 2))


class CalibrationWidget(Snapshot, widgets.VBox):
    """Fit calibration methods and see what each changed, side by side.

    ``probs`` / ``labels``: scores ``[N, K]`` (or ``[N]`` for binary) and class ids, as
    :func:`llmlab.evaluate` takes them (``.set_data`` replaces them); or ``classifier``, a
    :class:`~llmlab.PromptClassifier`, with labelled ``texts`` / ``labels`` and optional
    other ``templates`` to pick from (``.set_classifier``). After Calibrate,
    ``.calibrators`` holds each method's fitted calibrator, ``.calibrated`` its
    probabilities on the evaluation part, ``.report`` the metrics (one column per method) and
    ``.failed`` the methods that could not be fitted, with why.
    """

    def __init__(self, probs: Any = None, labels: Any = None, *,
                 class_names: Sequence[str] | None = None, classifier: Any = None,
                 texts: Sequence[str] | None = None,
                 templates: Sequence[str] | None = None) -> None:
        self.class_names = list(class_names) if class_names is not None else None
        self.data: dict[str, Any] | None = None
        self.source: dict[str, Any] | None = None  # the classifier, its texts and caches
        self.calibrators: dict[str, Any] = {}
        self.calibrated: dict[str, Any] = {}
        self.failed: dict[str, str] = {}
        self.report: Any = None
        self._mode = "scores"  # what the data are: "scores" or "classifier"
        self.methods = widgets.SelectMultiple(
            options=method_options(), value=DEFAULT_METHODS["scores"], rows=8,
            description="methods",
            tooltip="the calibrations to compare (ctrl / shift + click picks several); "
                    "'none' is the model as it is")
        self.template = widgets.Dropdown(options=[], description="template",
                                         layout=widgets.Layout(display="none", width="auto"))
        self.fit_fraction = widgets.BoundedFloatText(
            0.5, min=0.05, max=0.95, step=0.05, description="fit fraction",
            tooltip="share of the examples the methods are fit on (when no eval set is given)")
        self.split_seed = widgets.IntText(0, description="split seed")
        self.n_bins = widgets.BoundedIntText(15, min=1, max=1000, description="bins")
        self.scheme = widgets.Dropdown(options=["equal_width", "equal_mass"],
                                       description="binning")
        self.calibrate_button = widgets.Button(description="Calibrate", button_style="primary",
                                               icon="balance-scale")
        self.summary = widgets.HTML()
        self.table = widgets.HTML()
        self.figure = _reliability_figure()
        self.status = StatusLine()
        self.calibrate_button.on_click(self._on_calibrate)
        settings = widgets.GridBox(
            [self.fit_fraction, self.split_seed, self.n_bins, self.scheme],
            layout=widgets.Layout(grid_template_columns="repeat(2, minmax(220px, 1fr))"))
        controls = widgets.HBox([self.methods, widgets.VBox([self.template, settings])])
        super().__init__(children=[controls, self.calibrate_button, self.summary, self.figure,
                                   self.table, self.status])
        self.add_class("llmlab-calibration")
        if classifier is not None:
            with self.status.reporting("loading the classifier"):
                self.set_classifier(classifier, texts, labels, templates=templates)
        elif probs is not None or labels is not None:
            with self.status.reporting("loading the data"):
                self.set_data(probs, labels)

    # ------------------------------------------------------------------ public API
    def set_data(self, probs: Any, labels: Any, *, eval_probs: Any = None,
                 eval_labels: Any = None) -> None:
        """Use these scores and labels; with ``eval_probs`` / ``eval_labels`` the methods are
        fit on the first pair and judged on the second, otherwise on a split of the first.

        Raises :class:`~llmlab.errors.InputError` (from :func:`llmlab.metrics.prepare`) when
        scores and labels do not fit together.
        """
        from llmlab.errors import InputError
        from llmlab.metrics import prepare

        fit = prepare(probs, labels, name="probs")
        evaluation = None
        if (eval_probs is None) != (eval_labels is None):
            raise InputError("pass both eval_probs and eval_labels, or neither (then the data "
                             "are split into a fit part and an evaluation part)")
        if eval_probs is not None:
            evaluation = prepare(eval_probs, eval_labels, name="eval_probs")
            if evaluation.n_classes != fit.n_classes:
                raise InputError(f"eval_probs have {evaluation.n_classes} classes but probs "
                                 f"{fit.n_classes}; pass scores of the same task")
        self._check_names(fit.n_classes)
        self.source = None
        self._use({"fit": fit, "eval": evaluation}, method_options(fit.n_classes), "scores")
        self.template.options, self.template.layout.display = [], "none"
        self.summary.value = _describe(fit, evaluation, self.class_names)

    def set_classifier(self, classifier: Any, texts: Sequence[str] | None, labels: Any, *,
                       templates: Sequence[str] | None = None) -> None:
        """Compare methods on a :class:`~llmlab.PromptClassifier` over labelled ``texts``
        (split into a fit and an evaluation part), with its template or one of
        ``templates``. The classifier's own calibration is left as it is."""
        from llmlab.errors import InputError
        from llmlab.metrics import check_labels
        from llmlab.prompting import PromptClassifier, _check_texts

        if not isinstance(classifier, PromptClassifier):
            raise InputError(f"classifier must be a llmlab.PromptClassifier, got "
                             f"{type(classifier).__name__}")
        if texts is None or labels is None:
            raise InputError("a classifier needs labelled texts to calibrate on: pass texts "
                             "and labels")
        texts = _check_texts(texts)
        y = check_labels(labels, len(texts), classifier.n_classes)
        if templates is not None and (isinstance(templates, str) or not list(templates)):
            raise InputError("templates must be a list of templates, e.g. ['{text} {label}']")
        choices = list(dict.fromkeys([classifier.template, *(templates or [])]))
        variants = {t: classifier if t == classifier.template else classifier.with_template(t)
                    for t in choices}  # a bad template fails here, before anything changes
        self._check_names(classifier.n_classes)
        hidden = _gives_hidden_states(classifier, texts[0])
        self.source = {"texts": texts, "labels": y, "variants": variants, "cache": {}}
        self._use({"fit": None, "eval": None}, method_options(
            classifier.n_classes, classifier=True, hidden=hidden), "classifier")
        self.template.options = choices
        self.template.value = classifier.template
        self.template.layout.display = "flex" if len(choices) > 1 else "none"
        self.summary.value = _describe_classifier(
            classifier, len(texts), hidden, self.class_names or list(classifier.verbalizers))

    def calibrate(self) -> Any:
        """Fit every chosen method and compare them on the evaluation part.

        For each method ``cal = make_calibrator(name, K).fit(fit inputs)`` then
        ``llmlab.metrics.compare({name: evaluate(cal.transform(eval inputs), y), ...})``;
        returns that report. With a classifier, a method is fit on what
        ``clf.calibrate(name, texts=fit_texts, labels=fit_labels)`` would fit it on.
        A method that cannot be fit (too few examples, ...) is left out and named in
        ``.failed``.
        """
        report = self._calibrate()
        self.refresh_snapshot()
        return report

    def _calibrate(self) -> Any:
        from llmlab.errors import InputError
        from llmlab.metrics import compare, evaluate

        names = list(self.methods.value)
        if not names:
            raise InputError("no method is picked: choose one or more in the methods list")
        fit, evaluation = self._parts()
        bins = self.n_bins.value
        reports, calibrators, calibrated, failed = {}, {}, {}, {}
        for name in names:
            try:
                cal, probs = self._fit_method(name, fit, evaluation)
            except InputError as err:
                failed[name] = str(err)
                continue
            calibrators[name], calibrated[name] = cal, probs
            reports[name] = evaluate(probs, evaluation.labels, n_bins=bins, kind="probs")
        if not reports:
            first = next(iter(failed.items()))
            raise InputError(f"no method could be fit; {first[0]}: {first[1]}")
        self.calibrators, self.calibrated, self.failed = calibrators, calibrated, failed
        self.report = compare(reports)
        self._draw(evaluation.labels)
        return self.report

    # ------------------------------------------------------------------ helpers
    def _check_names(self, n_classes: int) -> None:
        from llmlab.errors import InputError

        if self.class_names is not None and len(self.class_names) != n_classes:
            raise InputError(f"{len(self.class_names)} class_names for {n_classes} "
                             "classes; pass one name per class")

    def _use(self, data: dict[str, Any], options: list[str], mode: str) -> None:
        """Take new data: the method list offered for it, results cleared."""
        kept = [m for m in self.methods.value if m in options] if mode == self._mode else []
        self._mode = mode
        self.methods.options = options
        self.methods.value = tuple(kept or [m for m in DEFAULT_METHODS[mode] if m in options])
        self.data = data
        self.calibrators, self.calibrated, self.failed, self.report = {}, {}, {}, None
        self.status.clear()

    def _split(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(fit rows, evaluation rows) of a seeded split of ``n`` examples."""
        from llmlab.errors import InputError

        n_fit = round(n * self.fit_fraction.value)
        if not 0 < n_fit < n:
            raise InputError(f"a fit fraction of {self.fit_fraction.value} of {n} examples "
                             "leaves one part empty; move the fit fraction towards 0.5, or give "
                             "the widget more examples")
        order = np.random.default_rng(self.split_seed.value).permutation(n)
        return order[:n_fit], order[n_fit:]

    def _parts(self) -> tuple[Any, Any]:
        """(fit, evaluation) Scores: the given sets, a seeded split of the one set, or (with
        a classifier) the label log-probabilities of a split of its texts."""
        from llmlab.errors import InputError
        from llmlab.metrics import Scores

        if self.data is None:
            raise InputError(NO_DATA)
        if self.source is not None:
            scores, y = self._scores(), self.source["labels"]
            rows = self._split(len(y))
            return tuple(Scores(scores[r], "logits", y[r], False) for r in rows)
        fit = self.data["fit"]
        if self.data["eval"] is not None:
            return fit, self.data["eval"]
        return tuple(Scores(fit.values[r], fit.kind, fit.labels[r], fit.binary_1d)
                     for r in self._split(len(fit)))

    def _classifier(self) -> Any:
        return self.source["variants"][self.template.value]

    def _cached(self, key: str, compute: Any) -> Any:
        cache = self.source["cache"]
        if (self.template.value, key) not in cache:
            cache[self.template.value, key] = compute()
        return cache[self.template.value, key]

    def _scores(self) -> np.ndarray:
        """Label scores ``[N, K]`` of the classifier's texts with the chosen template."""
        return self._cached("scores", lambda: self._classifier().label_scores(
            self.source["texts"]))

    def _fit_method(self, name: str, fit: Any, evaluation: Any) -> tuple[Any, Any]:
        """(fitted calibrator, its probabilities of the evaluation part) for one method."""
        from llmlab.calibrate.prompted import inputs_of, make_calibrator

        cal = make_calibrator(name, fit.n_classes)
        inputs = inputs_of(cal)
        if inputs == "hidden":
            hidden = self._cached("hidden", lambda: self._classifier().hidden_states(
                self.source["texts"]))
            fit_rows, eval_rows = self._split(len(hidden))
            cal.fit(hidden[fit_rows], fit.labels)
            return cal, cal.transform(hidden[eval_rows])
        if inputs in CLASSIFIER_INPUTS:
            cal.fit(self._prompt_inputs(inputs), kind="logits")
        else:
            cal.fit(fit.values, fit.labels if inputs == "labelled" else None, kind=fit.kind)
        return cal, cal.transform(evaluation.values, kind=evaluation.kind)

    def _prompt_inputs(self, inputs: str) -> np.ndarray:
        """Label scores of what content-free, domain-context and generative calibration are
        fit on (as :meth:`llmlab.PromptClassifier.calibrate` builds them, seed 0)."""
        from llmlab.prompting import CONTENT_FREE, random_word_strings

        clf = self._classifier()
        if inputs == "content_free":
            return self._cached(inputs, lambda: clf.label_scores(list(CONTENT_FREE)))
        if inputs == "samples":
            return self._cached(inputs, lambda: clf.label_scores(
                clf.sample_texts(N_SAMPLES, seed=0)))
        texts = self.source["texts"]
        fit_texts = [texts[i] for i in self._split(len(texts))[0]]
        return clf.label_scores(random_word_strings(fit_texts, N_SAMPLES, 0))

    def _draw(self, labels: np.ndarray) -> None:
        from llmlab.metrics import reliability_table, smooth_reliability_curve

        fig = self.figure
        with fig.batch_update():
            fig.data = fig.data[:2]  # the two diagonals
            count = len(self.calibrated)
            for i, (name, probs) in enumerate(self.calibrated.items()):
                color = _COLORS[i % len(_COLORS)]
                table = reliability_table(probs, labels, kind="probs", n_bins=self.n_bins.value,
                                          scheme=self.scheme.value)
                fig.add_trace(_bars(name, table, i, count, color), row=1, col=1)
                curve = smooth_reliability_curve(probs, labels, kind="probs",
                                                 variant="top_label", n_boot=BAND_RESAMPLES)
                smece = self.report.filter(self.report["metric"] == "smece")
                value = smece.filter(smece["variant"] == "top_label")[name].item()
                for trace in _smooth_traces(name, curve, color, value):
                    fig.add_trace(trace, row=1, col=2)
        self.table.value = self._table_html()

    def _table_html(self) -> str:
        import polars as pl

        from llmlab.widgets.tables import frame_html

        wanted = pl.DataFrame(SHOWN_METRICS, schema=["metric", "variant", "scheme"],
                              orient="row")
        shown = wanted.join(self.report, on=["metric", "variant", "scheme"], how="left",
                            nulls_equal=True, maintain_order="left")
        return frame_html(shown.select("metric", "variant", "scheme", *self.calibrated))

    def _on_calibrate(self, _button: Any = None) -> None:
        with self.status.reporting("calibrating"), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = self._calibrate()
            message = _summary_line(report, list(self.calibrated))
            notes = [f"{name} left out: {why}" for name, why in self.failed.items()]
            notes += [f"warning: {w.message}" for w in caught if _from_llmlab(w.filename)][-1:]
            if notes:  # e.g. a temperature at its search bound: worth reading, not an error
                self.status.show(f"{message} ({'; '.join(notes)})", "info")
            else:
                self.status.show(message, "ok")
            self.refresh_snapshot()

    def static_html(self) -> str:
        """The data summary, both reliability diagrams as a picture and the report table."""
        parts = [self.summary.value]
        if self.report is not None:  # matplotlib is imported only when there is a picture
            from llmlab._figures import plotly_png

            parts += [png_img(plotly_png(self.figure), "reliability diagrams"), self.table.value]
        return snapshot_html("calibration", *parts, text_html(self.status.message, kind="status"),
                             title="CalibrationWidget")

    def __repr__(self) -> str:
        if self.report is None:
            state = "no data" if self.data is None else "not calibrated yet"
            return f"CalibrationWidget ({state})"
        return f"CalibrationWidget: {self.status.message}"


def _summary_line(report: Any, names: list[str]) -> str:
    """"ECE on the evaluation part: none 0.1095, temperature 0.0296; lowest smECE: ..."."""
    def row(metric: str, scheme: str | None) -> dict[str, float]:
        rows = report.filter((report["metric"] == metric) & (report["variant"] == "top_label"))
        if scheme is not None:
            rows = rows.filter(rows["scheme"] == scheme)
        return {n: rows[n].item() for n in names}

    ece, smece = row("ece", "equal_width"), row("smece", None)
    best = min(smece, key=smece.get)
    return ("ECE on the evaluation part: " + ", ".join(f"{n} {v:.4f}" for n, v in ece.items())
            + f"; lowest smECE: {best} ({smece[best]:.4f})")


def _gives_hidden_states(classifier: Any, text: str) -> bool:
    """Whether the classifier's model gives hidden states (hidden-state calibration reads
    them): one text is run to find out."""
    from llmlab.errors import InputError

    try:
        classifier.hidden_states([text])
    except InputError:
        return False
    return True


def _from_llmlab(filename: str) -> bool:
    """Whether a warning was raised by llmlab code (not by the comm or another library)."""
    import llmlab

    return Path(filename).resolve().is_relative_to(Path(llmlab.__file__).resolve().parent)


def calibrator_names(registry: dict[str, type]) -> list[str]:
    """The registry's public calibrator classes (every one can be loaded by name)."""
    return sorted(name for name in registry if not name.startswith("_"))


def _bars(name: str, table: Any, i: int, count: int, color: str) -> Any:
    """One method's binned reliability: accuracy per bin, bars side by side within a bin."""
    import plotly.graph_objects as go

    width = ((table["upper"] - table["lower"]) / count).to_list()
    return go.Bar(
        x=table["lower"].to_list(), y=table["accuracy"].fill_null(0.0).to_list(),
        width=width, offset=[i * w for w in width], name=name, legendgroup=name,
        marker_color=color, meta={"method": name, "panel": "binned"},
        # None, not NaN, for empty bins: widget messages must be strict JSON
        customdata=[list(pair) for pair in zip(table["count"].to_list(),
                                               table["confidence"].to_list())],
        hovertemplate=f"{name}<br>bin from %{{x:.2f}}<br>accuracy %{{y:.3f}}<br>"
                      "%{customdata[0]} examples, mean confidence %{customdata[1]:.3f}"
                      "<extra></extra>")


def _smooth_traces(name: str, curve: Any, color: str, smece: float) -> list[Any]:
    """One method's smoothed reliability curve and its bootstrap band (rows without enough
    nearby scores to estimate from are left out)."""
    import plotly.graph_objects as go

    known = curve.drop_nulls(["y", "low", "high"])
    x = known["x"].to_list()
    band = go.Scatter(x=x + x[::-1], y=known["high"].to_list() + known["low"].to_list()[::-1],
                      fill="toself", fillcolor=color, opacity=0.2, mode="lines",
                      line={"width": 0}, hoverinfo="skip", showlegend=False, legendgroup=name,
                      meta={"method": name, "panel": "smoothed", "part": "band"})
    line = go.Scatter(x=x, y=known["y"].to_list(), mode="lines", line={"color": color},
                      name=f"{name} smoothed (smECE {smece:.3f})", legendgroup=name,
                      meta={"method": name, "panel": "smoothed", "part": "curve"},
                      hovertemplate=f"{name}<br>confidence %{{x:.2f}}<br>smoothed accuracy "
                                    "%{y:.3f}<extra></extra>")
    return [band, line]


def _reliability_figure() -> Any:
    """Two reliability diagrams side by side, binned and smoothed, over the diagonal."""
    from llmlab.widgets.plotly_widget import figure_widget, quick_plotly

    quick_plotly()
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    titles = ("binned: accuracy per confidence bin", "smoothed, with 95% bootstrap band")
    fig = figure_widget(make_subplots(rows=1, cols=2, subplot_titles=titles,
                                        shared_yaxes=True, horizontal_spacing=0.06))
    for col in (1, 2):
        fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                                 line={"dash": "dash", "color": "#888"}, showlegend=col == 1,
                                 hoverinfo="skip", meta={"panel": "diagonal"}), row=1, col=col)
        fig.update_xaxes(range=[0, 1], title_text="confidence", row=1, col=col)
    fig.update_yaxes(range=[0, 1], title_text="accuracy", row=1, col=1)
    fig.update_layout(height=340, margin={"l": 50, "r": 10, "t": 40, "b": 40},
                      legend={"orientation": "h", "y": -0.25}, barmode="overlay")
    return fig


def _describe(fit: Any, evaluation: Any, class_names: list[str] | None) -> str:
    import html

    classes = f"{fit.n_classes} classes"
    if class_names:
        classes += f" ({', '.join(class_names)})"
    where = (f"fit on {len(fit)}, evaluated on {len(evaluation)} examples" if evaluation
             is not None else f"{len(fit)} examples, split into a fit and an evaluation part")
    return html.escape(f"{fit.kind}, {classes}; {where}")


def _describe_classifier(clf: Any, n: int, hidden: bool, class_names: list[str]) -> str:
    import html

    states = ("hidden-state calibration offered" if hidden else
              "this model gives no hidden states, so hidden-state calibration is not offered")
    return html.escape(f"prompted classifier, {clf.n_classes} classes "
                       f"({', '.join(class_names)}), {len(clf.demonstrations)} demonstrations; "
                       f"{n} labelled texts, split into a fit and an evaluation part; {states}")
