"""``frame_html``: a polars frame as the compact HTML table every widget shows."""

from __future__ import annotations

import html
from typing import Any


def frame_html(frame: Any, *, digits: int = 4, max_rows: int | None = None) -> str:
    """A polars frame as a compact HTML table: text escaped, floats to ``digits`` significant
    digits, nulls as "–", at most ``max_rows`` rows (a note says how many were left out).

    >>> import polars as pl
    >>> frame_html(pl.DataFrame({"a": ["<x>"], "b": [1.23456]})).endswith(
    ...     "<tr><td>&lt;x&gt;</td><td>1.235</td></tr></tbody></table>")
    True
    """
    rows = frame.head(max_rows) if max_rows is not None else frame
    head = "".join(f"<th>{html.escape(str(name))}</th>" for name in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(value, digits)}</td>" for value in row)
                   + "</tr>" for row in rows.iter_rows())
    more = frame.height - rows.height
    note = f"<div><i>… {more} more rows (filter to narrow)</i></div>" if more > 0 else ""
    return (f'<table class="llmlab-table" style="border-collapse:collapse;font-size:12px">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}")


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, list):
        return html.escape(", ".join(map(str, value)))
    return html.escape(str(value))
