"""Capture a model's attention on one input: every layer and head, self and cross.

>>> cap = llmlab.inspect(model, tok, "The animal didn't cross the street because it was too tired")  # doctest: +SKIP
>>> cap.matrix(layer=-1, head="mean").shape               # [query tokens, key tokens]  # doctest: +SKIP

Attention is grouped by *kind*, named after the model's stacks:

| family  | kinds                            | query side / key side                      |
|---------|----------------------------------|--------------------------------------------|
| gpt     | ``"decoder"``                    | decoder / decoder                          |
| bert    | ``"encoder"``                    | encoder / encoder                          |
| seq2seq | ``"encoder"``, ``"decoder"``, ``"cross"`` | encoder / encoder, decoder / decoder, decoder / encoder |

Each kind holds one tensor ``[layers, heads, T, S]`` on the CPU. Layers and heads are the
model's own numbers (from 0); ``layers=`` / ``heads=`` keep a subset. Only the captured layers
take the explicit attention path; the others run fused, and each layer's weights are cast to
the capture's dtype as soon as that layer has run, so capturing 12 x 12 heads at 1,024
tokens peaks near the size of the capture itself.
"""

from __future__ import annotations

import inspect as _pyinspect
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from llmlab.attention import ops
from llmlab.attention.lens import LogitLens, TopK, compute_lens, lens_head, top_k_of
from llmlab.errors import InputError

if TYPE_CHECKING:
    from pathlib import Path

    from llmlab.attention.widget import AttentionInspector

__all__ = ["KINDS", "Capture", "Side", "inspect"]

#: kind -> (query side, key side)
KINDS = {"encoder": ("encoder", "encoder"), "decoder": ("decoder", "decoder"),
         "cross": ("decoder", "encoder")}
#: captures larger than this in float32 are kept in float16 when ``dtype="auto"``
AUTO_FLOAT16_BYTES = 256 * 2**20
#: refuse captures larger than this (in the chosen dtype); the error says how to shrink them
MAX_CAPTURE_BYTES = 16 * 2**30
AGGREGATES = ("mean", "max", "rollout")


@dataclass
class Side:
    """One token sequence of a capture: the text, its ids, display tokens, special flags."""

    text: str | None
    ids: list[int]
    tokens: list[str]
    special: list[bool]
    _words: list[int] | None = field(default=None, repr=False)

    @property
    def word_index(self) -> list[int]:
        """The word each token belongs to (see :func:`llmlab.attention.ops.word_index`)."""
        if self._words is None:
            self._words = ops.word_index(self.tokens, self.special)
        return self._words

    @property
    def words(self) -> list[str]:
        """Display strings of the words."""
        return ops.word_labels(self.tokens, self.word_index)


class Capture:
    """Attention of one model on one input, with the tokens and what is needed to show it.

    Made by :func:`inspect` (or :func:`llmlab.attention.load_snapshot`). ``attention[kind]`` is
    ``[layers, heads, T, S]``; ``layers[kind]`` and ``heads`` are the model's layer and head
    numbers of its rows; ``sides[name]`` holds the tokens of ``"encoder"`` / ``"decoder"``.
    """

    def __init__(
        self,
        *,
        family: str,
        attention: dict[str, Tensor],
        layers: dict[str, list[int]],
        heads: list[int],
        n_heads: int,
        n_layers: dict[str, int],
        sides: dict[str, Side],
        config: dict[str, Any] | None = None,
        sentence_b_start: int | None = None,
        predictions: TopK | None = None,
        lens: LogitLens | None = None,
        model: nn.Module | None = None,
        tokenizer: Any = None,
    ) -> None:
        self.family = family
        self.attention = attention
        self.layers = layers
        self.heads = heads
        self.n_heads = n_heads
        self.n_layers = n_layers
        self.sides = sides
        self.config = config
        self.sentence_b_start = sentence_b_start
        self.predictions = predictions
        self._lens = lens
        self._model = model
        self._tokenizer = tokenizer
        self._rollouts: dict[tuple, tuple[list[Tensor], Iterator[Tensor]]] = {}
        self._rollout_lock = threading.Lock()  # the inspector may warm it up in a thread

    # ------------------------------------------------------------------ description
    @property
    def kinds(self) -> list[str]:
        """The captured kinds, in the order encoder, decoder, cross."""
        return [k for k in KINDS if k in self.attention]

    @property
    def default_kind(self) -> str:
        """What views show first: cross-attention for seq2seq, else the only kind."""
        return "cross" if "cross" in self.attention else self.kinds[0]

    @property
    def tokens(self) -> dict[str, list[str]]:
        """Display tokens per side (``"encoder"``, ``"decoder"``)."""
        return {name: side.tokens for name, side in self.sides.items()}

    def sides_of(self, kind: str | None = None) -> tuple[Side, Side]:
        """``(query side, key side)`` of a kind."""
        kind = self._kind(kind)
        q, k = KINDS[kind]
        return self.sides[q], self.sides[k]

    @property
    def nbytes(self) -> int:
        """Bytes held by the attention tensors."""
        return sum(t.numel() * t.element_size() for t in self.attention.values())

    @property
    def dtype(self) -> torch.dtype:
        return next(iter(self.attention.values())).dtype

    def __repr__(self) -> str:
        parts = [f"{k}: {self.attention[k].shape[0]} layers x {len(self.heads)} heads x "
                 f"{self.attention[k].shape[2]}x{self.attention[k].shape[3]}" for k in self.kinds]
        return (f"<Capture {self.family} {'; '.join(parts)}; "
                f"{str(self.dtype).replace('torch.', '')}, {self.nbytes / 2**20:.1f} MiB>")

    # ------------------------------------------------------------------ matrices
    def _kind(self, kind: str | None) -> str:
        kind = self.default_kind if kind is None else kind
        if kind not in self.attention:
            raise InputError(
                f"kind={kind!r} is not in this capture; it holds {self.kinds} "
                f"({self.family} models have {', '.join(self.kinds)})."
            )
        return kind

    def layer_position(self, kind: str | None, layer: int) -> int:
        """Row of ``attention[kind]`` that holds model layer ``layer`` (negative: from the end)."""
        kind = self._kind(kind)
        total = self.n_layers[kind]
        if not isinstance(layer, int) or not -total <= layer < total:
            raise InputError(f"layer={layer!r} is not a layer of the {kind} (0 .. {total - 1}).")
        number = layer % total
        if number not in self.layers[kind]:
            raise InputError(
                f"layer {number} of the {kind} was not captured (captured: {self.layers[kind]}); "
                "inspect again with layers=None (all) or a list that includes it."
            )
        return self.layers[kind].index(number)

    def head_position(self, head: int) -> int:
        """Column of the attention tensors that holds model head ``head``."""
        if not isinstance(head, int) or not -self.n_heads <= head < self.n_heads:
            raise InputError(
                f"head={head!r} is not a head number (0 .. {self.n_heads - 1}) or one of "
                f"{AGGREGATES}."
            )
        number = head % self.n_heads
        if number not in self.heads:
            raise InputError(
                f"head {number} was not captured (captured: {self.heads}); inspect again with "
                "heads=None (all) or a list that includes it."
            )
        return self.heads.index(number)

    def matrix(
        self,
        kind: str | None = None,
        layer: int = -1,
        head: int | str = "mean",
        *,
        hide_first: bool = False,
        merge_words: bool = False,
    ) -> Tensor:
        """One attention matrix ``[T, S]`` as float32.

        ``head`` is a head number, ``"mean"`` or ``"max"`` over the captured heads, or
        ``"rollout"`` (attention rollout up to and including ``layer``). ``hide_first`` drops
        the attention paid to the first token and renormalises the rows; ``merge_words`` sums
        the attention a word receives and averages what it gives over its tokens.

        >>> cap.matrix("decoder", layer=2, head=5, hide_first=True)   # doctest: +SKIP
        """
        kind = self._kind(kind)
        pos = self.layer_position(kind, layer)
        if head == "rollout":
            m = self._rollout_at(kind, pos)
        elif head in ("mean", "max"):
            m = ops.aggregate_heads(self.attention[kind][pos], head)
        elif isinstance(head, str):
            raise InputError(f"head={head!r} is not a head number or one of {AGGREGATES}.")
        else:
            m = self.attention[kind][pos, self.head_position(head)].float()
        if hide_first:
            m = ops.hide_first(m)
        if merge_words:
            q, k = self.sides_of(kind)
            m = ops.merge_words(m, q.word_index, k.word_index)
        return m

    def rollout(self, kind: str | None = None, *, residual: bool = True) -> Tensor:
        """Attention rollout after each captured layer: ``[layers, T, T]`` (see
        :func:`llmlab.attention.ops.rollout`). Needs every layer from the first captured and
        self-attention (``"encoder"`` or ``"decoder"``); averages the captured heads."""
        kind = self._kind(kind)
        return torch.stack([self._rollout_at(kind, pos, residual=residual)
                            for pos in range(len(self.layers[kind]))])

    def _check_rollout(self, kind: str) -> None:
        if kind == "cross":
            raise InputError(
                "rollout is defined for self-attention; use kind='encoder' or 'decoder' "
                "(cross-attention maps decoder tokens to encoder tokens, there is nothing to "
                "multiply through)."
            )
        if self.layers[kind] != list(range(len(self.layers[kind]))):
            raise InputError(
                f"rollout multiplies attention through every layer from the first, but this "
                f"capture holds layers {self.layers[kind]} of the {kind}; inspect again with "
                "layers=None (or layers=range(n))."
            )

    def _rollout_at(self, kind: str, pos: int, *, residual: bool = True) -> Tensor:
        """The rollout after layer position ``pos``, computing (and keeping) only the layers
        up to it."""
        self._check_rollout(kind)
        with self._rollout_lock:
            done, steps = self._rollouts.setdefault(
                (kind, residual), ([], ops.rollout_steps(self.attention[kind], residual=residual)))
            while len(done) <= pos:
                done.append(next(steps))
            return done[pos]

    # ------------------------------------------------------------------ logit lens
    def logit_lens(self, k: int | None = None) -> LogitLens:
        """Top-``k`` predictions after every layer (see :class:`LogitLens`).

        Computed at capture time with ``inspect(..., logit_lens=True)``, else now from the
        model (one more forward pass). A loaded snapshot has a lens only if it was saved with one.
        ``k=None`` gives the lens as it was captured, or the top 5 when it is computed now.
        """
        if k is None:
            k = self._lens.ids.shape[-1] if self._lens is not None else 5
        if self._lens is not None and self._lens.ids.shape[-1] >= k:
            lens = self._lens
            if lens.ids.shape[-1] == k:
                return lens
            return LogitLens(lens.layer_names, lens.ids[..., :k], lens.probs[..., :k],
                             [[row[:k] for row in layer] for layer in lens.tokens],
                             lens.side, lens.what)
        if self._model is None:
            raise InputError(
                "this capture has no logit lens and no model to compute one (it was loaded "
                "from a snapshot); inspect the model again with inspect(..., logit_lens=True) "
                "and save that."
            )
        self._lens = _run_lens(self._model, self.family, self.sides, self._tokenizer, k=k,
                               b_start=self.sentence_b_start)
        return self._lens

    # ------------------------------------------------------------------ views
    def head_view(self, kind: str | None = None, *, layer: int | None = None,
                  display: bool = True, html: bool = False, **options: Any):
        """bertviz's head view of this capture, working offline (libraries inlined).

        ``kind=None`` shows every kind (bertviz's encoder / decoder / cross selector for
        seq2seq). Displays the view and returns it as ``IPython.display.HTML``; ``html=True``
        returns the HTML string without displaying it. See
        :func:`llmlab.attention.views.head_view` for ``options``.
        """
        from llmlab.attention.views import head_view

        return head_view(self, kind, layer=layer, display=display, html=html, **options)

    def model_view(self, kind: str | None = None, *, display: bool = True, html: bool = False,
                   **options: Any):
        """bertviz's model view (every layer and head as small line plots), offline."""
        from llmlab.attention.views import model_view

        return model_view(self, kind, display=display, html=html, **options)

    def show(self, **state: Any) -> AttentionInspector:
        """llmlab's inspector widget: fast on long inputs (canvas heatmaps, heads on demand).

        ``state`` sets the initial view: ``kind``, ``layer``, ``head``, ``agg`` ("head", "mean",
        "max", "rollout"), ``hide_first``, ``merge_words``, ``view`` ("heatmap", "lines").
        """
        from llmlab.attention.widget import AttentionInspector

        return AttentionInspector(self, **state)

    def plot(self, kind: str | None = None, layer: int = -1, head: int | str = "mean", **options):
        """A matplotlib heatmap of one matrix (what the widget shows where widgets cannot load)."""
        from llmlab.attention.fallback import heatmap_figure

        return heatmap_figure(self, kind, layer, head, **options)

    # ------------------------------------------------------------------ snapshots
    def save(self, run_or_path: Any, name: str | None = None, **options: Any) -> Path:
        """Write a snapshot: into ``run.artifacts_dir / "attention" / name`` for a run, or into
        the folder ``run_or_path``. Returns the snapshot folder (format:
        ``docs/attention-snapshots.md``)."""
        from llmlab.attention.snapshot import save_snapshot

        return save_snapshot(self, run_or_path, name, **options)


# ====================================================================== inspect()
def inspect(
    model: nn.Module,
    tokenizer: Any,
    text: str | Sequence[int],
    target_text: str | Sequence[int] | None = None,
    *,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    dtype: str | torch.dtype = "auto",
    max_tokens: int | None = None,
    special_tokens: bool = True,
    logit_lens: bool = False,
    top_k: int = 5,
) -> Capture:
    """Run ``model`` once on ``text`` and capture its attention (and, on request, its logit lens).

    - gpt: ``text`` is the input; bert: ``text`` (and ``target_text`` as the second segment)
      wrapped in the tokenizer's [CLS] / [SEP] when it has them (``special_tokens``);
      seq2seq: ``text`` is the source and the decoder reads [bos] + ``target_text``.
    - ``text`` may also be a list of token ids.
    - ``layers`` / ``heads``: model layer and head numbers to keep (default all); negative
      numbers count from the end.
    - ``dtype``: ``"float32"``, ``"float16"`` or ``"auto"`` (float16 once a float32 capture
      would pass 256 MiB, e.g. 12 x 12 heads at 1,024 tokens).
    - ``max_tokens``: keep at most this many tokens (the first ones); a text longer than the
      model's context is an error unless this is given.
    - ``logit_lens``: also compute the top-``top_k`` predictions after every layer; without
      it ``cap.logit_lens()`` computes them on first use.

    >>> cap = inspect(model, tok, "The animal didn't cross the street")   # doctest: +SKIP
    >>> cap.show()                                                         # doctest: +SKIP
    """
    family = _family(model)
    cfg = getattr(model, "config", None)
    context = getattr(cfg, "context_length", None)
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1
                                   or (context and max_tokens > context)):
        raise InputError(
            f"max_tokens={max_tokens!r} must be an int from 1 to the model's context_length "
            f"({context})."
        )
    limit = max_tokens or context
    sides, token_types, b_start = _encode(_reads(model), tokenizer, text, target_text,
                                          special_tokens=special_tokens, limit=limit,
                                          truncate=max_tokens is not None)
    kinds = _kinds_of(model, family)
    n_heads = _n_heads(model)
    layer_sel = {kind: _selection(layers, n, "layers", kind) for kind, n in kinds.items()}
    head_sel = _selection(heads, n_heads, "heads", None)
    shapes = {kind: (len(layer_sel[kind]), len(head_sel),
                     len(sides[KINDS[kind][0]].ids), len(sides[KINDS[kind][1]].ids))
              for kind in kinds}
    store = _storage_dtype(dtype, shapes)

    device = _device(model)
    tensors = {name: torch.tensor([side.ids], dtype=torch.long, device=device)
               for name, side in sides.items()}
    types = None if token_types is None else torch.tensor([token_types], device=device)
    attention = {kind: torch.empty(shape, dtype=store) for kind, shape in shapes.items()}

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if family == "custom":
                out = _forward(model, family, tensors, types, return_attention=True,
                               return_hidden=False)
                _copy_from_output(out, attention, layer_sel, head_sel)
            else:
                out = _capture_with_hooks(model, family, tensors, types, attention=attention,
                                          layer_sel=layer_sel, head_sel=head_sel, kinds=kinds,
                                          want_hidden=logit_lens)
            predictions, lens = None, None
            if family != "custom" and out.logits is not None and out.logits.dim() == 3 \
                    and not cfg.n_labels:
                token_of = _token_namer(tokenizer)
                ids, probs, names = top_k_of(out.logits[0], top_k, token_of)
                predictions = TopK(ids, probs, names)
                if logit_lens:
                    side, head, what = lens_head(model, family)
                    lens = compute_lens(out.hidden_states, head, k=top_k, token_of=token_of,
                                        side=side, what=what)
    finally:
        model.train(was_training)

    return Capture(
        family=family, attention=attention, layers=layer_sel, heads=head_sel, n_heads=n_heads,
        n_layers=kinds, sides=sides, config=cfg.to_dict() if hasattr(cfg, "to_dict") else None,
        sentence_b_start=b_start, predictions=predictions, lens=lens, model=model,
        tokenizer=tokenizer,
    )


# ---------------------------------------------------------------------- the model
def _family(model: Any) -> str:
    from llmlab.models.base import TransformerModel

    if isinstance(model, TransformerModel):
        return model.config.family
    name = type(model).__name__
    if type(model).__module__.startswith("transformers"):
        raise InputError(
            f"{name} is a transformers model; llmlab inspects llmlab models. Import it with "
            "llmlab.load(folder) or llmlab.interop.load_hf(folder) (GPT-2 and BERT), after "
            "model.save_pretrained(folder)."
        )
    if not isinstance(model, nn.Module):
        raise InputError(
            f"inspect needs a model (torch.nn.Module), got {name}; build one with "
            "llmlab.build_model(cfg) or load one with llmlab.load(folder)."
        )
    try:
        params = _pyinspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        params = {}
    if "return_attention" not in params:
        raise InputError(
            f"{name}.forward has no return_attention argument, so its attention weights cannot "
            "be captured; use an llmlab model (llmlab.build_model, llmlab.load) or give the "
            "forward a return_attention=True option that returns .attentions "
            "(one [batch, heads, T, T] tensor per layer)."
        )
    return "custom"


def _reads(model: nn.Module) -> str:
    """What the model's capture input is (see ``TransformerModel.capture_input``)."""
    return getattr(model, "capture_input", "text")


def _kinds_of(model: nn.Module, family: str) -> dict[str, int]:
    if family != "custom":
        return model.attention_kinds()
    n = getattr(getattr(model, "config", None), "n_layer", None)
    if n is None:
        raise InputError(
            f"{type(model).__name__} has no config.n_layer, so the number of layers to capture "
            "is unknown; give the model a .config with n_layer and n_head."
        )
    return {"decoder": n}


def _n_heads(model: nn.Module) -> int:
    n = getattr(getattr(model, "config", None), "n_head", None)
    if n is None:
        raise InputError(
            f"{type(model).__name__} has no config.n_head; give the model a .config with "
            "n_layer and n_head."
        )
    return n


def _device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _selection(chosen: Sequence[int] | None, total: int, what: str, kind: str | None) -> list[int]:
    if chosen is None:
        return list(range(total))
    if isinstance(chosen, int):
        chosen = [chosen]
    try:
        values = list(chosen)
    except TypeError:
        raise InputError(f"{what}={chosen!r} must be a list of numbers, or None for all.") from None
    where = f" of the {kind}" if kind else ""
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or not -total <= v < total:
            raise InputError(
                f"{what}={values!r}: {v!r} is not one of the {total} {what}{where} "
                f"(0 .. {total - 1}, or negative from the end)."
            )
        out.append(v % total)
    if not out:
        raise InputError(f"{what}=[] selects nothing; pass None for all {what}.")
    return sorted(set(out))


def _storage_dtype(dtype: str | torch.dtype, shapes: dict[str, tuple[int, ...]]) -> torch.dtype:
    names = {"float32": torch.float32, "float16": torch.float16,
             torch.float32: torch.float32, torch.float16: torch.float16}
    numel = sum(int(torch.Size(s).numel()) for s in shapes.values())
    if dtype == "auto":
        chosen = torch.float32 if numel * 4 <= AUTO_FLOAT16_BYTES else torch.float16
    elif dtype in names:
        chosen = names[dtype]
    else:
        raise InputError(f"dtype={dtype!r}; use 'float32', 'float16' or 'auto'.")
    size = numel * (4 if chosen == torch.float32 else 2)
    if size > MAX_CAPTURE_BYTES:
        raise InputError(
            f"capturing every layer and head would take {size / 2**30:.1f} GiB; keep fewer with "
            "layers=[...] and heads=[...], use dtype='float16', or pass a shorter text "
            "(max_tokens=...)."
        )
    return chosen


def _forward(model: nn.Module, family: str, tensors: dict[str, Tensor], types: Tensor | None,
             **flags: bool):
    if family == "custom":
        return model(tensors["decoder"], return_attention=True)
    return model.capture_forward(tensors, types, **flags)


def _attention_modules(model: nn.Module, kinds: dict[str, int]) -> dict[str, list[nn.Module]]:
    return {kind: model.attention_modules(kind) for kind in kinds}


def _capture_with_hooks(model, family, tensors, types, *, attention, layer_sel, head_sel, kinds,
                        want_hidden):
    """Turn on the explicit attention path only in the captured layers (a pre-hook sets
    ``need_weights``) and keep each layer's weights, cast and head-selected, as soon as it has
    run (a forward hook), returning None to the model so nothing else holds them."""
    all_heads = head_sel == list(range(_n_heads(model)))
    head_index = torch.tensor(head_sel)
    seen: set[tuple[str, int]] = set()
    handles = []

    def hooks(kind: str, layer: int):
        row = layer_sel[kind].index(layer)

        def pre(module, args, kwargs):
            return args, {**kwargs, "need_weights": True}

        def post(module, args, output):
            y, weights = output
            if weights is not None:
                kept = weights[0] if all_heads else weights[0, head_index.to(weights.device)]
                attention[kind][row].copy_(kept)  # one pass: cast and move together
                seen.add((kind, layer))
            return y, None

        return pre, post

    try:
        for kind, modules in _attention_modules(model, kinds).items():
            for layer in layer_sel[kind]:
                pre, post = hooks(kind, layer)
                handles.append(modules[layer].register_forward_pre_hook(pre, with_kwargs=True))
                handles.append(modules[layer].register_forward_hook(post))
        out = _forward(model, family, tensors, types, return_attention=False,
                       return_hidden=want_hidden)
    finally:
        for h in handles:
            h.remove()
    expected = {(k, layer) for k, ls in layer_sel.items() for layer in ls}
    if seen != expected:  # the model's internals changed: take the documented, slower path
        out = _forward(model, family, tensors, types, return_attention=True,
                       return_hidden=want_hidden)
        _copy_from_output(out, attention, layer_sel, head_sel)
    return out


def _copy_from_output(out: Any, attention: dict[str, Tensor], layer_sel: dict[str, list[int]],
                      head_sel: list[int]) -> None:
    fields = {"decoder": "attentions", "encoder": "attentions", "cross": "cross_attentions"}
    if getattr(out, "encoder_attentions", None) is not None:
        fields["encoder"] = "encoder_attentions"
    for kind, target in attention.items():
        weights = getattr(out, fields[kind], None)
        if weights is None or len(weights) <= max(layer_sel[kind]):
            raise InputError(
                f"the model returned no {kind} attention weights for return_attention=True; "
                "its forward must return .attentions (one [batch, heads, T, S] tensor per layer)."
            )
        for row, layer in enumerate(layer_sel[kind]):
            target[row] = weights[layer][0, head_sel].to(device="cpu", dtype=target.dtype)


# ---------------------------------------------------------------------- tokens
def _token_namer(tokenizer: Any):
    cache: dict[int, str] = {}

    def name(i: int) -> str:
        if i not in cache:
            try:
                cache[i] = tokenizer.id_to_token(i)
            except Exception:  # noqa: BLE001 - ids beyond the tokenizer (padded vocabularies)
                cache[i] = f"<{i}>"
        return cache[i]

    return name


def _ids_of(tokenizer: Any, text: Any, what: str) -> tuple[str | None, list[int]]:
    if isinstance(text, str):
        if tokenizer is None:
            raise InputError(f"{what} is text but tokenizer is None; pass the model's tokenizer.")
        if not text:
            raise InputError(f"{what} is an empty string; pass some text (at least one token).")
        ids = list(tokenizer.encode(text))
        if not ids:
            raise InputError(f"{what} {text!r} gives no tokens; pass some text.")
        return text, ids
    if isinstance(text, Tensor):
        text = text.flatten().tolist()
    try:
        ids = [int(i) for i in text]
    except (TypeError, ValueError):
        raise InputError(
            f"{what} must be a str or a list of token ids, got {type(text).__name__}."
        ) from None
    if not ids:
        raise InputError(f"{what} is an empty list of ids; pass at least one token.")
    return None, ids


def _encode(reads, tokenizer, text, target_text, *, special_tokens, limit, truncate):
    """Token ids per side (and BERT's token types / segment B start), checked against ``limit``;
    ``reads`` is the model's :attr:`~llmlab.models.base.TransformerModel.capture_input`."""
    def role(name: str) -> int | None:
        return getattr(tokenizer, name, None) if special_tokens and tokenizer is not None else None

    src_text, ids = _ids_of(tokenizer, text, "text")
    # target_text is tokenized only by the models that read one
    targets = None if target_text is None else (
        lambda: _ids_of(tokenizer, target_text, "target_text"))

    parts, token_types, b_start = _READERS[reads](src_text, ids, targets, role=role,
                                                  limit=limit, truncate=truncate)
    namer = _token_namer(tokenizer) if tokenizer is not None else str
    specials = set(getattr(tokenizer, "special_ids", set()) or set())
    sides = {name: Side(t, i, [namer(x) for x in i], [x in specials for x in i])
             for name, (t, i) in parts.items()}
    return sides, token_types, b_start


def _read_text(src_text, ids, targets, *, role, limit, truncate):
    """A decoder-only model: one text."""
    if targets is not None:
        raise InputError("this model reads one text; drop target_text or join the texts into one.")
    return {"decoder": (src_text, _fit(ids, limit, truncate, "text", 0))}, None, None


def _read_text_pair(src_text, ids, targets, *, role, limit, truncate):
    """An encoder: [CLS] text [SEP] (target_text [SEP]), with token types."""
    cls, sep = role("cls_id"), role("sep_id")
    prefix, suffix = [cls] if cls is not None else [], [sep] if sep is not None else []
    pair = targets() if targets else None
    b_text, b_ids = (None, []) if pair is None else pair
    extra = len(prefix) + len(suffix) * (2 if b_ids else 1)
    if b_ids:
        room = (limit or 0) - extra
        if len(ids) + len(b_ids) > room and truncate:  # drop from the longer segment first
            while len(ids) + len(b_ids) > room and len(ids) + len(b_ids) > 2:
                if len(ids) >= len(b_ids):
                    ids = ids[:-1]
                else:
                    b_ids = b_ids[:-1]
    a = _fit(ids, limit, truncate, "text", extra + len(b_ids))
    full = prefix + a + suffix
    b_start = len(full) if b_ids else None
    token_types = [0] * len(full)
    if b_ids:
        full += b_ids + suffix
        token_types += [1] * (len(b_ids) + len(suffix))
    label = src_text if pair is None else f"{src_text} ||| {b_text}"
    return {"encoder": (label, full)}, token_types, b_start


def _read_source_target(src_text, ids, targets, *, role, limit, truncate):
    """An encoder-decoder: the source, and bos + target_text for the decoder."""
    bos = role("bos_id")
    target = targets() if targets else None
    if bos is None and target is None:
        raise InputError(
            "a seq2seq model needs decoder input: pass target_text (what the decoder reads), "
            "or a tokenizer with a bos token."
        )
    t_text, t_ids = (None, []) if target is None else target
    dec = ([bos] if bos is not None else []) + t_ids
    return {"encoder": (src_text, _fit(ids, limit, truncate, "text", 0)),
            "decoder": (t_text, _fit(dec, limit, truncate, "target_text", 0))}, None, None


_READERS = {"text": _read_text, "text_pair": _read_text_pair,
            "source_target": _read_source_target}


def _fit(ids: list[int], limit: int | None, truncate: bool, what: str, reserved: int) -> list[int]:
    if limit is None or len(ids) + reserved <= limit:
        return ids
    room = limit - reserved
    if truncate and room >= 1:
        return ids[:room]
    extra = f" plus {reserved} special tokens" if reserved else ""
    raise InputError(
        f"{what} has {len(ids)} tokens{extra}, more than the model's context_length {limit}; "
        f"shorten it, or pass max_tokens={limit} to keep the first {limit} tokens."
    )


def _run_lens(model, family, sides, tokenizer, *, k, b_start) -> LogitLens:
    side, head, what = lens_head(model, family)
    device = _device(model)
    tensors = {n: torch.tensor([s.ids], device=device) for n, s in sides.items()}
    types = None
    if _reads(model) == "text_pair":
        n = len(sides["encoder"].ids)
        types = torch.tensor([[0 if b_start is None or i < b_start else 1 for i in range(n)]],
                             device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = _forward(model, family, tensors, types, return_hidden=True)
            return compute_lens(out.hidden_states, head, k=k, token_of=_token_namer(tokenizer),
                                side=side, what=what)
    finally:
        model.train(was_training)
