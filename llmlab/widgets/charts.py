"""``LineChart``: a live plotly line chart for widgets, updated a few times a second.

plotly's ``FigureWidget`` is the one plotting library of llmlab's widgets: it is an
anywidget with plotly.js bundled in the Python package, so charts draw offline in
JupyterLab, Notebook 7 and VS Code. ``LineChart`` keeps every series in Python, buffers
appended points and sends them in one ``batch_update`` at most every ``interval`` seconds.

>>> chart = LineChart("loss", y_title="cross-entropy")
>>> chart.set_series("val/loss", [100, 200], [2.1, 1.9])
>>> chart.append("train/loss", 1, 4.2); chart.flush()
>>> chart.series_names
['val/loss', 'train/loss']
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Sequence

import ipywidgets as widgets

from llmlab.widgets.snapshot import Snapshot, png_img
from llmlab.widgets.throttle import DEFAULT_INTERVAL, Throttle

#: Points of one series sent to the browser at most (longer series are thinned evenly).
MAX_POINTS = 2000
#: Series this short also get markers (a line through one or two points is hard to see).
MARKERS_UP_TO = 50


class LineChart(Snapshot, widgets.VBox):
    """Named line series over a shared x axis (training step by default).

    ``.figure`` is the plotly ``FigureWidget``. ``set_series`` replaces a series and draws it
    at once; ``append`` adds a point and draws when the throttle lets it (``flush`` draws what
    is still buffered). Series hold all their points; the browser gets at most
    ``max_points`` per series.
    """

    def __init__(self, title: str, *, x_title: str = "step", y_title: str = "",
                 height: int = 280, interval: float = DEFAULT_INTERVAL,
                 max_points: int = MAX_POINTS, clock: Callable[[], float] = time.monotonic,
                 **kwargs):
        from llmlab.widgets.plotly_widget import figure_widget

        if not isinstance(max_points, int) or max_points < 2:
            raise ValueError(f"max_points must be an int >= 2, got {max_points!r}")
        self.title, self.max_points = title, max_points
        self.figure = figure_widget(layout=dict(
            title=dict(text=title, x=0.02, font=dict(size=14)), height=height,
            margin=dict(l=55, r=15, t=40, b=40), xaxis_title=x_title, yaxis_title=y_title,
            legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"),
            template="plotly_white", uirevision="keep",
        ))
        self._series: dict[str, tuple[list[float], list[float]]] = {}
        self._dirty: set[str] = set()
        self._lock = threading.RLock()
        self._throttle = Throttle(self._draw, interval, clock=clock)
        super().__init__([self.figure], **kwargs)
        self.add_class("llmlab-LineChart")

    @property
    def series_names(self) -> list[str]:
        """Names of the series, in the order they were first added."""
        return list(self._series)

    def points(self, name: str) -> tuple[list[float], list[float]]:
        """All (xs, ys) of series ``name``, buffered points included."""
        if name not in self._series:
            raise KeyError(f"no series {name!r} in chart {self.title!r}; it has "
                           f"{self.series_names or 'none'}")
        xs, ys = self._series[name]
        return list(xs), list(ys)

    def set_series(self, name: str, xs: Sequence[float], ys: Sequence[float]) -> None:
        """Replace (or add) series ``name`` and draw it now."""
        xs, ys = list(xs), [_number(name, y) for y in ys]
        if len(xs) != len(ys):
            raise ValueError(f"series {name!r} has {len(xs)} x values but {len(ys)} y values; "
                             "give one y per x")
        with self._lock:
            self._series[name] = (xs, ys)
            self._dirty.add(name)
            self._draw()

    def append(self, name: str, x: float, y: float) -> None:
        """Add the point (x, y) to series ``name`` (created if new); drawn when throttled."""
        y = _number(name, y)
        with self._lock:
            xs, ys = self._series.setdefault(name, ([], []))
            xs.append(x)
            ys.append(y)
            self._dirty.add(name)
        self._throttle()

    def flush(self) -> None:
        """Draw every buffered point now, in one update."""
        self._throttle.flush()

    def clear(self) -> None:
        """Remove every series."""
        with self._lock:
            self._series.clear()
            self._dirty.clear()
            self.figure.data = ()
            self._sync_views()

    def _draw(self) -> None:
        with self._lock:
            if not self._dirty:
                return
            traces = {trace.name: trace for trace in self.figure.data}
            with self.figure.batch_update():
                for name in [n for n in self._series if n in self._dirty]:
                    if name not in traces:
                        self.figure.add_scatter(name=name, mode="lines")
                        traces[name] = self.figure.data[-1]
                    xs, ys = thin(*self._series[name], self.max_points)
                    traces[name].x, traces[name].y = xs, ys
                    traces[name].mode = "lines+markers" if len(xs) <= MARKERS_UP_TO else "lines"
            self._dirty.clear()
            self._sync_views()

    def _sync_views(self) -> None:
        """Store the whole figure in the widget's synced state, not only in the deltas.

        plotly sends trace changes as one-off messages that only the views open at that
        moment apply; a view opened later (a page reload, a second window, the widget shown
        again) starts from the state stored in the widget model, which plotly refreshes only
        when the figure itself is displayed. Without this, such a view would show the curve
        as it was at first display, and every later delta would name traces it lacks.
        """
        figure = self.figure
        figure._widget_data = copy.deepcopy(figure._data)
        figure._widget_layout = copy.deepcopy(figure._layout_obj._props)

    def static_png(self) -> bytes | None:
        """The chart as drawn now, as a PNG (None while it has no series)."""
        with self._lock:
            if not self._series:
                return None  # before matplotlib's import: an empty chart has no picture
            from llmlab._figures import plotly_png

            self._draw()
            return plotly_png(self.figure)

    def static_img(self) -> str:
        """The chart as an inline ``<img>`` for another widget's static picture ("" if empty)."""
        png = self.static_png()
        return png_img(png, f"{self.title} chart") if png is not None else ""

    def __repr__(self) -> str:
        counts = ", ".join(f"{name}: {len(xs)} points" for name, (xs, _) in self._series.items())
        return f"LineChart({self.title!r}{': ' + counts if counts else ', empty'})"


def _number(name: str, value: object) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"series {name!r} takes numbers as y values, got {value!r}") from None


def thin(xs: list[float], ys: list[float], limit: int) -> tuple[list[float], list[float]]:
    """At most ``limit`` evenly spaced points of a series, always keeping the last one.

    >>> thin(list(range(10)), list(range(10)), 4)
    ([0, 3, 6, 9], [0, 3, 6, 9])
    """
    if len(xs) <= limit:
        return xs, ys
    picks = [round(i * (len(xs) - 1) / (limit - 1)) for i in range(limit)]
    return [xs[i] for i in picks], [ys[i] for i in picks]
