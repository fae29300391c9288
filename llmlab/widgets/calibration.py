"""``CalibrationWidget``: pick a calibrator, fit it, and compare reliability before and after.

The data are a model's probabilities (or logits) and the true labels. The calibrator is fit on
one part and judged on the other: a seeded random split of one set, or a fit set and an
evaluation set you give. Metrics come from :func:`llmlab.evaluate` and
:func:`llmlab.metrics.compare`; the reliability diagrams from
:func:`llmlab.metrics.reliability_table`, drawn with plotly.

>>> w = CalibrationWidget(val_probs, val_labels, class_names=["neg", "pos"])  # doctest: +SKIP
>>> w.calibrator_name.value = "TemperatureScaling"; w.calibrate_button.click()  # doctest: +SKIP
>>> w.report                                        # before / after, a polars frame  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np

from llmlab.widgets.status import StatusLine

#: (metric, variant, scheme) rows of the evaluate() report the table shows
SHOWN_METRICS = (("accuracy", "top1", None), ("ece", "top_label", "equal_width"),
                 ("ece", "top_label", "equal_mass"), ("mce", "top_label", "equal_width"), ("brier", "multiclass", None),
                 ("nll", "mean", None), ("confidence", "top_label_mean", None))
SIDES = ("before", "after")


class CalibrationWidget(widgets.VBox):
    """Fit a post-hoc calibrator from :mod:`llmlab.calibrate` and see what it changed.

    ``probs`` / ``labels``: scores ``[N, K]`` (or ``[N]`` for binary) and class ids, as
    :func:`llmlab.evaluate` takes them; ``.set_data`` replaces them. After Calibrate,
    ``.calibrator`` is the fitted calibrator, ``.calibrated`` its probabilities on the
    evaluation part and ``.report`` the metrics before and after.
    """

    def __init__(self, probs: Any = None, labels: Any = None, *,
                 class_names: Sequence[str] | None = None) -> None:
        from llmlab.calibrate import REGISTRY

        self.class_names = list(class_names) if class_names is not None else None
        self.data: dict[str, Any] | None = None
        self.calibrator: Any = None
        self.calibrated: Any = None
        self.report: Any = None
        self.calibrator_name = widgets.Dropdown(options=calibrator_names(REGISTRY),
                                                value="TemperatureScaling",
                                                description="calibrator")
        self.fit_fraction = widgets.BoundedFloatText(
            0.5, min=0.05, max=0.95, step=0.05, description="fit fraction",
            tooltip="share of the examples the calibrator is fit on (when no eval set is given)")
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
        controls = widgets.GridBox(
            [self.calibrator_name, self.fit_fraction, self.split_seed, self.n_bins, self.scheme],
            layout=widgets.Layout(grid_template_columns="repeat(3, minmax(220px, 1fr))"))
        super().__init__(children=[controls, self.calibrate_button, self.summary, self.figure,
                                   self.table, self.status])
        self.add_class("llmlab-calibration")
        if probs is not None or labels is not None:
            with self.status.reporting("loading the data"):
                self.set_data(probs, labels)

    # ------------------------------------------------------------------ public API
    def set_data(self, probs: Any, labels: Any, *, eval_probs: Any = None,
                 eval_labels: Any = None) -> None:
        """Use these scores and labels; with ``eval_probs`` / ``eval_labels`` the calibrator is
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
        if self.class_names is not None and len(self.class_names) != fit.n_classes:
            raise InputError(f"{len(self.class_names)} class_names for {fit.n_classes} "
                             "classes; pass one name per class")
        self.data = {"fit": fit, "eval": evaluation}
        self.calibrator = self.calibrated = self.report = None
        self.summary.value = _describe(fit, evaluation, self.class_names)
        self.status.clear()

    def calibrate(self) -> Any:
        """Fit the chosen calibrator and compare before / after on the evaluation part.

        ``cal = llmlab.calibrate.<name>().fit(fit_scores, fit_labels)`` then
        ``llmlab.metrics.compare({"before": evaluate(eval_scores, y), "after":
        evaluate(cal.transform(eval_scores), y)})``; returns that report.
        """
        from llmlab.calibrate import REGISTRY
        from llmlab.metrics import compare, evaluate

        fit, evaluation = self._parts()
        calibrator = REGISTRY[self.calibrator_name.value]()
        calibrator.fit(fit.values, fit.labels, kind=fit.kind)
        after = calibrator.transform(evaluation.values, kind=evaluation.kind)
        bins = self.n_bins.value
        report = compare({
            "before": evaluate(evaluation.values, evaluation.labels, n_bins=bins,
                               kind=evaluation.kind),
            "after": evaluate(after, evaluation.labels, n_bins=bins, kind="probs"),
        })
        self.calibrator, self.calibrated, self.report = calibrator, after, report
        self._draw(evaluation, after)
        return report

    # ------------------------------------------------------------------ helpers
    def _parts(self) -> tuple[Any, Any]:
        """(fit, evaluation) Scores: the given sets, or a seeded split of the one set."""
        from llmlab.errors import InputError
        from llmlab.metrics import Scores

        if self.data is None:
            raise InputError("there are no data yet; call widget.set_data(probs, labels) with "
                             "a model's held-out probabilities and the true labels")
        fit = self.data["fit"]
        if self.data["eval"] is not None:
            return fit, self.data["eval"]
        n = len(fit)
        n_fit = round(n * self.fit_fraction.value)
        if not 0 < n_fit < n:
            raise InputError(f"a fit fraction of {self.fit_fraction.value} of {n} examples "
                             "leaves one part empty; pass more examples or an eval set")
        order = np.random.default_rng(self.split_seed.value).permutation(n)

        def part(rows: np.ndarray) -> Any:
            return Scores(fit.values[rows], fit.kind, fit.labels[rows], fit.binary_1d)

        return part(order[:n_fit]), part(order[n_fit:])

    def _draw(self, evaluation: Any, after: Any) -> None:
        from llmlab.metrics import reliability_table

        tables = {
            "before": reliability_table(evaluation.values, evaluation.labels, kind=evaluation.kind,
                                        n_bins=self.n_bins.value, scheme=self.scheme.value),
            "after": reliability_table(after, evaluation.labels, kind="probs",
                                       n_bins=self.n_bins.value, scheme=self.scheme.value),
        }
        with self.figure.batch_update():
            for i, side in enumerate(SIDES):
                t = tables[side]
                bars = self.figure.data[2 * i]
                bars.x = ((t["lower"] + t["upper"]) / 2).to_list()
                bars.width = (t["upper"] - t["lower"]).to_list()
                bars.y = t["accuracy"].fill_null(0.0).to_list()
                # None, not NaN, for empty bins: widget messages must be strict JSON
                bars.customdata = [list(pair) for pair in zip(t["count"].to_list(),
                                                              t["confidence"].to_list())]
        self.table.value = self._table_html()

    def _table_html(self) -> str:
        import polars as pl

        from llmlab.widgets.tables import frame_html

        wanted = pl.DataFrame(SHOWN_METRICS, schema=["metric", "variant", "scheme"],
                              orient="row")
        shown = wanted.join(self.report, on=["metric", "variant", "scheme"], how="left",
                            nulls_equal=True, maintain_order="left")
        return frame_html(shown.select("metric", "variant", "scheme", *SIDES))

    def _on_calibrate(self, _button: Any = None) -> None:
        with self.status.reporting("calibrating"), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = self.calibrate()
            ece = report.filter((report["metric"] == "ece") & (report["variant"] == "top_label")
                                & (report["scheme"] == "equal_width"))
            message = (f"{self.calibrator_name.value}: ECE {ece['before'][0]:.4f} -> "
                       f"{ece['after'][0]:.4f} on the evaluation part")
            ours = [w for w in caught if _from_llmlab(w.filename)]
            if ours:  # e.g. a temperature at its search bound: worth reading, not an error
                self.status.show(f"{message} (warning: {ours[-1].message})", "info")
            else:
                self.status.show(message, "ok")

    def __repr__(self) -> str:
        if self.report is None:
            state = "no data" if self.data is None else "not calibrated yet"
            return f"CalibrationWidget ({state})"
        return f"CalibrationWidget: {self.status.message}"


def _from_llmlab(filename: str) -> bool:
    """Whether a warning was raised by llmlab code (not by the comm or another library)."""
    import llmlab

    return Path(filename).resolve().is_relative_to(Path(llmlab.__file__).resolve().parent)


def calibrator_names(registry: dict[str, type]) -> list[str]:
    """The calibrators a user can pick: the registry's public classes."""
    return sorted(name for name in registry if not name.startswith("_"))


def _reliability_figure() -> Any:
    """Two reliability diagrams (before, after): accuracy bars per bin and the diagonal."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = go.FigureWidget(make_subplots(rows=1, cols=2, subplot_titles=SIDES,
                                        shared_yaxes=True, horizontal_spacing=0.06))
    for col in (1, 2):
        fig.add_trace(go.Bar(x=[], y=[], name="accuracy", marker_color="#4c78a8",
                             showlegend=col == 1,
                             hovertemplate="confidence bin %{x:.2f}<br>accuracy %{y:.3f}"
                             "<br>%{customdata[0]} examples, mean confidence "
                             "%{customdata[1]:.3f}<extra></extra>"), row=1, col=col)
        fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                                 line={"dash": "dash", "color": "#888"}, showlegend=col == 1,
                                 hoverinfo="skip"), row=1, col=col)
        fig.update_xaxes(range=[0, 1], title_text="confidence", row=1, col=col)
    fig.update_yaxes(range=[0, 1], title_text="accuracy", row=1, col=1)
    fig.update_layout(height=320, margin={"l": 50, "r": 10, "t": 40, "b": 40},
                      legend={"orientation": "h", "y": -0.25}, bargap=0.05)
    return fig


def _describe(fit: Any, evaluation: Any, class_names: list[str] | None) -> str:
    import html

    classes = f"{fit.n_classes} classes"
    if class_names:
        classes += f" ({', '.join(class_names)})"
    where = (f"fit on {len(fit)}, evaluated on {len(evaluation)} examples" if evaluation
             is not None else f"{len(fit)} examples, split into a fit and an evaluation part")
    return html.escape(f"{fit.kind}, {classes}; {where}")
