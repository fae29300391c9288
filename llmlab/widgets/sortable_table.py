"""``SortableTable``: an HTML table whose column headers sort it when clicked (anywidget).

The table is plain HTML made in Python (``frame_html(..., sort_keys=...)`` marks each sortable
header ``data-sort="<key>"`` and the sorted one with an arrow), so the same text is the
widget's static picture. The front end, a few lines of ES module inline below (no build step,
nothing fetched), draws ``value`` and sends ``{"sort": key}`` when a marked header is clicked or
gets Enter or Space; Python decides what that means and sends the table back re-sorted.

>>> table = SortableTable(value=frame_html(frame, sort_keys={"steps": "steps"}))  # doctest: +SKIP
>>> table.on_sort(lambda key: print("sort by", key))                             # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anywidget
import traitlets as t

#: The front end: draw the HTML; a click (or Enter/Space) on a header marked data-sort sends its
#: key; after a redraw the header that had the keyboard focus gets it back.
ESM = """
function render({ model, el }) {
  const box = document.createElement("div");
  box.className = "llmlab-sortable-table";
  el.appendChild(box);
  const draw = () => {
    const focused = box.contains(document.activeElement)
      ? document.activeElement.dataset.sort : undefined;
    box.innerHTML = model.get("value");
    if (focused !== undefined) {
      box.querySelector(`th[data-sort="${CSS.escape(focused)}"]`)?.focus();
    }
  };
  const pick = event => {
    const header = event.target.closest("th[data-sort]");
    if (!header || !box.contains(header)) return;
    if (event.type === "keydown" && event.key !== "Enter" && event.key !== " ") return;
    event.preventDefault();
    model.send({ sort: header.dataset.sort });
  };
  draw();
  model.on("change:value", draw);
  box.addEventListener("click", pick);
  box.addEventListener("keydown", pick);
  return () => model.off("change:value", draw);
}
export default { render };
"""

CSS = """
.llmlab-sortable-table th[data-sort] { cursor: pointer; user-select: none; }
.llmlab-sortable-table th[data-sort]:hover { text-decoration: underline; }
.llmlab-sortable-table th[data-sort]:focus-visible { outline: 2px solid #1976d2; }
"""


class SortableTable(anywidget.AnyWidget):
    """Shows the HTML table ``value``; a click on a header marked ``data-sort`` calls every
    function given to :meth:`on_sort` with that header's key (whatever the browser sent: the
    callee checks it)."""

    _esm = ESM
    _css = CSS
    value = t.Unicode("").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sort_callbacks: list[Callable[[Any], None]] = []
        self.on_msg(self._on_msg)

    def on_sort(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(key)`` when the user picks a header to sort by."""
        self._sort_callbacks.append(callback)

    def click(self, key: Any) -> None:
        """What a click on the header of ``key`` does (for code and tests)."""
        for callback in self._sort_callbacks:
            callback(key)

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        self.click(content.get("sort") if isinstance(content, dict) else None)
