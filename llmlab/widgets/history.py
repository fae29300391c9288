"""``RunHistory``: the run store as a filterable, sortable table, with overlaid curves.

The table is ``llmlab.runs.list(run_dir)`` (a polars frame), filtered by status and by text
in the name or id, and sorted by any column: click a header (again to reverse; an arrow shows
the sort), or use the "sort by" list and "descending" box. Selecting runs overlays one metric
of each (``llmlab.runs.compare``) in a :class:`~llmlab.widgets.LineChart`; "Open in builder" loads a
run's model config into a :class:`~llmlab.widgets.ModelBuilder`.

>>> history = RunHistory("llmlab-runs")                     # doctest: +SKIP
>>> history.sort_on("val_loss")                             # doctest: +SKIP
>>> history.runs_select.value = (run.id,)                   # doctest: +SKIP
>>> history.open_in(builder)                                # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

import ipywidgets as widgets

from llmlab.widgets.charts import LineChart
from llmlab.widgets.poll import Poller
from llmlab.widgets.snapshot import Snapshot, snapshot_html, text_html
from llmlab.widgets.sortable_table import SortableTable
from llmlab.widgets.status import StatusLine
from llmlab.widgets.tables import frame_html, run_names

ANY = "any status"
SORTABLE = ("created_at", "updated_at", "name", "status", "family", "params", "steps",
            "train_loss", "val_loss", "tokens_per_s", "mfu", "id")
#: Columns a first header click sorts A to Z; the others (numbers, times) start largest first.
ASCENDING_FIRST = ("name", "status", "family", "id")
TABLE_COLUMNS = ("name", "status", "family", "params", "steps", "train_loss", "val_loss",
                 "tokens_per_s", "mfu", "created_at", "id")
#: Table headers that differ from the listing's column names.
HEADERS = {"tokens_per_s": "tok/s", "mfu": "MFU %"}
#: each table header -> the listing column a click on it sorts by
SORT_KEYS = {HEADERS.get(column, column): column for column in TABLE_COLUMNS}
#: rows the table shows at most (filter to see others)
MAX_ROWS = 200
#: Seconds between two reads of the store while a listed run is running.
POLL_SECONDS = 2.0


class RunHistory(Snapshot, widgets.VBox):
    """Browse the runs of a store (``run_dir``, else ``$LLMLAB_RUNS_DIR``, else ./llmlab-runs).

    ``.runs`` is the whole table as last read (Refresh reads it again), ``.shown`` the
    filtered and sorted rows, ``.selected`` the ids chosen in the list. ``builder`` (optional)
    is the ModelBuilder the "Open in builder" button fills.
    """

    def __init__(self, run_dir: str | os.PathLike | None = None, *, builder: Any = None,
                 poll: float | None = POLL_SECONDS) -> None:
        import polars as pl

        from llmlab.runs.store import list_schema

        self.builder = builder
        self._poller = None if poll is None else Poller(self._poll_tick, poll,
                                                        name="llmlab-history")
        self.store: Any = None
        self.runs = self.shown = pl.DataFrame(schema=list_schema())
        self.search = widgets.Text(placeholder="name, id, family or tag", description="filter")
        self.status_filter = widgets.Dropdown(options=[ANY], description="status")
        self.sort_by = widgets.Dropdown(options=SORTABLE, description="sort by")
        self.descending = widgets.Checkbox(True, description="descending", indent=False)
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.runs_select = widgets.SelectMultiple(options=[], rows=6, description="runs",
                                                  layout=widgets.Layout(width="100%"))
        self.metric = widgets.Dropdown(options=["train/loss"], description="metric")
        self.open_button = widgets.Button(description="Open in builder", icon="cubes")
        self.chart = LineChart("runs", y_title="train/loss")
        self.table = SortableTable()
        self.table.on_sort(self._on_header)
        self._holding = False
        self.status = StatusLine()
        for control in (self.search, self.status_filter, self.sort_by, self.descending):
            control.observe(lambda _change: self._holding or self._show(), names="value")
        self.runs_select.observe(self._on_select, names="value")
        self.metric.observe(lambda _change: self._draw_curves(), names="value")
        self.refresh_button.on_click(self._on_refresh)
        self.open_button.on_click(self._on_open)
        super().__init__(children=[
            widgets.HBox([self.search, self.status_filter, self.sort_by, self.descending,
                          self.refresh_button]),
            self.table, self.runs_select, widgets.HBox([self.metric, self.open_button]),
            self.chart, self.status])
        self.add_class("llmlab-run-history")
        with self.status.reporting("reading the run store"):
            from llmlab.runs import RunStore

            self.store = RunStore(run_dir)
            self.refresh()

    # ------------------------------------------------------------------ public API
    @property
    def selected(self) -> list[str]:
        """Ids of the runs selected in the list."""
        return list(self.runs_select.value)

    def refresh(self, runs: Any = None) -> Any:
        """Read the store again (``llmlab.runs.list(run_dir)``, or show the listing ``runs``
        just read); returns the table. While a run is running the widget reads the store
        every ``poll`` seconds by itself, until none is."""
        from llmlab.runs import RunStoreError

        if self.store is None:
            raise RunStoreError("there is no readable run store; pass RunHistory(run_dir=...) "
                                "a folder")
        self._update(self.store.list() if runs is None else runs)
        if self.runs.is_empty():
            where = "" if self.store.path.is_dir() else " (the folder does not exist yet)"
            self.status.show(f"no runs in {self.store.path}{where}: train a model with "
                             f"llmlab.Trainer(..., run_dir=...) into it, then press Refresh")
        else:
            count, running = self.runs.height, self._running()
            live = (f" · {running} running, read every {self._poller.interval:g} s"
                    if running and self._poller is not None else "")
            self.status.show(f"{count} run{'s' if count != 1 else ''} in {self.store.path}{live}")
        if self._running() and self._poller is not None:
            self._poller.start()
        return self.runs

    def sort_on(self, column: str) -> None:
        """Sort as a click on ``column``'s header does: the sorted column again reverses the
        order, another column sorts A to Z (names, statuses, families, ids) or largest and
        newest first (numbers, times); the "sort by" and "descending" controls follow."""
        if column not in SORTABLE:
            raise ValueError(f"the runs cannot be sorted by {repr(column)[:60]}; click a column "
                             f"header or pick one of {', '.join(SORTABLE)} in 'sort by'")
        descending = (not self.descending.value if column == self.sort_by.value
                      else column not in ASCENDING_FIRST)
        self._holding = True
        try:
            self.sort_by.value, self.descending.value = column, descending
        finally:
            self._holding = False
        self._show()

    def close(self) -> None:
        """Stop reading the store and close the widget."""
        if self._poller is not None:
            self._poller.stop()
        super().close()

    def open_in(self, builder: Any) -> Any:
        """Load the selected run's model config into ``builder`` (``builder.load_config(
        llmlab.runs.get(run_id).config)``); returns the config."""
        if len(self.selected) != 1:
            raise ValueError(f"select exactly one run to open in the builder "
                             f"({len(self.selected)} selected)")
        run = self.store.get(self.selected[0])
        config = run.config
        if config is None:
            raise ValueError(f"run {run.name!r} has no model config to open")
        builder.load_config(config)
        return config

    def static_html(self) -> str:
        """The table as shown (filtered and sorted), the overlaid curves and the status."""
        return snapshot_html("history", self.table.value, self.chart.static_img(),
                             text_html(self.status.message, kind="status"), title="RunHistory")

    # ------------------------------------------------------------------ live reading
    def _running(self) -> int:
        return int((self.runs["status"] == "running").sum())

    def _update(self, runs: Any) -> None:
        """Show a new listing (the status choices follow the statuses present)."""
        from llmlab.runs import STATUSES

        self.runs = runs
        present = [ANY, *sorted({*STATUSES, *runs["status"].drop_nulls().to_list()})]
        if list(self.status_filter.options) != present:
            self.status_filter.options = present
        self._show()

    def _poll_tick(self) -> bool:
        """While a run is running: read the store, redraw what changed (the table and the
        selected runs' curves); False once no listed run is running."""
        with self.status.reporting("reading the run store"):
            runs = self.store.list()
            if not runs.equals(self.runs):
                self.refresh(runs)
                if self.selected:
                    self._draw_curves()
            return self._running() > 0
        return False

    # ------------------------------------------------------------------ filtering and drawing
    def _show(self) -> None:
        """Apply filter and sort; redraw the table and the run list (keeping the selection)."""
        import polars as pl

        from llmlab.runs.store import filter_runs

        frame = self.runs
        if self.status_filter.value not in (ANY, None):
            frame = frame.filter(pl.col("status") == self.status_filter.value)
        frame = filter_runs(frame, self.search.value)
        key, descending = self.sort_by.value, self.descending.value
        self.shown = frame.sort([key, "id"] if key != "id" else key,
                                descending=[descending, False] if key != "id" else descending,
                                nulls_last=True)
        self.table.value = frame_html(_table_frame(self.shown), max_rows=MAX_ROWS,
                                      sort_keys=SORT_KEYS, sorted_by=(key, descending))
        keep = [i for i in self.selected if i in set(self.shown["id"].to_list())]
        self.runs_select.options = [(_label(row), row["id"])
                                    for row in self.shown.iter_rows(named=True)]
        self.runs_select.value = tuple(keep)

    def _on_select(self, _change: dict) -> None:
        with self.status.reporting("reading the runs' metrics"):
            names: set[str] = set()
            for run_id in self.selected:
                names.update(self.store.get(run_id).metrics.columns)
            names.discard("step")
            current = self.metric.value
            self.metric.options = sorted(names) or ["train/loss"]
            if current in self.metric.options:
                self.metric.value = current
            self._draw_curves()

    def _draw_curves(self) -> None:
        """Overlay the chosen metric of every selected run: ``llmlab.runs.compare(ids, metric)``."""
        import polars as pl

        self.chart.clear()
        self.chart.figure.layout.yaxis.title.text = self.metric.value
        if not self.selected:
            return
        curves = self.store.compare(self.selected, self.metric.value)
        labels = dict(self.shown.select("id", "name").iter_rows())
        for run_id in self.selected:
            curve = curves.filter(pl.col("run_id") == run_id)
            if not curve.is_empty():
                self.chart.set_series(f"{labels.get(run_id, run_id)} ({run_id[-6:]})",
                                      curve["step"].to_list(), curve["value"].to_list())

    def _on_header(self, column: Any) -> None:
        with self.status.reporting("sorting the table"):
            self.sort_on(column)

    def _on_refresh(self, _button: Any = None) -> None:
        with self.status.reporting("reading the run store"):
            self.refresh()

    def _on_open(self, _button: Any = None) -> None:
        with self.status.reporting("opening the run in the builder"):
            if self.builder is None:
                raise ValueError("no ModelBuilder is attached; pass RunHistory(builder=...) or "
                                 "call history.open_in(builder)")
            config = self.open_in(self.builder)
            self.status.show(f"opened {config.family} config of run {self.selected[0]} in the "
                             "builder", "ok")

    def __repr__(self) -> str:
        where = self.store.path if self.store is not None else "no store"
        return f"RunHistory({where}): {self.runs.height} runs, {len(self.selected)} selected"


def _table_frame(shown: Any) -> Any:
    """The shown runs as the table's columns: runs sharing a name told apart, short times,
    whole tokens/s, MFU in percent (a dash where a run logged none)."""
    import polars as pl

    return shown.select(TABLE_COLUMNS).with_columns(
        pl.Series("name", run_names(shown), dtype=pl.String),
        pl.col("created_at").str.slice(0, 16).str.replace("T", " ", literal=True),
        pl.col("tokens_per_s").round().cast(pl.Int64),
        (pl.col("mfu") * 100).round(1)).rename(HEADERS)


def _label(row: dict[str, Any]) -> str:
    loss = f", loss {row['train_loss']:.4g}" if row["train_loss"] is not None else ""
    return f"{row['name']} · {row['status']} · {row['steps'] or 0} steps{loss} · {row['id']}"
