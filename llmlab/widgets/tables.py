"""``frame_html``: a polars frame as the compact HTML table every widget shows."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping
from typing import Any

#: Cell spacing and number alignment of every ``llmlab-table`` (numbers never run together).
TABLE_STYLE = ("<style>.llmlab-table th,.llmlab-table td{padding:2px 8px;text-align:left;"
               "vertical-align:top}.llmlab-table .llmlab-num{text-align:right;"
               "white-space:nowrap;font-variant-numeric:tabular-nums}</style>")


def frame_html(frame: Any, *, digits: int = 4, max_rows: int | None = None,
               sort_keys: Mapping[str, str] | None = None,
               sorted_by: tuple[str, bool] | None = None) -> str:
    """A polars frame as a compact HTML table: text escaped, floats to ``digits`` significant
    digits, numbers right-aligned, nulls as "–", at most ``max_rows`` rows (a note says how
    many were left out).

    ``sort_keys`` maps column names to the key a click on their header sorts by (headers
    marked ``data-sort`` for :class:`~llmlab.widgets.sortable_table.SortableTable`);
    ``sorted_by`` is ``(key, descending)``, shown as an arrow on that header.

    >>> import polars as pl
    >>> frame_html(pl.DataFrame({"a": ["<x>"], "b": [1.23456]})).endswith(
    ...     '<tr><td>&lt;x&gt;</td><td class="llmlab-num">1.235</td></tr></tbody></table>')
    True
    """
    rows = frame.head(max_rows) if max_rows is not None else frame
    numeric = [dtype.is_numeric() for dtype in frame.dtypes]
    head = "".join(_header(str(name), num, (sort_keys or {}).get(name), sorted_by)
                   for name, num in zip(frame.columns, numeric))
    body = "".join("<tr>" + "".join(f"<td{_NUM if num else ''}>{_cell(value, digits)}</td>"
                                    for value, num in zip(row, numeric))
                   + "</tr>" for row in rows.iter_rows())
    more = frame.height - rows.height
    note = f"<div><i>… {more} more rows (filter to narrow)</i></div>" if more > 0 else ""
    return (f'{TABLE_STYLE}<table class="llmlab-table" style="border-collapse:collapse;'
            f'font-size:12px"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}')


_NUM = ' class="llmlab-num"'


def _header(name: str, numeric: bool, key: str | None,
            sorted_by: tuple[str, bool] | None) -> str:
    """A header cell; with a sort ``key``, marked for clicks and, when sorted, with its arrow."""
    label = html.escape(name)
    if key is None:
        return f"<th{_NUM if numeric else ''}>{label}</th>"
    attrs = f' data-sort="{html.escape(key)}" tabindex="0" title="sort by {label}"'
    if sorted_by is not None and sorted_by[0] == key:
        direction = "descending" if sorted_by[1] else "ascending"
        attrs += f' aria-sort="{direction}"'
        label += " ▼" if sorted_by[1] else " ▲"
    return f"<th{_NUM if numeric else ''}{attrs}>{label}</th>"


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


def run_names(frame: Any) -> list[str]:
    """The name each run of a ``RunStore.list()`` frame is shown by: its name, and where
    another run in ``frame`` has the same name, the last 6 hex digits of its id as well.

    >>> import polars as pl
    >>> run_names(pl.DataFrame({"name": ["a", "a", "b"],
    ...                         "id": ["20260101-000000-aaaaaa", "20260101-000001-bbbbbb", "x"]}))
    ['a · aaaaaa', 'a · bbbbbb', 'b']
    """
    names = frame.get_column("name").to_list()
    shared = {name for name, count in Counter(names).items() if count > 1}
    return [f"{name} · {run_id[-6:]}" if name in shared and name != run_id else name
            for name, run_id in zip(names, frame.get_column("id").to_list())]

