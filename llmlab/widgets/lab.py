"""``Lab``: every llmlab widget in one tabbed app, sharing one model and one run store.

The Model tab's builder feeds the Train tab's trainer; Generate and Attention read the
trainer's current model; Runs shows the run store the trainer writes (refreshed when
training ends) and opens a run's config in the builder; Calibration takes your
probabilities and labels (``lab.calibration.set_data(probs, labels)``); Trade-offs sweeps
compressed variants of the trainer's model (int8, int4 weights, pruned heads).

>>> lab = llmlab.Lab(data)                              # doctest: +SKIP
>>> lab.builder, lab.trainer, lab.generator             # the widgets, shared  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from llmlab.widgets.snapshot import Snapshot, snapshot_html
from llmlab.widgets.status import StatusLine
from llmlab.widgets.trainer import TrainerWidget

TABS = ("Model", "Train", "Generate", "Attention", "Calibration", "Trade-offs", "Runs")


class Lab(Snapshot, widgets.VBox):
    """Model, Train, Generate, Attention, Calibration, Trade-offs and Runs tabs over ``data``.

    ``run_dir`` is the run store (default ``./llmlab-runs``); ``train_settings`` are the
    trainer's starting :class:`~llmlab.TrainConfig` fields. The parts are attributes:
    ``builder``, ``trainer``, ``generator``, ``attention``, ``calibration``, ``tradeoff``,
    ``history``.
    """

    def __init__(self, data: Any, *, run_dir: Any = None, **train_settings: Any):
        from llmlab.widgets.attention import AttentionWidget
        from llmlab.widgets.builder import ModelBuilder
        from llmlab.widgets.calibration import CalibrationWidget
        from llmlab.widgets.generator import GenerateWidget
        from llmlab.widgets.history import RunHistory
        from llmlab.widgets.tradeoff import TradeoffWidget

        self.status = StatusLine()
        self.builder = ModelBuilder()
        self.trainer = TrainerWidget(self.builder, data, run_dir=run_dir, **train_settings)
        self.generator = GenerateWidget(self.trainer)
        self.attention = AttentionWidget(self.trainer)
        self.calibration = CalibrationWidget()
        self.tradeoff = TradeoffWidget(data, source=self.trainer, run_dir=run_dir)
        self.history = RunHistory(run_dir, builder=self.builder)
        self.trainer.on_end(lambda _run: self.history.refresh())
        self.tabs = widgets.Tab(
            children=[self.builder, self.trainer, self.generator, self.attention,
                      self.calibration, self.tradeoff, self.history], titles=TABS)
        super().__init__([self.tabs, self.status])
        self.add_class("llmlab-lab")
        self.follow(*[tab for tab in self.tabs.children if isinstance(tab, Snapshot)])

    def static_html(self) -> str:
        """The active tab's picture, under the row of tab names."""
        index = self.tabs.selected_index or 0
        names = " · ".join(f"<b>{name}</b>" if i == index else name
                           for i, name in enumerate(TABS))
        tab = self.tabs.children[index]
        inner = tab.static_html() if isinstance(tab, Snapshot) else None
        return snapshot_html("lab", f"<div>{names}</div>", inner or "", title="Lab")

    def show(self, tab: str) -> None:
        """Switch to the tab named ``tab`` (one of ``TABS``)."""
        if tab not in TABS:
            raise ValueError(f"no tab {tab!r}; the tabs are {', '.join(TABS)}")
        self.tabs.selected_index = TABS.index(tab)

    def __repr__(self) -> str:
        return f"Lab [{' | '.join(TABS)}]\n{self.builder!r}\n{self.trainer!r}"
