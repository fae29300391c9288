"""Notebook widgets: views over llmlab's Python API that compose into one ``Lab``.

Every widget is an ``ipywidgets`` box that displays alone or inside :class:`Lab`; widgets
connect by passing Python objects (a builder feeds a trainer feeds a generator), and every
button does one public llmlab call a user could type instead.

>>> import llmlab.widgets as w                                  # doctest: +SKIP
>>> builder = w.ModelBuilder()                                  # doctest: +SKIP
>>> trainer = w.TrainerWidget(builder, data)                    # doctest: +SKIP
>>> w.GenerateWidget(trainer)                                   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it (imported on first use: ipywidgets and plotly are heavy)
_EXPORTS = {
    "StatusLine": "llmlab.widgets.status",
    "resolve_model": "llmlab.widgets.sources",
    "ModelBuilder": "llmlab.widgets.builder",
    "GenerateWidget": "llmlab.widgets.generator",
    "AttentionWidget": "llmlab.widgets.attention",
    "CalibrationWidget": "llmlab.widgets.calibration",
    "RunHistory": "llmlab.widgets.history",
    "LineChart": "llmlab.widgets.charts",
    "TrainerWidget": "llmlab.widgets.trainer",
    "Lab": "llmlab.widgets.lab",
    "TradeoffWidget": "llmlab.widgets.tradeoff",
}

__all__ = ["AttentionWidget", "CalibrationWidget", "GenerateWidget", "Lab", "LineChart",
           "ModelBuilder", "RunHistory", "StatusLine", "TradeoffWidget", "TrainerWidget",
           "resolve_model"]


# In a kernel, load what the first widget display needs while the user reads on.
importlib.import_module("llmlab.widgets.warm").warm_in_background()


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'llmlab.widgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
