"""GPT: a decoder-only transformer trained to predict the next token.

>>> import torch; from llmlab import ModelConfig
>>> model = GPT(ModelConfig.preset("baby-char"))
>>> model(torch.zeros(1, 8, dtype=torch.long)).logits.shape
torch.Size([1, 8, 65])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from llmlab.config import ModelConfig
from llmlab.models.base import (
    ModelOutput,
    Stack,
    TransformerModel,
    headless_loss,
    self_attention_mask,
    token_loss,
)
from llmlab.models.cache import KVCache
from llmlab.models.layers import soft_cap


class GPT(TransformerModel):
    """Token + position embeddings, a stack of causal blocks, and a head.

    The head is the language-model head (tied to the token embedding when
    ``tie_embeddings``), or a classifier over the last real token when ``n_labels > 0``.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.decoder = Stack(cfg, cfg.n_layer, causal=True)
        if cfg.n_labels:
            self.classifier = nn.Linear(cfg.d_model, cfg.n_labels, bias=cfg.bias)
        elif cfg.lm_head:
            self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self._init_weights()
        self._tie()

    def attention_kinds(self) -> dict[str, int]:
        return {"decoder": self.config.n_layer}

    def capture_forward(self, sides: dict[str, Tensor], token_types: Tensor | None = None,
                        **flags: bool) -> ModelOutput:
        return self(sides["decoder"], **flags)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        targets: Tensor | None = None,
        *,
        cache: KVCache | None = None,
        logits_to_keep: int | None = None,
        return_attention: bool = False,
        return_hidden: bool = False,
    ) -> ModelOutput:
        """``input_ids [B, T]`` -> logits ``[B, T, vocab]`` (or ``[B, n_labels]``).

        ``targets`` are the next tokens ``[B, T]`` (-100 = ignore) for a language model, or
        class ids ``[B]`` for a classifier; the loss is then their mean cross-entropy.
        With a ``cache`` (generation), ``input_ids`` are the tokens after the cached ones and
        ``attention_mask`` covers cached and new tokens. ``logits_to_keep=k`` computes the
        LM head on the last ``k`` positions only (generation needs one).
        """
        past = cache.length if cache is not None else 0
        self._check_ids(input_ids)
        T = input_ids.shape[1]
        self._check_length(T, past)
        self._check_mask(attention_mask, input_ids, "attention_mask", past)
        positions = self._positions(attention_mask, T, past)
        h, seen = self.decoder(
            self.embed(input_ids, positions=positions),
            mask=self_attention_mask(attention_mask, causal=True, T=T),
            rope=self._rope(positions, T), cache=cache,
            need_weights=return_attention, keep_hidden=return_hidden,
        )
        if cache is not None:
            cache.advance(T)
        if self.config.n_labels:
            logits = self.classifier(last_token_states(h, attention_mask))
            loss = None if targets is None else F.cross_entropy(logits.float(), targets)
        elif self.config.lm_head:
            logits = self.lm_head(h if logits_to_keep is None else h[:, -logits_to_keep:])
            if self.config.logit_softcap:
                logits = soft_cap(logits, self.config.logit_softcap)
            loss = token_loss(logits, targets)
        else:
            logits, loss = None, headless_loss(targets)
        return ModelOutput(logits=logits, loss=loss, attentions=seen["attentions"],
                           hidden_states=seen["hidden_states"], last_hidden_state=h)


def last_token_states(h: Tensor, attention_mask: Tensor | None) -> Tensor:
    """Hidden state ``[B, C]`` of each row's last real token (right or left padding)."""
    if attention_mask is None:
        return h[:, -1]
    positions = torch.arange(h.shape[1], device=h.device)
    last = (attention_mask.bool() * positions).amax(dim=1)  # [B]
    return h[torch.arange(h.shape[0], device=h.device), last]
