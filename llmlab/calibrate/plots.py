"""Reliability diagrams with matplotlib: accuracy per confidence bin against the diagonal, over
a histogram of the confidences (Guo et al. 2017, figure 1), for one or several models.

Figures are built without pyplot (no global state, nothing shown twice in a notebook) and
render to PNG with matplotlib's Agg canvas; a notebook displays the returned figure.

>>> fig = reliability_diagram([probs_before, probs_after], labels,          # doctest: +SKIP
...                           names=["before", "after"])
>>> fig.savefig("reliability.png")                                          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from llmlab._figures import InlineFigure, figure_png
from llmlab.errors import InputError
from llmlab.metrics import DEFAULT_BINS, Kind, Scheme, bin_values, prepare

_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


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


def reliability_diagram(
    scores: Any,
    labels: Any,
    *,
    names: Sequence[str] | None = None,
    n_bins: int = DEFAULT_BINS,
    scheme: Scheme = "equal_width",
    kind: Kind = "auto",
    title: str | None = None,
    figsize: tuple[float, float] = (5.0, 6.0),
) -> ReliabilityFigure:
    """Top-label reliability diagram and confidence histogram; returns the figure.

    ``scores`` is one set of logits or probabilities (any layout :func:`llmlab.evaluate`
    takes), or a list of arrays/tensors over the same examples to overlay (e.g. before and
    after calibration) with ``names``. Top panel: the accuracy of each confidence bin (bars;
    for one set, the gap to the bin's mean confidence is hatched) against the diagonal of
    perfect calibration, with each set's ECE in the legend. Bottom panel: the share of
    examples per confidence bin, with accuracy (solid) and mean confidence (dashed) marked.

    >>> fig = llmlab.calibrate.reliability_diagram(probs, labels)       # doctest: +SKIP
    >>> fig.savefig("diagram.png")                                      # doctest: +SKIP
    """
    items, names = _series(scores, names)
    prepared = [prepare(item, labels, kind=kind) for item in items]
    fig = ReliabilityFigure(figsize=figsize, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], linestyle="--", color="0.5", linewidth=1, label="perfect calibration")
    single = len(prepared) == 1
    hist_edges = np.linspace(0, 1, n_bins + 1)
    for i, (s, name) in enumerate(zip(prepared, names)):
        color = _COLORS[i % len(_COLORS)]
        confidence = s.probs.max(axis=1)
        correct = (s.probs.argmax(axis=1) == s.labels).astype(np.float64)
        b = bin_values(confidence, correct, n_bins, scheme)
        full = b.count > 0
        width = (b.upper - b.lower) / len(prepared)
        left = b.lower + i * width
        label = f"{name} (ECE {100 * b.weighted_gap():.1f}%)"
        top.bar(left[full], b.mean_outcome[full], width=width[full], align="edge",
                color=color, alpha=0.75 if single else 0.6, edgecolor="black", linewidth=0.5,
                label=label)
        if single:
            gap = b.mean_value[full] - b.mean_outcome[full]
            top.bar(left[full], gap, bottom=b.mean_outcome[full], width=width[full],
                    align="edge", color="tab:red", alpha=0.25, edgecolor="tab:red",
                    hatch="//", linewidth=0.5, label="gap to confidence")
        weights = np.full(len(confidence), 1.0 / len(confidence))
        bottom.hist(confidence, bins=hist_edges, weights=weights, color=color,
                    alpha=0.75 if single else 1.0, histtype="bar" if single else "step",
                    linewidth=1.5, label=name)
        bottom.axvline(correct.mean(), color=color, linestyle="-", linewidth=1.2)
        bottom.axvline(confidence.mean(), color=color, linestyle="--", linewidth=1.2)
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left", fontsize="small")
    top.set_title(title or f"Reliability ({n_bins} {scheme.replace('_', '-')} bins)")
    bottom.set_xlabel("confidence (top-label probability)")
    bottom.set_ylabel("share")
    bottom.text(0.01, 0.95, "solid: accuracy, dashed: mean confidence", fontsize="x-small",
                transform=bottom.transAxes, va="top")
    return fig


def reliability_png(scores: Any, labels: Any, *, dpi: int = 100, **options: Any) -> bytes:
    """:func:`reliability_diagram` rendered to PNG bytes (for widgets: ``ipywidgets.Image``)."""
    return figure_png(reliability_diagram(scores, labels, **options), dpi=dpi)
