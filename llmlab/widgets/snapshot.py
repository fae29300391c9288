"""The static pictures of llmlab's widgets: one titled box per widget, tables, inline PNGs.

Each widget class starts with :class:`~llmlab._display.Snapshot` (re-exported here) and builds
its ``static_html()`` from these pieces, so every picture looks alike and the exporter and
tests find it by :data:`SNAPSHOT_CLASS`.

>>> class Note(Snapshot, widgets.HTML):
...     def static_html(self):
...         return snapshot_html("note", self.value)
>>> sorted(Note("hi")._repr_mimebundle_())
['application/vnd.jupyter.widget-view+json', 'text/html', 'text/plain']
"""

from __future__ import annotations

import base64
import html
from typing import Any

import ipywidgets as widgets

from llmlab._display import Snapshot

__all__ = ["SNAPSHOT_CLASS", "Snapshot", "control_values", "png_img", "settings_html",
           "snapshot_html", "text_html"]

#: marks the static picture in an output (tests and the exporter look for it)
SNAPSHOT_CLASS = "llmlab-snapshot"



def snapshot_html(kind: str, *parts: str, title: str | None = None) -> str:
    """The static picture of one widget: a titled box around HTML ``parts``.

    >>> snapshot_html("trainer", "<p>x</p>", title="Trainer")[:60]
    '<div class="llmlab-snapshot" data-llmlab-widget="trainer" st'
    """
    heading = (f'<div style="font-weight:bold;margin-bottom:4px">{html.escape(title)}</div>'
               if title else "")
    return (f'<div class="{SNAPSHOT_CLASS}" data-llmlab-widget="{html.escape(kind)}" '
            'style="font-family:sans-serif;font-size:13px;border:1px solid #ddd;'
            f'padding:6px 8px;max-width:960px">{heading}{"".join(parts)}'
            '<div style="color:#888;font-size:11px;margin-top:4px">static picture of an '
            "llmlab widget; run the notebook for the live one</div></div>")


def png_img(png: bytes, alt: str) -> str:
    """An ``<img>`` tag holding ``png`` inline (a data URI: no file beside the notebook)."""
    encoded = base64.b64encode(png).decode("ascii")
    return (f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}" '
            'style="max-width:100%">')


def text_html(text: str, *, kind: str = "text") -> str:
    """Plain text (a status line, a numbers line) as an escaped HTML block."""
    return (f'<div class="llmlab-snapshot-{html.escape(kind)}" style="margin:2px 0">'
            f"{html.escape(text)}</div>") if text else ""


def settings_html(values: dict[str, Any]) -> str:
    """A two-column table of names and values (a widget's settings)."""
    rows = "".join(f"<tr><th style='text-align:left;padding-right:8px'>{html.escape(str(k))}"
                   f"</th><td>{html.escape(str(v))}</td></tr>" for k, v in values.items())
    return f'<table class="llmlab-settings" style="font-size:12px">{rows}</table>'


def control_values(controls: dict[str, widgets.ValueWidget]) -> dict[str, Any]:
    """The values of a widget's controls, by their labels (for :func:`settings_html`)."""
    return {getattr(c, "description", "") or name: c.value for name, c in controls.items()}
