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

#: at most this many token labels a side (every k-th token beyond)
MAX_LABELS = 48


def heatmap_figure(cap: Capture, kind: str | None = None, layer: int = -1,
                   head: int | str = "mean", *, hide_first: bool = False,
                   merge_words: bool = False, scale: str = "auto",
                   size: float = 5.0) -> InlineFigure:
    """A matplotlib ``Figure`` with one attention matrix (rows: queries, columns: keys),
    coloured as the inspector colours it under ``scale`` (``"auto"``: see
    :func:`llmlab.attention.ops.choose_scale`)."""
    from llmlab._figures import InlineFigure
    from llmlab.attention.ops import choose_scale, scaled_for_display

    kind = cap._kind(kind)
    m = cap.matrix(kind, layer, head, hide_first=hide_first, merge_words=merge_words)
    drawn = choose_scale(m) if scale == "auto" else scale
    m = scaled_for_display(m, drawn)
    q, k = cap.sides_of(kind)
    rows = q.words if merge_words else q.tokens
    cols = k.words if merge_words else k.tokens
    fig = InlineFigure(figsize=(size, size * min(1.6, max(0.4, m.shape[0] / m.shape[1]))))
    ax = fig.add_subplot()
    image = ax.imshow(m.numpy(), cmap="Blues", vmin=0, vmax=1, interpolation="nearest",
                      aspect="auto")
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    bar.set_label({"row": "share of the row's maximum", "sqrt": "sqrt of share of maximum",
                   "linear": "share of maximum"}[drawn], fontsize=7)
    number = cap.layers[kind][cap.layer_position(kind, layer)]
    what = f"head {head}" if isinstance(head, int) else head
    ax.set_title(f"{kind} · layer {number} · {what}", fontsize=10)
    for labels, setter in ((rows, ax.set_yticks), (cols, ax.set_xticks)):
        every = -(-len(labels) // MAX_LABELS)  # thinned so that labels never overlap
        ticks = range(0, len(labels), every)
        shown = [_label(labels[i]) + (f" ({i})" if every > 1 else "") for i in ticks]
        setter(ticks, shown, fontsize=7)
    ax.tick_params(axis="x", labelrotation=90)
    ax.set_ylabel("query", fontsize=8)
    ax.set_xlabel("key", fontsize=8)
    fig.tight_layout()
    return fig


def _label(token: str) -> str:
    return token.replace("Ġ", " ").replace("▁", " ").strip() or repr(token)


def heatmap_png(cap: Capture, kind: str | None = None, layer: int = -1,
                head: int | str = "mean", *, hide_first: bool = False, scale: str = "auto",
                size: float = 4.0, dpi: int = 72) -> bytes:
    """PNG bytes of :func:`heatmap_figure` (small: a few tens of kB)."""
    from llmlab._figures import figure_png

    figure = heatmap_figure(cap, kind, layer, head, hide_first=hide_first, scale=scale,
                            size=size)
    return figure_png(figure, dpi=dpi)
