"""Static heatmaps with matplotlib: ``cap.plot()`` and the PNG a widget's output carries for
places where widgets cannot load (GitHub, nbviewer, untrusted notebooks, static HTML exports).

Uses matplotlib's object API (``Figure`` + Agg canvas), never pyplot, so nothing is drawn
into or left behind in a notebook's pyplot state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmlab._figures import InlineFigure
    from llmlab.attention.capture import Capture

#: up to this many tokens a side the axes carry token labels
MAX_LABELS = 48


def heatmap_figure(cap: Capture, kind: str | None = None, layer: int = -1,
                   head: int | str = "mean", *, hide_first: bool = False,
                   merge_words: bool = False, size: float = 5.0) -> InlineFigure:
    """A matplotlib ``Figure`` with one attention matrix (rows: queries, columns: keys)."""
    from llmlab._figures import InlineFigure

    kind = cap._kind(kind)
    m = cap.matrix(kind, layer, head, hide_first=hide_first, merge_words=merge_words)
    q, k = cap.sides_of(kind)
    rows = q.words if merge_words else q.tokens
    cols = k.words if merge_words else k.tokens
    fig = InlineFigure(figsize=(size, size * min(1.6, max(0.4, m.shape[0] / m.shape[1]))))
    ax = fig.add_subplot()
    image = ax.imshow(m.numpy(), cmap="Blues", vmin=0, interpolation="nearest", aspect="auto")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    number = cap.layers[kind][cap.layer_position(kind, layer)]
    what = f"head {head}" if isinstance(head, int) else head
    ax.set_title(f"{kind} · layer {number} · {what}", fontsize=10)
    for axis, labels, setter in ((ax.yaxis, rows, ax.set_yticks), (ax.xaxis, cols, ax.set_xticks)):
        if len(labels) <= MAX_LABELS:
            shown = [s.replace("Ġ", " ").replace("▁", " ").strip() or repr(s) for s in labels]
            setter(range(len(labels)), shown, fontsize=7)
        else:
            axis.set_tick_params(labelsize=7)
    ax.tick_params(axis="x", labelrotation=90)
    ax.set_ylabel("query", fontsize=8)
    ax.set_xlabel("key", fontsize=8)
    fig.tight_layout()
    return fig


def heatmap_png(cap: Capture, kind: str | None = None, layer: int = -1,
                head: int | str = "mean", *, hide_first: bool = False, size: float = 4.0,
                dpi: int = 72) -> bytes:
    """PNG bytes of :func:`heatmap_figure` (small: a few tens of kB)."""
    from llmlab._figures import figure_png

    return figure_png(heatmap_figure(cap, kind, layer, head, hide_first=hide_first, size=size),
                      dpi=dpi)
