"""Reliability diagrams with matplotlib: accuracy per confidence bin against the diagonal, over
a histogram of the confidences (Guo et al. 2017, figure 1), for one or several models; with
``smooth=True`` also the kernel-smoothed reliability curve and its bootstrap band (Blasiok &
Nakkiran, ICLR 2024), from :func:`llmlab.metrics.smooth_reliability_curve`.

Figures are built without pyplot (no global state, nothing shown twice in a notebook) and
render to PNG with matplotlib's Agg canvas; a notebook displays the returned figure.

>>> fig = reliability_diagram([probs_before, probs_after], labels,          # doctest: +SKIP
...                           names=["before", "after"], smooth=True)
>>> fig.savefig("reliability.png")                                          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from llmlab._figures import InlineFigure, figure_png
from llmlab.errors import InputError
from llmlab.metrics import (
    DEFAULT_BINS,
    Kind,
    Scheme,
    Scores,
    bin_values,
    prepare,
    smooth_ece,
    smooth_reliability_curve,
)

_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]
_STYLES = ["-", "--", ":", "-."]
PlotVariant = Literal["top_label", "positive_class", "classwise"]
_AXES = {  # variant: (y label, x label, what the bottom panel's lines mark)
    "top_label": ("accuracy", "confidence (top-label probability)",
                  "solid: accuracy, dashed: mean confidence"),
    "positive_class": ("frequency of class 1", "predicted probability of class 1",
                       "solid: frequency of class 1, dashed: mean prediction"),
    "classwise": ("frequency of the class", "predicted probability of the class", ""),
}


class ReliabilityFigure(InlineFigure):
    """A reliability diagram: a matplotlib ``Figure`` that also shows itself as PNG."""


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or type(x).__module__.startswith("torch")


def _series(scores: Any, names: Sequence[str] | None) -> tuple[list[Any], list[str]]:
    several = isinstance(scores, (list, tuple)) and len(scores) > 0 and all(
        _is_array(s) for s in scores)
    items = list(scores) if several else [scores]
    if names is None:
        names = ["model"] if len(items) == 1 else [f"model {i}" for i in range(len(items))]
    names = [str(n) for n in names]
    if len(names) != len(items):
        raise InputError(f"{len(names)} names for {len(items)} sets of scores; pass one name "
                         "per set, e.g. names=['before', 'after'].")
    return items, names


def _check_variant(variant: str, prepared: list[Scores]) -> None:
    if variant not in _AXES:
        raise InputError(f"variant={variant!r} is not one of {tuple(_AXES)}. Use 'top_label' "
                         "(confidence), 'positive_class' (two classes) or 'classwise' (one "
                         "curve per class).")
    if variant == "positive_class" and any(s.n_classes != 2 for s in prepared):
        raise InputError("variant='positive_class' needs scores of 2 classes; use 'top_label' "
                         "or 'classwise'.")


def _pairs(s: Scores, variant: str) -> list[tuple[int | None, np.ndarray, np.ndarray]]:
    """(class, predicted value, 0/1 outcome) of each curve the variant draws."""
    if variant == "top_label":
        confidence = s.probs.max(axis=1)
        return [(None, confidence, (s.probs.argmax(axis=1) == s.labels).astype(np.float64))]
    classes = [1] if variant == "positive_class" else range(s.n_classes)
    return [(k, s.probs[:, k], (s.labels == k).astype(np.float64)) for k in classes]


def _class_name(k: int, label_names: Sequence[str] | None) -> str:
    if label_names is None:
        return f"class {k}"
    if k >= len(label_names):
        raise InputError(f"{len(label_names)} label_names but the scores have class {k}; pass "
                         "one name per class, in class-id order.")
    return str(label_names[k])


def _draw_bars(top, bottom, values, outcomes, *, i, count, color, label, n_bins, scheme,
               hist_edges) -> None:
    """Bars of the bin frequencies (and, for one set, the gap to the bin's mean value) on top,
    the histogram of the values below."""
    single = count == 1
    b = bin_values(values, outcomes, n_bins, scheme)
    full = b.count > 0
    width = (b.upper - b.lower) / count
    left = b.lower + i * width
    top.bar(left[full], b.mean_outcome[full], width=width[full], align="edge", color=color,
            alpha=0.75 if single else 0.6, edgecolor="black", linewidth=0.5, label=label)
    if single:
        gap = b.mean_value[full] - b.mean_outcome[full]
        top.bar(left[full], gap, bottom=b.mean_outcome[full], width=width[full], align="edge",
                color="tab:red", alpha=0.25, edgecolor="tab:red", hatch="//", linewidth=0.5,
                label="gap to confidence")
    weights = np.full(len(values), 1.0 / len(values))
    bottom.hist(values, bins=hist_edges, weights=weights, color=color,
                alpha=0.75 if single else 1.0, histtype="bar" if single else "step",
                linewidth=1.5, label=label.split(" (")[0])
    bottom.axvline(outcomes.mean(), color=color, linestyle="-", linewidth=1.2)
    bottom.axvline(values.mean(), color=color, linestyle="--", linewidth=1.2)


def _draw_points(top, bottom, values, outcomes, *, color, style, n_bins, scheme, label,
                 hist_edges) -> None:
    """Binned frequencies as markers (several curves share the axes); with ``label`` (no
    smoothed curve to carry it) also joined by a thin line, and the values' histogram below."""
    b = bin_values(values, outcomes, n_bins, scheme)
    full = b.count > 0
    top.plot(b.mean_value[full], b.mean_outcome[full], marker="o", color=color,
             linestyle="none" if label is None else style, linewidth=1.0, markersize=3.5,
             alpha=0.8, label=label)
    if label is not None:
        bottom.hist(values, bins=hist_edges, weights=np.full(len(values), 1.0 / len(values)),
                    color=color, histtype="step", linestyle=style, linewidth=1.2)


def _draw_smooth(top, bottom, curve, *, color, style, n_bins, label) -> None:
    """The smoothed curve and its band on top; the smoothed density (as a share per
    histogram bin) below."""
    x = curve["x"].to_numpy()
    y, low, high = (curve[c].fill_null(np.nan).to_numpy() for c in ("y", "low", "high"))
    top.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)
    top.plot(x, y, color=color, linestyle=style, linewidth=2.0, label=label)
    bottom.plot(x, curve["density"].to_numpy() / n_bins, color=color, linestyle=style,
                linewidth=1.2)


def reliability_diagram(
    scores: Any,
    labels: Any,
    *,
    names: Sequence[str] | None = None,
    n_bins: int = DEFAULT_BINS,
    scheme: Scheme = "equal_width",
    kind: Kind = "auto",
    smooth: bool = False,
    variant: PlotVariant = "top_label",
    n_boot: int = 200,
    level: float = 0.95,
    seed: int | None = 0,
    label_names: Sequence[str] | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (5.0, 6.0),
) -> ReliabilityFigure:
    """Reliability diagram and histogram of the predicted values; returns the figure.

    ``scores`` is one set of logits or probabilities (any layout :func:`llmlab.evaluate`
    takes), or a list of arrays/tensors over the same examples to overlay (e.g. before and
    after calibration) with ``names``. Top panel: the observed frequency of each bin (bars;
    for one set, the gap to the bin's mean value is hatched) against the diagonal of perfect
    calibration, with each set's ECE in the legend. Bottom panel: the share of examples per
    bin, with the observed frequency (solid) and the mean prediction (dashed) marked.

    ``smooth=True`` adds the kernel-smoothed reliability curve (Blasiok & Nakkiran 2024, at
    the bandwidth smECE chooses) with a pointwise bootstrap band at ``level`` (``n_boot``
    resamples, ``seed``), its smECE in the legend and the smoothed density below.
    ``variant``: ``top_label`` (confidence against correctness, the default),
    ``positive_class`` (``p_1`` against ``y``, two classes) or ``classwise`` (one curve per
    class, named by ``label_names``; binned values as markers instead of bars).

    >>> fig = llmlab.calibrate.reliability_diagram(probs, labels, smooth=True)  # doctest: +SKIP
    >>> fig.savefig("diagram.png")                                              # doctest: +SKIP
    """
    items, names = _series(scores, names)
    prepared = [prepare(item, labels, kind=kind) for item in items]
    _check_variant(variant, prepared)
    fig = ReliabilityFigure(figsize=figsize, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], linestyle="--", color="0.5", linewidth=1, label="perfect calibration")
    hist_edges = np.linspace(0, 1, n_bins + 1)
    for i, (s, name) in enumerate(zip(prepared, names)):
        curves = (smooth_reliability_curve(s, None, variant=variant, n_boot=n_boot,
                                           level=level, seed=seed) if smooth else None)
        for k, values, outcomes in _pairs(s, variant):
            if variant == "classwise":
                color, style = _COLORS[k % len(_COLORS)], _STYLES[i % len(_STYLES)]
                who = _class_name(k, label_names) + ("" if len(prepared) == 1 else f", {name}")
                gap = bin_values(values, outcomes, n_bins, scheme).weighted_gap()
                _draw_points(top, bottom, values, outcomes, color=color, style=style,
                             n_bins=n_bins, scheme=scheme, hist_edges=hist_edges,
                             label=None if smooth else f"{who} (ECE {100 * gap:.1f}%)")
            else:
                color, style, who = _COLORS[i % len(_COLORS)], "-", name
                gap = bin_values(values, outcomes, n_bins, scheme).weighted_gap()
                extra = (f", smECE {100 * smooth_ece(s, None, variant=variant):.1f}%"
                         if smooth else "")
                _draw_bars(top, bottom, values, outcomes, i=i, count=len(prepared),
                           color=color, label=f"{name} (ECE {100 * gap:.1f}%{extra})",
                           n_bins=n_bins, scheme=scheme, hist_edges=hist_edges)
            if smooth:
                one = curves.filter(curves["class"].is_null() if k is None
                                    else curves["class"] == k)
                if variant == "classwise":
                    smece = smooth_ece(values, outcomes.astype(np.int64))
                    label = f"{who} (ECE {100 * gap:.1f}%, smECE {100 * smece:.1f}%)"
                else:
                    label = f"{who}: smoothed, {100 * level:g}% band"
                _draw_smooth(top, bottom, one, color=color, style=style, n_bins=n_bins,
                             label=label)
    y_label, x_label, marks = _AXES[variant]
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel(y_label)
    top.legend(loc="upper left", fontsize="small")
    what = f"{n_bins} {scheme.replace('_', '-')} bins" + (", smoothed" if smooth else "")
    top.set_title(title or f"Reliability ({what})")
    bottom.set_xlabel(x_label)
    bottom.set_ylabel("share")
    if marks:
        bottom.text(0.01, 0.95, marks, fontsize="x-small", transform=bottom.transAxes, va="top")
    return fig


def reliability_png(scores: Any, labels: Any, *, dpi: int = 100, **options: Any) -> bytes:
    """:func:`reliability_diagram` rendered to PNG bytes (for widgets: ``ipywidgets.Image``)."""
    return figure_png(reliability_diagram(scores, labels, **options), dpi=dpi)
