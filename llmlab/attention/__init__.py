"""Attention inspection: capture, rollout, logit lens, bertviz views offline, llmlab's own
inspector widget, and snapshots in the run store.

>>> cap = llmlab.inspect(model, tok, "The animal didn't cross the street because it was too tired")  # doctest: +SKIP
>>> cap.head_view(); cap.model_view()           # bertviz, working with no network  # doctest: +SKIP
>>> cap.show()                                  # llmlab's inspector, fast on long inputs  # doctest: +SKIP
>>> cap.rollout(); cap.logit_lens(); cap.save(run)  # doctest: +SKIP

The widget (anywidget, ipywidgets) and bertviz are imported only when a view is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

from llmlab.attention.capture import KINDS, Capture, Side, inspect
from llmlab.attention.lens import LogitLens, TopK

_LAZY = {
    "AttentionInspector": "llmlab.attention.widget",
    "FrontendNotBuiltError": "llmlab.attention.static",
    "SnapshotError": "llmlab.attention.snapshot",
    "SnapshotReader": "llmlab.attention.snapshot",
    "list_snapshots": "llmlab.attention.snapshot",
    "load_snapshot": "llmlab.attention.snapshot",
    "save_snapshot": "llmlab.attention.snapshot",
    "head_view": "llmlab.attention.views",
    "model_view": "llmlab.attention.views",
    "offline_html": "llmlab.attention.views",
}

__all__ = [
    "KINDS", "AttentionInspector", "Capture", "FrontendNotBuiltError", "LogitLens", "Side",
    "SnapshotError", "SnapshotReader", "TopK", "head_view", "inspect", "list_snapshots",
    "load_snapshot", "model_view", "offline_html", "save_snapshot",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'llmlab.attention' has no attribute {name!r}")
