"""What every llmlab model shares: the output record, embeddings, masks, input checks, init.

>>> from llmlab import ModelConfig, build_model
>>> build_model(ModelConfig.preset("baby-char")).num_params()
804096
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from llmlab.config import ModelConfig
from llmlab.errors import InputError
from llmlab.models.cache import KVCache
from llmlab.models.layers import (
    Block,
    Rope,
    SoftCap,
    dropout,
    make_norm,
    rope_tables,
    sinusoidal_table,
)


@dataclass
class ModelOutput:
    """What a forward pass returns.

    ``attentions`` holds one ``[B, H, T, S]`` tensor per layer (the decoder's self-attention
    for seq2seq) and is only filled when ``return_attention=True``; likewise
    ``hidden_states`` (the embedding output, then each block's output) with ``return_hidden``.
    ``last_hidden_state`` ``[B, T, C]`` is the final hidden states (gpt and bert);
    ``logits`` is None for a model built without a head (``lm_head=False``).
    """

    logits: Tensor | None
    loss: Tensor | None = None
    attentions: tuple[Tensor, ...] | None = None
    cross_attentions: tuple[Tensor, ...] | None = None
    encoder_attentions: tuple[Tensor, ...] | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    encoder_hidden_states: tuple[Tensor, ...] | None = None
    last_hidden_state: Tensor | None = None


class Embeddings(nn.Module):
    """Token embeddings plus absolute positions (learned or sinusoidal) and token types."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.positions, self.has_token_types = cfg.pos_encoding, bool(cfg.type_vocab_size)
        self.scale = cfg.embed_scale
        if cfg.pos_encoding == "learned":
            self.pos = nn.Embedding(cfg.context_length, cfg.d_model)
        elif cfg.pos_encoding == "sinusoidal":
            self.register_buffer(
                "sinusoids", sinusoidal_table(cfg.context_length, cfg.d_model), persistent=False
            )
        if cfg.type_vocab_size:
            self.token_type = nn.Embedding(cfg.type_vocab_size, cfg.d_model)

    def forward(self, ids: Tensor, token_type_ids: Tensor | None = None,
                positions: Tensor | None = None) -> Tensor:
        """``ids [B, T]`` -> ``[B, T, C]``; ``positions [B, T]`` default to 0 .. T-1."""
        if positions is None:
            positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.tok(ids)  # [B, T, C]
        if self.scale != 1.0:
            x = x * torch.tensor(self.scale, dtype=x.dtype)  # rounded as the table's dtype
        if self.positions == "learned":
            x = x + self.pos(positions)
        elif self.positions == "sinusoidal":
            x = x + self.sinusoids[positions].to(x.dtype)
        if self.has_token_types:
            types = torch.zeros_like(ids) if token_type_ids is None else token_type_ids
            x = x + self.token_type(types)
        return x


class Stack(nn.Module):
    """A stack of blocks with the norm that belongs around it.

    Post-norm stacks normalise the embeddings (as BERT does); pre-norm stacks normalise the
    output of the last block (as GPT-2 does).
    """

    def __init__(self, cfg: ModelConfig, n_layer: int, *, causal: bool, cross: bool = False):
        super().__init__()
        self.causal = causal
        self.pre_norm = cfg.norm_position == "pre"
        self.norm = make_norm(cfg)
        self.dropout = cfg.dropout
        self.blocks = nn.ModuleList(
            Block(cfg, causal=causal, cross=cross, layer=i) for i in range(n_layer)
        )

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None,
        rope: Rope | None,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        need_weights: bool = False,
        keep_hidden: bool = False,
        cache: KVCache | None = None,
    ) -> tuple[Tensor, dict[str, tuple[Tensor, ...] | None]]:
        """Embedded ``x [B, T, C]`` -> final hidden states and, on request, what was seen."""
        x = dropout(x if self.pre_norm else self.norm(x), self.dropout, self.training)
        hidden, self_w, cross_w = [x], [], []
        for i, block in enumerate(self.blocks):
            x, sw, cw = block(x, mask=mask, rope=rope, context=context,
                              context_mask=context_mask, need_weights=need_weights,
                              cache=cache.layer(i) if cache is not None else None)
            hidden.append(x)
            self_w.append(sw)
            cross_w.append(cw)
        if self.pre_norm:
            x = self.norm(x)
            hidden[-1] = x
        return x, {
            "attentions": tuple(self_w) if need_weights else None,
            "cross_attentions": tuple(cross_w) if need_weights and cross_w[0] is not None else None,
            "hidden_states": tuple(hidden) if keep_hidden else None,
        }


class TransformerModel(nn.Module):
    """Base class of the llmlab model families (GPT, Bert, Seq2Seq).

    What the tools need to know about a family is asked of its class, not decided by
    ``family == ...`` chains: :attr:`predicts_next_token` and :attr:`encoder_decoder`
    (generation, scoring), :meth:`attention_kinds`, :meth:`attention_modules` and
    :meth:`capture_forward` (attention capture), :meth:`lens_parts` (the logit lens).
    """

    #: generation and scoring can use it (a causal LM or an encoder-decoder)
    predicts_next_token: bool = True
    #: it reads a source (encoder) and continues a target (decoder)
    encoder_decoder: bool = False
    #: what attention capture feeds it: "text", "text_pair" ([CLS] a [SEP] b [SEP]) or
    #: "source_target" (encoder text and decoder text)
    capture_input: str = "text"

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.embed = Embeddings(cfg)
        if cfg.pos_encoding == "rope":
            cos, sin = rope_tables(cfg, cfg.context_length)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        if cfg.rope_local_theta is not None:  # the windowed layers' own base, never scaled
            local = cfg.replace(rope_theta=cfg.rope_local_theta, rope_scaling="none")
            cos, sin = rope_tables(local, cfg.context_length)
            self.register_buffer("rope_cos_local", cos, persistent=False)
            self.register_buffer("rope_sin_local", sin, persistent=False)

    # --------------------------------------------------------------- public helpers
    def num_params(self) -> int:
        """Number of parameters (tied weights counted once; a quantized layer counts the
        weights it stores in int8 or int4, as ``llmlab.compress.count_params`` does)."""
        from llmlab.compress.size import count_params

        return count_params(self)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # --------------------------------------------------------------- what tools ask
    def attention_kinds(self) -> dict[str, int]:
        """The attention this model has, by kind ("decoder", "encoder", "cross"): layers each.

        >>> build_model(ModelConfig.preset("baby-char")).attention_kinds()  # doctest: +SKIP
        {'decoder': 4}
        """
        raise NotImplementedError

    def attention_modules(self, kind: str) -> list[nn.Module]:
        """The attention modules of one kind, layer by layer (for capture hooks)."""
        stack = self.decoder if kind in ("decoder", "cross") else self.encoder
        return [block.cross_attn if kind == "cross" else block.attn for block in stack.blocks]

    def capture_forward(self, sides: dict[str, Tensor], token_types: Tensor | None = None,
                        **flags: bool) -> ModelOutput:
        """The forward pass attention capture runs, from the token ids of each side
        ("decoder", "encoder") and BERT's token types; ``flags`` are forward options."""
        raise NotImplementedError

    def lens_parts(self) -> tuple[Stack, nn.Module, str, str]:
        """``(stack, output head, side, what it predicts)`` for the logit lens: the stack whose
        hidden states are read and the head that turns them into token logits."""
        self._check_lens_head()
        cap = self.config.logit_softcap
        head = nn.Sequential(self.lm_head, SoftCap(cap)) if cap else self.lm_head
        return self.decoder, head, "decoder", "next token"

    def _check_lens_head(self) -> None:
        if self.config.n_labels:
            raise InputError(
                "this model has a classifier head (n_labels="
                f"{self.config.n_labels}), not a vocabulary projection, so there is no logit "
                "lens; inspect a language-model checkpoint instead.")
        if not self.config.lm_head:
            raise InputError(
                "this model has no output head (a bare encoder or body, lm_head=False), so "
                "there is no vocabulary to read the logit lens in; inspect its attention, or "
                "load the checkpoint of its language model.")

    # --------------------------------------------------------------- shared pieces
    def _rope(self, positions: Tensor | None, T: int) -> Rope | None:
        """cos/sin for the positions: ``[T, D]``, or ``[B, 1, T, D]`` for per-row positions;
        one pair per kind of layer ("full", "local") where the windowed layers have their own
        RoPE base (``rope_local_theta``)."""
        if self.config.pos_encoding != "rope":
            return None
        full = _rows(self.rope_cos, self.rope_sin, positions, T)
        if self.config.rope_local_theta is None:
            return full
        return {"full": full, "local": _rows(self.rope_cos_local, self.rope_sin_local,
                                              positions, T)}

    def _positions(self, attention_mask: Tensor | None, T: int, past: int) -> Tensor | None:
        """Positions of the new tokens: None (0 .. T-1) in the plain case; with padding, each
        real token's index among the real tokens of its row, so left padding changes nothing."""
        if attention_mask is None:
            if past == 0:
                return None
            return torch.arange(past, past + T, device=self.embed.tok.weight.device)[None]
        counted = attention_mask.long().cumsum(-1) - 1
        return counted.clamp(min=0)[:, past:]

    def _check_length(self, T: int, past: int) -> None:
        if past + T > self.config.context_length:
            raise InputError(
                f"{past} cached + {T} new tokens exceed the model's context_length "
                f"{self.config.context_length}; stop generating, or slide the window "
                "(generate(..., on_overflow='slide'))."
            )

    def _init_weights(self) -> None:
        """Normal(0, init_std) weights, zero biases; residual outputs scaled down by
        1/sqrt(2 x layers) as in GPT-2 so the residual stream's variance does not grow."""
        if self.embed.tok.weight.is_meta:
            return  # a skeleton (build_skeleton): every weight will come from a checkpoint
        cfg = self.config
        n_residual = 2 * (cfg.n_layer + cfg.decoder_layers)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                std = cfg.init_std
                if getattr(module, "is_residual_output", False):
                    std = std / math.sqrt(n_residual)
                nn.init.normal_(module.weight, mean=0.0, std=std)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)

    def _tie(self) -> None:
        """Share the token embedding with the output projection, where the config says so
        (also after the parameters were replaced, as loading into a skeleton does)."""
        if not self.config.tie_embeddings:
            return
        if hasattr(self, "mlm_head"):
            self.mlm_head.decoder.weight = self.embed.tok.weight
        if hasattr(self, "lm_head"):
            self.lm_head.weight = self.embed.tok.weight

    def _check_ids(self, ids: Tensor, name: str = "input_ids") -> None:
        cfg = self.config
        if not isinstance(ids, Tensor) or ids.dtype.is_floating_point or ids.dtype == torch.bool:
            got = ids.dtype if isinstance(ids, Tensor) else type(ids).__name__
            raise InputError(
                f"{name} must be an integer tensor of token ids, got {got}; "
                "encode text with the tokenizer and pass torch.tensor(ids, dtype=torch.long)."
            )
        if ids.dim() != 2:
            raise InputError(
                f"{name} must have shape [batch, seq_len], got {tuple(ids.shape)}; "
                "add a batch dimension with ids.unsqueeze(0)."
            )
        if ids.shape[1] == 0:
            raise InputError(f"{name} is empty (seq_len 0); pass at least one token.")
        if ids.shape[1] > cfg.context_length:
            raise InputError(
                f"{name} has {ids.shape[1]} tokens but the model's context_length is "
                f"{cfg.context_length}; truncate the input (e.g. ids[:, -{cfg.context_length}:])"
                " or build a model with a larger context_length."
            )
        if torch.compiler.is_compiling():
            return
        lo, hi = (int(v) for v in ids.aminmax())
        if lo < 0 or hi >= cfg.vocab_size:
            bad = lo if lo < 0 else hi
            raise InputError(
                f"{name} contains token id {bad}, outside the vocabulary [0, {cfg.vocab_size}); "
                "encode text with the tokenizer this model was built for, or build the model "
                "with vocab_size >= tokenizer.vocab_size."
            )

    def _check_mask(self, mask: Tensor | None, ids: Tensor, name: str, past: int = 0) -> None:
        expected = (ids.shape[0], past + ids.shape[1])
        if mask is not None and tuple(mask.shape) != expected:
            cached = f" (with {past} cached tokens)" if past else ""
            raise InputError(
                f"{name} has shape {tuple(mask.shape)} but should be {expected}{cached}; pass "
                "one 1/0 (or True/False) flag per token."
            )


def self_attention_mask(attention_mask: Tensor | None, causal: bool, T: int | None = None,
                        ) -> Tensor | None:
    """Boolean ``[B, 1, T, S]`` mask (True = may attend) from a ``[B, S]`` padding mask.

    The queries are the last ``T`` of the ``S`` positions (all of them by default; fewer when
    earlier ones are cached). Returns None when nothing is padded, so the fused kernel can use
    its own causal path. Each position may always attend to itself, so a padded query never
    sees only ``-inf``.
    """
    if attention_mask is None or bool(attention_mask.all()):
        return None
    S = attention_mask.shape[1]
    T = S if T is None else T
    keys = attention_mask.bool()[:, None, None, :]  # [B, 1, 1, S]
    query_pos = torch.arange(S - T, S, device=keys.device)[:, None]  # [T, 1]
    key_pos = torch.arange(S, device=keys.device)[None, :]  # [1, S]
    allowed = key_pos <= query_pos if causal else torch.ones_like(key_pos, dtype=torch.bool)
    return (keys & allowed) | (key_pos == query_pos)


def key_padding_mask(attention_mask: Tensor | None) -> Tensor | None:
    """Boolean ``[B, 1, 1, S]`` mask over keys for cross-attention (None when unpadded)."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    return attention_mask.bool()[:, None, None, :]


def headless_loss(targets: Tensor | None) -> None:
    """A model without a head has no loss; targets for one are a mistake worth naming."""
    if targets is not None:
        raise InputError(
            "this model has no output head (lm_head=False), so it computes no loss; train a "
            "model with a head (load with n_labels=N for a classifier), or use its hidden "
            "states (output.last_hidden_state) yourself.")


def token_loss(logits: Tensor, targets: Tensor | None) -> Tensor | None:
    """Mean cross-entropy over the positions whose target is not -100."""
    if targets is None:
        return None
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-100
    )


def _rows(cos: Tensor, sin: Tensor, positions: Tensor | None, T: int) -> tuple[Tensor, Tensor]:
    if positions is None:
        return cos[:T], sin[:T]
    return cos[positions].unsqueeze(1), sin[positions].unsqueeze(1)
