"""Structured pruning of attention heads: scoring heads, and removing them for real.

Removing a head deletes its rows of the query/key/value projection and its columns of the
output projection, so the model gets smaller and faster. Heads are removed in units that
keep grouped-query attention intact: with ``n_kv_head < n_head`` a unit is one key/value
head together with the query heads that share it; with multi-head attention a unit is one
head. Only self-attention is pruned (seq2seq cross-attention is kept whole).

Head importance follows Michel, Levy and Neubig (2019), "Are Sixteen Heads Really Better
than One?": a gate ``ξ_h = 1`` multiplies each head's output and the importance of a head is
``|∂L/∂ξ_h|`` averaged over the data (here: over batches), normalised per layer (L2), as in
their section 4.

>>> import llmlab
>>> model = llmlab.build_model(llmlab.ModelConfig.preset("baby-char"), seed=0)
>>> remove_heads(model, {"decoder.blocks.0.attn": [1, 3]})
>>> model.decoder.blocks[0].attn.n_head
2
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn

from llmlab.errors import InputError
from llmlab.models.layers import Attention


class PrunedAttention(Attention):
    """Self-attention with fewer heads than the config says (inner width ``n_head x head_dim``).

    It computes as :class:`Attention` does (which takes its widths from its head counts, and
    whose KV cache sizes a layer's buffers to the keys it receives); it differs only in
    returning attention weights at the heads' original numbers (``kept_heads``, a saved
    buffer), zero for removed heads, so attention capture and the inspector see every layer
    with the config's ``n_head`` heads.
    """

    def _explicit(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None,
                  is_causal: bool) -> tuple[Tensor, Tensor]:
        y, kept = super()._explicit(q, k, v, mask, is_causal)
        B, _, T, S = kept.shape
        weights = kept.new_zeros(B, self.original_heads, T, S)
        weights[:, self.kept_heads] = kept
        return y, weights


def attention_layers(model: nn.Module) -> dict[str, Attention]:
    """The self-attention modules of ``model`` by name (``decoder.blocks.0.attn``, ...)."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, Attention) and not m.cross}


def head_counts(model: nn.Module) -> dict[str, int]:
    """Query heads left in each self-attention layer."""
    return {name: layer.n_head for name, layer in attention_layers(model).items()}


def remove_heads(model: nn.Module, heads: dict[str, list[int]]) -> None:
    """Delete query heads from self-attention layers, in place.

    ``heads`` maps a layer name (see :func:`attention_layers`) to the indices of the heads to
    delete, counted in the layer as it is now. With grouped-query attention, delete whole
    groups (all query heads of a key/value head). At least one head must stay per layer.
    """
    layers = attention_layers(model)
    for name, doomed in heads.items():
        if name not in layers:
            raise InputError(f"{name!r} is not a self-attention layer of this model; "
                             f"use one of {', '.join(layers)}.")
        _remove_from_layer(layers[name], sorted(set(doomed)), name)


def _remove_from_layer(layer: Attention, doomed: list[int], name: str) -> None:
    if not doomed:
        return
    H, K, D = layer.n_head, layer.n_kv_head, layer.head_dim
    group = H // K
    if any(not 0 <= h < H for h in doomed):
        raise InputError(f"layer {name!r} has heads 0..{H - 1}; got {doomed}.")
    units = sorted({h // group for h in doomed})
    if sorted(doomed) != [u * group + i for u in units for i in range(group)]:
        raise InputError(f"layer {name!r} uses grouped-query attention ({group} query heads per "
                         "key/value head); remove whole groups of heads.")
    if len(doomed) == H:
        raise InputError(f"removing every head of layer {name!r} would leave it empty; keep at "
                         "least one head per layer.")
    keep_q = [h for h in range(H) if h not in doomed]
    keep_kv = [g for g in range(K) if g not in units]
    q_rows = _rows(keep_q, D)
    rows = q_rows + [H * D + r for r in _rows(keep_kv, D)] + [
        (H + K) * D + r for r in _rows(keep_kv, D)]
    layer.qkv = _take(layer.qkv, rows, dim=0)
    layer.proj = _take(layer.proj, q_rows, dim=1)
    if hasattr(layer, "q_norm") and not layer.qk_norm_per_head:  # OLMo 2: all heads' widths
        layer.q_norm = _take_norm(layer.q_norm, q_rows)
        layer.k_norm = _take_norm(layer.k_norm, _rows(keep_kv, D))
    layer.proj.is_residual_output = True
    if not hasattr(layer, "kept_heads"):  # first pruning: heads are numbered as built
        layer.original_heads = H
        layer.register_buffer("kept_heads", torch.arange(H, device=layer.qkv.weight.device))
    layer.kept_heads = layer.kept_heads[torch.tensor(keep_q, device=layer.kept_heads.device)]
    layer.n_head, layer.n_kv_head = len(keep_q), len(keep_kv)
    layer.__class__ = PrunedAttention


def _rows(heads: list[int], D: int) -> list[int]:
    return [h * D + i for h in heads for i in range(D)]


def _take_norm(norm: nn.Module, index: list[int]) -> nn.Module:
    """A new norm over the ``index`` features of ``norm`` (RMSNorm or LayerNorm)."""
    idx = torch.tensor(index, device=norm.weight.device)
    small = copy.deepcopy(norm)
    small.normalized_shape = (len(index),)
    small.weight = nn.Parameter(norm.weight.detach().index_select(0, idx))
    if getattr(norm, "bias", None) is not None:
        small.bias = nn.Parameter(norm.bias.detach().index_select(0, idx))
    return small


def _take(linear: nn.Linear, index: list[int], *, dim: int) -> nn.Linear:
    """A new, smaller Linear keeping ``index`` of its outputs (dim 0) or inputs (dim 1)."""
    idx = torch.tensor(index, device=linear.weight.device)
    weight = linear.weight.detach().index_select(dim, idx)
    bias = linear.bias
    if bias is not None and dim == 0:
        bias = bias.detach().index_select(0, idx)
    out = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None,
                    device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        out.weight.copy_(weight)
        if bias is not None:
            out.bias.copy_(bias)
    return out


# --------------------------------------------------------------------------- importance
def unit_size(layer: Attention) -> int:
    """Query heads per pruning unit: 1, or the group size under grouped-query attention."""
    return layer.n_head // layer.n_kv_head


def magnitude_importance(model: nn.Module) -> dict[str, Tensor]:
    """Per-unit L2 norm of the output-projection columns the unit's heads write through.

    Needs no data; a head whose output projection is zero scores 0.
    """
    scores = {}
    for name, layer in attention_layers(model).items():
        cols = layer.proj.weight.detach().float().reshape(layer.proj.weight.shape[0],
                                                           layer.n_kv_head, -1)
        scores[name] = cols.pow(2).sum(dim=(0, 2)).sqrt()
    return scores


def gradient_importance(model: nn.Module, batches: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Michel et al. (2019) head importance: mean ``|∂L/∂ξ_h|`` per unit, normalised per layer."""
    layers = attention_layers(model)
    gates = {name: torch.ones(layer.n_head, requires_grad=True,
                              device=layer.proj.weight.device) for name, layer in layers.items()}
    handles = [layers[name].proj.register_forward_pre_hook(_gate_hook(gates[name],
                                                                      layers[name].head_dim))
               for name in layers]
    totals = {name: torch.zeros(layer.n_head) for name, layer in layers.items()}
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            loss = model(**batch).loss
            grads = torch.autograd.grad(loss, list(gates.values()))
            for name, grad in zip(gates, grads):
                totals[name] += grad.abs().cpu()
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    scores = {}
    for name, layer in layers.items():
        per_unit = totals[name].reshape(layer.n_kv_head, -1).sum(dim=1) / max(len(batches), 1)
        scores[name] = per_unit / per_unit.norm().clamp(min=1e-12)
    return scores


def entropy_importance(model: nn.Module, batches: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Negative mean attention entropy per unit: diffuse heads score low, focused heads high."""
    layers = list(attention_layers(model).items())
    totals = [torch.zeros(layer.n_head) for _, layer in layers]
    with torch.no_grad():
        for batch in batches:
            inputs = {k: v for k, v in batch.items() if k != "targets"}
            attentions = model(**inputs, return_attention=True).attentions
            for total, att, (_, layer) in zip(totals, attentions, layers):
                if hasattr(layer, "kept_heads"):  # weights come at the original head numbers
                    att = att[:, layer.kept_heads]
                entropy = -(att * att.clamp(min=1e-12).log()).sum(-1)  # [B, H, T]
                total += entropy.mean(dim=(0, 2)).cpu()
    return {name: -(total.reshape(layer.n_kv_head, -1).mean(dim=1) / max(len(batches), 1))
            for (name, layer), total in zip(layers, totals)}


def _gate_hook(gate: Tensor, head_dim: int):
    def hook(_module, args):
        (y,) = args  # [B, T, H * D], the heads' outputs side by side
        gated = y.reshape(*y.shape[:-1], -1, head_dim) * gate[:, None]
        return (gated.reshape(y.shape),)
    return hook


def heads_to_remove(model: nn.Module, scores: dict[str, Tensor], amount: float,
                    ) -> dict[str, list[int]]:
    """The least important ``amount`` of all units, ranked across layers (one unit stays per
    layer), as query-head indices per layer."""
    layers = attention_layers(model)
    ranked = sorted((float(s), name, u) for name, per_unit in scores.items()
                    for u, s in enumerate(per_unit))
    n_remove = math.floor(amount * len(ranked) + 1e-9)
    left = {name: layer.n_kv_head for name, layer in layers.items()}
    chosen: dict[str, list[int]] = {name: [] for name in layers}
    for _score, name, unit in ranked:
        if n_remove == 0:
            break
        if left[name] > 1:
            group = unit_size(layers[name])
            chosen[name] += [unit * group + i for i in range(group)]
            left[name] -= 1
            n_remove -= 1
    return {name: heads for name, heads in chosen.items() if heads}
