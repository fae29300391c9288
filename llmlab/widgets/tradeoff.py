"""``TradeoffWidget``: pick configs and compressed variants, run a sweep, see table and plot.

The widget is a view over two calls a user could type: ``llmlab.sweep(entries, data,
steps=...)`` and ``llmlab.plot_tradeoff(table, x, y)``.

>>> TradeoffWidget(data, {"small": cfg_small, "wide": cfg_wide},
...                source=trainer_widget)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
from IPython.display import display

from llmlab.tradeoff import LOWER_IS_BETTER, plot_tradeoff, sweep
from llmlab.widgets.snapshot import Snapshot, png_img, snapshot_html, text_html
from llmlab.widgets.sources import resolve_model
from llmlab.widgets.status import StatusLine
from llmlab.widgets.tables import frame_html

# compressed variants of the source's model: label -> how to make it
VARIANTS = {
    "float32": lambda model: model,
    "int8": lambda model: _compress().quantize(model, "int8"),
    "int4 weights": lambda model: _compress().quantize(model, "int4-weight"),
    "30% heads pruned": lambda model: _compress().prune(model, 0.3, structured="heads"),
}


def _compress():
    from llmlab import compress

    return compress


class TradeoffWidget(Snapshot, widgets.VBox):
    """Choose entries, run :func:`llmlab.sweep` on ``data``, and show its table and Pareto plot.

    ``entries`` maps names to ``ModelConfig`` s (trained for ``steps`` steps) or models
    (evaluated as they are). ``source`` (a model source: a ``(model, tokenizer)`` pair, a
    ``TrainerWidget`` ...) adds compressed variants of its current model. After a run,
    ``table`` holds the polars table and ``figure`` the plotly figure.
    """

    def __init__(self, data: Any, entries: Mapping[str, Any] | None = None, *,
                 source: Any = None, steps: int = 100, run_dir: Any = None,
                 **sweep_settings: Any):
        self.data, self.source, self.run_dir = data, source, run_dir
        self.entries = dict(entries or {})
        self.sweep_settings = sweep_settings
        self.table = None
        self.figure = None
        options = list(self.entries) + ([f"source: {v}" for v in VARIANTS] if source else [])
        self.choice = widgets.SelectMultiple(options=options, value=tuple(options),
                                             description="entries", rows=min(len(options), 8))
        self.steps = widgets.BoundedIntText(value=steps, min=1, max=1_000_000,
                                            description="steps")
        axes = list(LOWER_IS_BETTER)
        self.x_axis = widgets.Dropdown(options=axes, value="params", description="x")
        self.y_axis = widgets.Dropdown(options=axes, value="val_loss", description="y")
        self.run_button = widgets.Button(description="Run sweep", button_style="primary",
                                         icon="play")
        self.status = StatusLine()
        self.table_view = widgets.HTML()
        self.plot = widgets.Output()
        self.run_button.on_click(lambda _: self.run())
        self.x_axis.observe(lambda _: self.redraw(), names="value")
        self.y_axis.observe(lambda _: self.redraw(), names="value")
        super().__init__([
            widgets.HBox([self.choice, widgets.VBox([self.steps, self.x_axis, self.y_axis,
                                                     self.run_button])]),
            self.status, self.table_view, self.plot,
        ])
        self.add_class("llmlab-tradeoff")

    def run(self) -> None:
        """Run the sweep on the chosen entries (what the button does)."""
        with self.status.reporting("the sweep"):
            chosen = self._chosen_entries()
            if not chosen:
                raise ValueError("no entries chosen; select at least one in the list")
            self.run_button.disabled = True
            self.status.show(f"running {len(chosen)} entries for {self.steps.value} steps ...")
            try:
                self.table = sweep(chosen, self.data, steps=self.steps.value,
                                   run_dir=self.run_dir, **self.sweep_settings)
            finally:
                self.run_button.disabled = False
            self.table_view.value = _table_html(self.table)
            self.redraw()
            self.status.show(f"done: {self.table.height} runs recorded", "ok")
            self.refresh_snapshot()

    def static_html(self) -> str:
        """The sweep's table and its Pareto plot as a picture (before a sweep: the entries)."""
        from llmlab._figures import plotly_png

        if self.table is None or self.figure is None:
            body = text_html("entries: " + ", ".join(self.choice.value))
        else:
            body = self.table_view.value + png_img(plotly_png(self.figure), "Pareto plot")
        return snapshot_html("tradeoff", body, text_html(self.status.message, kind="status"),
                             title="TradeoffWidget")

    def redraw(self) -> None:
        """Plot the current table against the chosen axes."""
        if self.table is None:
            return
        with self.status.reporting("plotting"):
            self.figure = plot_tradeoff(self.table, x=self.x_axis.value, y=self.y_axis.value)
            self.plot.clear_output(wait=True)
            with self.plot:
                display(self.figure)

    def _chosen_entries(self) -> dict[str, Any]:
        chosen = {}
        for name in self.choice.value:
            if name in self.entries:
                chosen[name] = self.entries[name]
            else:
                model, _ = resolve_model(self.source, need_tokenizer=False)
                chosen[name] = VARIANTS[name.removeprefix("source: ")](model)
        return chosen


def _table_html(table) -> str:
    """The sweep's table: numbers right-aligned, missing values as "–", scrolled sideways
    rather than wider than the widget."""
    return f'<div style="overflow-x:auto;max-width:100%">{frame_html(table)}</div>'
