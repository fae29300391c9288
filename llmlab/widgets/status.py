"""``StatusLine``: where a widget tells the user what happened, instead of a traceback.

>>> status = StatusLine()
>>> with status.reporting("building the model"):
...     raise ValueError("n_embd must be divisible by n_head")
>>> status.kind, status.message
('error', 'building the model failed: n_embd must be divisible by n_head')
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from contextlib import contextmanager

import ipywidgets as widgets

_COLOURS = {"info": "var(--jp-ui-font-color1, #333)", "ok": "var(--jp-success-color1, #2e7d32)",
            "error": "var(--jp-error-color1, #c62828)"}

# What a widget action can raise because of the user's input or state, shown as a message.
# Anything else is a bug in llmlab and keeps its traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, KeyError, OSError,
                                                    RuntimeError)


class StatusLine(widgets.HTML):
    """One line of text under a widget's controls: info, ok or error."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.kind = "info"
        self.message = ""
        self.add_class("llmlab-status")

    def show(self, message: str, kind: str = "info") -> None:
        """Show ``message``; ``kind`` is "info", "ok" or "error"."""
        if kind not in _COLOURS:
            raise ValueError(f"kind must be one of {sorted(_COLOURS)}, got {kind!r}")
        self.kind, self.message = kind, message
        self.value = (f'<span style="color:{_COLOURS[kind]}">{html.escape(message)}</span>'
                      if message else "")

    def error(self, message: str) -> None:
        """Show ``message`` as an error."""
        self.show(message, "error")

    def clear(self) -> None:
        """Remove the message."""
        self.show("")

    @contextmanager
    def reporting(self, action: str) -> Iterator[None]:
        """Run the block; an expected error becomes "<action> failed: <message>" here."""
        try:
            yield
        except EXPECTED_ERRORS as exc:
            self.error(f"{action} failed: {exc}")
