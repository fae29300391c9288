"""Matplotlib figures that display themselves in a notebook without pyplot.

Figures built without pyplot keep no global state and are not shown twice, but a notebook
shows a bare ``Figure`` only as text unless an inline backend is loaded. ``InlineFigure``
adds a PNG representation rendered with the Agg canvas.

>>> fig = InlineFigure(figsize=(2, 2))
>>> fig._repr_png_()[:4]
b'\\x89PNG'
"""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


class InlineFigure(Figure):
    """A matplotlib ``Figure`` that also shows itself as PNG where no inline backend is set."""

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def figure_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (for widgets and files), rendered with the Agg canvas."""
    FigureCanvasAgg(fig)  # attach an Agg canvas; does not change matplotlib's global backend
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()
