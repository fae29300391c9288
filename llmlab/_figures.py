"""Matplotlib figures that display themselves in a notebook without pyplot.

Figures built without pyplot keep no global state and are not shown twice, but a notebook
shows a bare ``Figure`` only as text unless an inline backend is loaded. ``InlineFigure``
adds a PNG representation rendered with the Agg canvas.

>>> fig = InlineFigure(figsize=(2, 2))
>>> fig._repr_png_()[:4]
b'\\x89PNG'
"""

from __future__ import annotations

import io
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


class InlineFigure(Figure):
    """A matplotlib ``Figure`` that also shows itself as PNG where no inline backend is set."""

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def figure_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (for widgets and files), rendered with the Agg canvas."""
    FigureCanvasAgg(fig)  # attach an Agg canvas; does not change matplotlib's global backend
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


#: plotly's default colour sequence, for traces that do not name a colour
PLOTLY_COLOURS = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692",
                  "#b6e880", "#ff97ff", "#fecb52")
_DASHES = {"dash": "--", "dot": ":", "dashdot": "-."}


def plotly_png(figure: Any, *, width: float = 7.0, dpi: int = 72) -> bytes:
    """A plotly figure (``go.Figure``, ``FigureWidget`` or its dict) drawn by matplotlib as PNG.

    The static picture of a chart for places without JavaScript (saved notebooks on GitHub,
    nbviewer, HTML exports): scatter traces (lines, markers, text, ``fill="toself"`` bands)
    and bars on every subplot, axis titles and log axes, the title, annotations (subplot
    titles) and a legend; other trace types are left out.

    >>> import plotly.graph_objects as go
    >>> plotly_png(go.Figure(go.Scatter(y=[1, 3, 2])))[:4]
    b'\\x89PNG'
    """
    spec = figure if isinstance(figure, dict) else figure.to_plotly_json()
    data, layout = list(spec.get("data", ())), dict(spec.get("layout", {}))
    fig = Figure(figsize=(width, max(float(layout.get("height") or 300), 150) / 100 * 0.8))
    axes = _subplot_axes(fig, data, layout)
    for i, trace in enumerate(data):
        ax = axes[_axis_names(trace)]
        _draw_trace(ax, trace, PLOTLY_COLOURS[i % len(PLOTLY_COLOURS)])
    for annotation in layout.get("annotations") or ():
        if annotation.get("xref") == "paper" and annotation.get("text"):
            fig.text(annotation.get("x", 0.5), annotation.get("y", 1.0), annotation["text"],
                     ha="center", va="bottom", fontsize=9)
    title = _text(layout.get("title"))
    if title:
        fig.suptitle(title, x=0.02, ha="left", fontsize=10)
    _legend(fig, axes.values())
    return figure_png(fig, dpi=dpi)


def _axis_names(trace: dict) -> tuple[str, str]:
    return trace.get("xaxis") or "x", trace.get("yaxis") or "y"


def _subplot_axes(fig: Figure, data: list[dict], layout: dict) -> dict[tuple[str, str], Any]:
    """One matplotlib Axes per (x axis, y axis) pair the traces use, placed by the domains."""
    pairs = list(dict.fromkeys([_axis_names(t) for t in data] or [("x", "y")]))
    axes = {}
    for x_name, y_name in pairs:
        x_axis = layout.get("xaxis" + x_name[1:]) or {}
        y_axis = layout.get("yaxis" + y_name[1:]) or {}
        (x0, x1), (y0, y1) = x_axis.get("domain") or (0, 1), y_axis.get("domain") or (0, 1)
        ax = fig.add_axes((0.08 + 0.9 * x0, 0.15 + 0.72 * y0, 0.9 * (x1 - x0) - 0.02,
                           0.72 * (y1 - y0)))
        for settings, set_label, set_scale, set_limits in (
                (x_axis, ax.set_xlabel, ax.set_xscale, ax.set_xlim),
                (y_axis, ax.set_ylabel, ax.set_yscale, ax.set_ylim)):
            set_label(_text(settings.get("title")), fontsize=8)
            log = settings.get("type") == "log"
            if log:
                set_scale("log")
            limits = settings.get("range")
            if limits and None not in limits:
                set_limits(*[10 ** v for v in limits] if log else limits)
        ax.tick_params(labelsize=7)
        ax.grid(True, color="#eeeeee")
        axes[(x_name, y_name)] = ax
    return axes


def _draw_trace(ax: Any, trace: dict, default_colour: str) -> None:
    kind = trace.get("type", "scatter")
    x, y = trace.get("x"), trace.get("y")
    if y is None or kind not in ("scatter", "scattergl", "bar"):
        return
    x = list(range(len(y))) if x is None else x
    label = trace.get("name") if trace.get("showlegend", True) is not False else None
    if kind == "bar":
        marker = trace.get("marker") or {}
        width, offset = trace.get("width", 0.8), trace.get("offset", 0)
        ax.bar(_shifted(x, offset), _numbers(y), width=width, align="edge",
               color=_colour(marker.get("color")) or default_colour, label=label, alpha=0.8)
        return
    line, marker = trace.get("line") or {}, trace.get("marker") or {}
    colour = _colour(line.get("color")) or _colour(marker.get("color")) or default_colour
    mode, alpha = trace.get("mode") or "lines", trace.get("opacity", 1.0)
    if trace.get("fill") == "toself":
        ax.fill(x, _numbers(y), color=_colour(trace.get("fillcolor")) or colour, alpha=alpha,
                linewidth=0, label=label)
        return
    if "lines" in mode:
        ax.plot(x, _numbers(y), color=colour, linewidth=line.get("width", 1.5) or 0,
                linestyle=_DASHES.get(line.get("dash"), "-"), alpha=alpha, label=label)
        label = None
    if "markers" in mode:
        colours = marker.get("color")
        colours = [_colour(c) for c in colours] if isinstance(colours, list) else colour
        ax.scatter(x, _numbers(y), c=colours, s=(marker.get("size") or 6) ** 2 / 2,
                   alpha=alpha, label=label, zorder=3)
    if "text" in mode and trace.get("text"):
        for xi, yi, text in zip(x, y, trace["text"]):
            ax.annotate(str(text), (xi, yi), textcoords="offset points", xytext=(0, 5),
                        ha="center", fontsize=7)


def _legend(fig: Figure, axes: Any) -> None:
    handles, labels = [], []
    for ax in axes:
        h, ls = ax.get_legend_handles_labels()
        handles += h
        labels += ls
    if len(labels) > 1:
        fig.legend(handles, labels, loc="upper right", fontsize=7, frameon=False,
                   ncols=min(len(labels), 4))


def _text(title: Any) -> str:
    if isinstance(title, dict):
        return str(title.get("text") or "")
    return "" if title is None else str(title)


def _numbers(values: Any) -> list[float]:
    return [float("nan") if v is None else v for v in values]


def _shifted(xs: Any, offsets: Any) -> list[float]:
    offsets = offsets if isinstance(offsets, (list, tuple)) else [offsets] * len(xs)
    return [x + o for x, o in zip(xs, offsets)]


def _colour(colour: Any) -> str | None:
    """A plotly colour matplotlib understands (hex or a name), else None."""
    from matplotlib.colors import is_color_like

    return colour if isinstance(colour, str) and is_color_like(colour) else None
