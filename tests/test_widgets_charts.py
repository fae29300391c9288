"""The widgets' throttle and live line chart: deterministic, with an injected clock."""

from __future__ import annotations

import threading

import ipywidgets
import pytest

from llmlab.widgets.charts import LineChart, thin
from llmlab.widgets.throttle import Throttle


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_throttle_runs_at_most_once_per_interval_and_flushes_the_last_request():
    clock, calls = Clock(), []
    throttle = Throttle(lambda: calls.append(clock.now), interval=0.5, clock=clock)
    assert throttle() is True                  # the first request always goes through
    clock.now = 0.2
    assert throttle() is False and throttle.pending
    clock.now = 0.4
    assert throttle() is False
    clock.now = 0.6                            # late enough: runs, and clears the pending one
    assert throttle() is True and not throttle.pending
    assert throttle.flush() is False           # nothing held back
    clock.now = 0.7
    throttle()
    assert throttle.flush() is True
    assert calls == [0.0, 0.6, 0.7]


def test_throttle_over_many_requests_sends_a_few_per_second():
    clock, calls = Clock(), []
    throttle = Throttle(lambda: calls.append(clock.now), interval=0.25, clock=clock)
    for i in range(1000):                      # 1,000 requests over 10 seconds
        clock.now = i * 0.01
        throttle()
    throttle.flush()
    assert 40 <= len(calls) <= 42
    assert calls[-1] == pytest.approx(9.99)     # the final state always gets out


def test_throttle_refuses_a_negative_interval():
    with pytest.raises(ValueError, match="interval"):
        Throttle(lambda: None, interval=-1)


def test_throttle_never_runs_the_action_twice_at_once():
    clock, running, overlaps = Clock(), [], []

    def action():
        overlaps.append(len(running))
        running.append(1)
        running.pop()

    throttle = Throttle(action, interval=0.0, clock=clock)
    threads = [threading.Thread(target=lambda: [throttle() for _ in range(200)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(overlaps) == 800 and max(overlaps) == 0


def test_line_chart_buffers_appends_and_flushes_them_in_one_update():
    clock = Clock()
    chart = LineChart("loss", y_title="nats", interval=1.0, clock=clock)
    assert isinstance(chart, ipywidgets.VBox) and chart.figure in chart.children
    chart.append("train/loss", 1, 4.0)         # first point drawn at once
    assert chart.figure.data[0].x == (1,)
    for step in range(2, 6):
        chart.append("train/loss", step, 4.0 - step / 10)
    assert chart.figure.data[0].x == (1,)      # held back by the throttle
    assert chart.points("train/loss")[0] == [1, 2, 3, 4, 5]
    updates = []                               # messages plotly sends to the browser
    chart.figure.observe(lambda change: updates.append(change.name) if change.new else None,
                         names=["_py2js_update", "_py2js_restyle", "_py2js_addTraces"])
    chart.flush()
    assert chart.figure.data[0].x == (1, 2, 3, 4, 5)
    assert chart.figure.data[0].y[-1] == pytest.approx(3.5)
    assert len(updates) == 1                   # x and y of the series went in one update
    clock.now = 2.0
    chart.append("train/loss", 6, 3.4)         # late enough: drawn without a flush
    assert len(chart.figure.data[0].x) == 6


def test_line_chart_series_set_append_and_clear():
    chart = LineChart("curves")
    chart.set_series("val/loss", [100, 200], [2.0, 1.8])
    chart.append("train/loss", 1, 4.2)
    chart.flush()
    assert chart.series_names == ["val/loss", "train/loss"]
    assert [t.name for t in chart.figure.data] == ["val/loss", "train/loss"]
    chart.set_series("val/loss", [300], [1.5])          # replaces, does not add a trace
    assert len(chart.figure.data) == 2 and chart.figure.data[0].x == (300,)
    assert "val/loss: 1 points" in repr(chart)
    chart.clear()
    assert chart.series_names == [] and chart.figure.data == ()
    assert "empty" in repr(chart)


def test_line_chart_names_bad_input():
    chart = LineChart("loss")
    with pytest.raises(ValueError, match="2 x values but 1 y values"):
        chart.set_series("a", [1, 2], [3.0])
    with pytest.raises(KeyError, match="no series 'b'"):
        chart.points("b")
    with pytest.raises(TypeError, match="takes numbers"):
        chart.append("a", 1, "not a number")
    assert chart.series_names == []            # nothing half-added
    with pytest.raises(ValueError, match="max_points"):
        LineChart("x", max_points=1)


def test_long_series_are_thinned_for_the_browser_but_kept_whole():
    chart = LineChart("loss", max_points=100)
    chart.set_series("train/loss", range(10_000), [1.0] * 10_000)
    drawn = chart.figure.data[0].x
    assert len(drawn) == 100 and drawn[0] == 0 and drawn[-1] == 9_999
    assert chart.figure.data[0].mode == "lines"           # markers only on short series
    chart.set_series("val/loss", [100], [2.0])
    assert chart.figure.data[1].mode == "lines+markers"
    assert len(chart.points("train/loss")[0]) == 10_000
    assert thin([1, 2, 3], [4, 5, 6], 5) == ([1, 2, 3], [4, 5, 6])


def test_line_chart_keeps_the_whole_figure_in_the_synced_state_for_new_views():
    """A view opened later (reload, second window, shown again) starts from the widget's
    stored state; it must hold every trace drawn so far, not the figure at first display."""
    chart = LineChart("loss", interval=0.0)
    for step in range(1, 6):
        chart.append("train/loss", step, 5.0 - step)
    chart.set_series("val/loss", [2, 4], [3.5, 2.5])
    stored = {trace["name"]: trace for trace in chart.figure._widget_data}
    assert list(stored["train/loss"]["x"]) == [1, 2, 3, 4, 5]
    assert list(stored["train/loss"]["y"]) == [4.0, 3.0, 2.0, 1.0, 0.0]
    assert list(stored["val/loss"]["x"]) == [2, 4]
    assert chart.figure._widget_layout["title"]["text"] == "loss"
    chart.clear()
    assert chart.figure._widget_data == []
