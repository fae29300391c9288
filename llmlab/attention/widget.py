"""``AttentionInspector``: llmlab's attention widget (anywidget), fast on long inputs.

>>> w = cap.show()            # or AttentionInspector(cap, layer=3, head=5)  # doctest: +SKIP
>>> w.layer, w.head, w.selected                                            # doctest: +SKIP

What crosses the comm, and when (see ``docs/attention-snapshots.md`` for the numbers):

- once, in the widget state: the ES module (``static/inspector.js``), the tokens and words of
  each side, and every head's thumbnail (``thumb_size`` x ``thumb_size`` uint8, the block mean
  of its matrix) as one binary buffer;
- per matrix the front end does not have yet: one request message up, one answer down with
  the matrix as uint8 per row (each row scaled to its own maximum) plus one float32 scale per
  row, as binary buffers. A 1,024 x 1,024 head is about 1 MB. Aggregates ("mean", "max",
  "rollout") are computed here and sent as one matrix;
- state (``kind``, ``layer``, ``head``, ``agg``, ``hide_first``, ``merge_words``,
  ``selected``, ``direction``, ``view``, ``top_k``, ``scale``) is synced both ways, at most ten
  times a second from the browser; hovering is never sent.

The front end keeps one request in flight and the newest one waiting, and caches the last six
matrices, so the IOPub rate limit (about 1,000 messages/s) is never near.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import anywidget
import traitlets as t

from llmlab._display import Snapshot
from llmlab.attention import ops
from llmlab.attention.capture import KINDS, Capture
from llmlab.attention.static import static_text
from llmlab.errors import InputError

__all__ = ["AttentionInspector"]

_AGGS = ("head", "mean", "max", "rollout")
#: from this many tokens the inspector computes the rollout ahead, once it has drawn
WARM_ROLLOUT_TOKENS = 256
_CACHE = 8


class AttentionInspector(Snapshot, anywidget.AnyWidget):
    """Interactive attention inspector for a :class:`Capture` (``cap.show()``).

    ``layer`` and ``head`` are model numbers; ``agg`` is ``"head"`` (show ``head``),
    ``"mean"``, ``"max"`` or ``"rollout"``; ``selected`` holds the selected rows
    (``direction="from"``) or columns (``"to"``) in shown units (words when ``merge_words``).
    Its display also carries a small PNG of the matrix for places where widgets cannot load
    (``fallback_image=False`` leaves it out).
    """

    _esm = t.Unicode().tag(sync=True)
    meta = t.Dict().tag(sync=True)
    thumbs = t.Bytes().tag(sync=True)
    kind = t.Unicode("").tag(sync=True)
    layer = t.Int(-1).tag(sync=True)
    head = t.Int(0).tag(sync=True)
    agg = t.Unicode("mean").tag(sync=True)
    hide_first = t.Bool(False).tag(sync=True)
    merge_words = t.Bool(False).tag(sync=True)
    selected = t.List(t.Int()).tag(sync=True)
    direction = t.Unicode("from").tag(sync=True)
    view = t.Unicode("heatmap").tag(sync=True)
    top_k = t.Int(8).tag(sync=True)
    scale = t.Unicode("auto").tag(sync=True)

    def __init__(self, capture: Capture, *, thumb_size: int = 32, fallback_image: bool = True,
                 title: str | None = None, **state: Any) -> None:
        if not isinstance(capture, Capture):
            raise InputError(
                f"AttentionInspector needs a Capture, got {type(capture).__name__}; make one "
                "with llmlab.inspect(model, tokenizer, text)."
            )
        esm = static_text("inspector.js")  # FrontendNotBuiltError with the fix when missing
        self.capture = capture
        self.fallback_image = fallback_image
        self._cache: OrderedDict[tuple, tuple[dict, list[bytes]]] = OrderedDict()
        self._png: tuple[tuple, bytes] | None = None
        #: messages and bytes this widget sent as answers (for benchmarks and tests)
        self.sent_messages = 0
        self.sent_bytes = 0
        meta, thumbs = _describe(capture, thumb_size, title)
        unknown = set(state) - {"kind", "layer", "head", "agg", "hide_first", "merge_words",
                                "selected", "direction", "view", "top_k", "scale"}
        if unknown:
            raise InputError(
                f"unknown inspector option(s) {sorted(unknown)}; use kind, layer, head, agg, "
                "hide_first, merge_words, selected, direction, view, top_k or scale."
            )
        kind = state.pop("kind", None) or capture.default_kind
        capture._kind(kind)
        head = state.pop("head", None)
        agg = state.pop("agg", None)
        if head is not None and not isinstance(head, int):
            agg, head = head, None  # head="mean" reads naturally
        if agg is None:
            agg = "head" if head is not None else "mean"
        super().__init__(_esm=esm, meta=meta, thumbs=thumbs, kind=kind,
                         head=capture.heads[0] if head is None else head, agg=agg,
                         layer=state.pop("layer", -1), **state)
        self.on_msg(self._on_msg)

    # ------------------------------------------------------------------ validation
    @t.validate("kind")
    def _check_kind(self, proposal: dict) -> str:
        kind = proposal["value"]
        if kind not in self.capture.attention:
            raise t.TraitError(f"kind={kind!r}; this capture holds {self.capture.kinds}.")
        return kind

    @t.validate("layer")
    def _check_layer(self, proposal: dict) -> int:
        layer = proposal["value"]
        kind = self.kind or self.capture.default_kind
        try:
            pos = self.capture.layer_position(kind, layer)
        except InputError as e:
            raise t.TraitError(str(e)) from None
        return self.capture.layers[kind][pos]

    @t.validate("head")
    def _check_head(self, proposal: dict) -> int:
        try:
            return self.capture.heads[self.capture.head_position(proposal["value"])]
        except InputError as e:
            raise t.TraitError(str(e)) from None

    @t.validate("agg")
    def _check_agg(self, proposal: dict) -> str:
        if proposal["value"] not in _AGGS:
            raise t.TraitError(f"agg={proposal['value']!r}; use one of {_AGGS}.")
        return proposal["value"]

    @t.validate("direction")
    def _check_direction(self, proposal: dict) -> str:
        if proposal["value"] not in ("from", "to"):
            raise t.TraitError(f"direction={proposal['value']!r}; use 'from' or 'to'.")
        return proposal["value"]

    @t.validate("scale")
    def _check_scale(self, proposal: dict) -> str:
        if proposal["value"] not in ops.SCALES:
            raise t.TraitError(f"scale={proposal['value']!r}; use one of {ops.SCALES}.")
        return proposal["value"]

    @t.observe("kind")
    def _kind_changed(self, change: dict) -> None:
        layers = self.capture.layers[change["new"]]
        if self.layer not in layers:
            self.layer = layers[-1]

    # ------------------------------------------------------------------ messages
    def _on_msg(self, _widget: Any, content: dict, buffers: list) -> None:
        answer, out = self.answer(content)
        self.sent_messages += 1
        self.sent_bytes += sum(len(b) for b in out)
        self.send(answer, out)
        if self.sent_messages == 1:
            self._warm_rollout()

    def _warm_rollout(self) -> None:
        """After the first picture, compute the rollout of long self-attention in a thread,
        so that picking it later answers at once (it multiplies through every layer: a few
        hundred ms at 1,024 tokens)."""
        cap = self.capture
        kinds = [k for k in cap.kinds if k != "cross"
                 and cap.attention[k].shape[-1] >= WARM_ROLLOUT_TOKENS
                 and cap.layers[k] == list(range(len(cap.layers[k])))]
        if kinds:
            threading.Thread(target=lambda: [cap._rollout_at(k, len(cap.layers[k]) - 1)
                                             for k in kinds],
                             name="llmlab-rollout", daemon=True).start()

    def answer(self, content: dict) -> tuple[dict, list[bytes]]:
        """The reply to one front-end request: ``{"type": "matrix", ...}`` or ``"lens"``.
        Bad requests get ``{"type": "error", "message": ...}`` (shown in the widget)."""
        msg_id = content.get("id")
        try:
            if content.get("type") == "matrix":
                reply, buffers = self.matrix_message(
                    kind=content.get("kind"), layer=content.get("layer"),
                    head=content.get("head"), agg=content.get("agg", "head"),
                    hide_first=bool(content.get("hide_first")),
                    merge_words=bool(content.get("merge_words")))
            elif content.get("type") == "lens":
                reply, buffers = self.lens_message(content.get("position")), []
            else:
                raise InputError(f"unknown request type {content.get('type')!r}")
        except InputError as e:
            return {"type": "error", "id": msg_id, "message": str(e)}, []
        return {**reply, "id": msg_id}, buffers

    def matrix_message(self, *, kind: str | None, layer: int, head: int, agg: str,
                       hide_first: bool = False, merge_words: bool = False,
                       ) -> tuple[dict, list[bytes]]:
        """``({"type": "matrix", "rows", "cols", ...}, [uint8 values, float32 row scales])``."""
        if agg not in _AGGS:
            raise InputError(f"agg={agg!r}; use one of {_AGGS}.")
        if not isinstance(layer, int) or (agg == "head" and not isinstance(head, int)):
            raise InputError(f"layer={layer!r} and head={head!r} must be numbers.")
        key = (kind, layer, head if agg == "head" else agg, hide_first, merge_words)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        m = self.capture.matrix(kind, layer, head if agg == "head" else agg,
                                hide_first=hide_first, merge_words=merge_words)
        q, scales = ops.quantize_rows(m)
        message = ({"type": "matrix", "rows": int(m.shape[0]), "cols": int(m.shape[1]),
                    "encoding": "uint8-row-scaled"}, [q, scales])
        self._cache[key] = message
        while len(self._cache) > _CACHE:
            self._cache.popitem(last=False)
        return message

    def lens_message(self, position: Any) -> dict:
        """The predictions after every layer at one position of the lens side."""
        return {"type": "lens", **self.capture.logit_lens().rows(position)}

    # ------------------------------------------------------------------ display
    def static_png(self) -> bytes | None:
        """The output's static picture (``llmlab._display.Snapshot``): :meth:`fallback_png`."""
        return self.fallback_png() if self.fallback_image else None

    def fallback_png(self) -> bytes:
        """The static picture shown where the widget cannot load: the current kind and layer,
        averaged over heads unless one head is picked, as a small PNG."""
        from llmlab.attention.fallback import heatmap_png

        head = self.head if self.agg == "head" else ("mean" if self.agg == "max" else self.agg)
        key = (self.kind, self.layer, head, self.hide_first, self.scale)
        if self._png is None or self._png[0] != key:
            self._png = (key, heatmap_png(self.capture, self.kind, self.layer, head,
                                          hide_first=self.hide_first, scale=self.scale))
        return self._png[1]


def _describe(cap: Capture, thumb_size: int, title: str | None) -> tuple[dict, bytes]:
    """The widget's static description of a capture and all thumbnails in one buffer."""
    kinds, chunks, offset = [], [], 0
    for kind in cap.kinds:
        att = cap.attention[kind]
        thumbs = ops.thumbnails(att, thumb_size)
        data = thumbs.numpy().tobytes()
        q_side, k_side = KINDS[kind]
        kinds.append({
            "name": kind, "query_side": q_side, "key_side": k_side,
            "layers": cap.layers[kind], "heads": cap.heads,
            "rows": int(att.shape[2]), "cols": int(att.shape[3]),
            "rollout": kind != "cross" and cap.layers[kind] == list(range(len(cap.layers[kind]))),
            "thumb_offset": offset, "thumb_rows": int(thumbs.shape[2]),
            "thumb_cols": int(thumbs.shape[3]),
        })
        chunks.append(data)
        offset += len(data)
    sides = {name: {"tokens": s.tokens, "word_of": s.word_index, "words": s.words}
             for name, s in cap.sides.items()}
    lens_side = ""
    if cap._lens is not None:
        lens_side = cap._lens.side
    elif cap._model is not None and cap.family in ("gpt", "seq2seq", "bert") and not (
            cap.config or {}).get("n_labels"):
        lens_side = "encoder" if cap.family == "bert" else "decoder"
    name = (cap.config or {}).get("name") or cap.family
    meta = {"title": title if title is not None else f"{name}: attention",
            "family": cap.family, "kinds": kinds, "sides": sides, "lens_side": lens_side}
    return meta, b"".join(chunks)
