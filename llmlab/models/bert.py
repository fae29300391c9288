"""Bert: a bidirectional encoder with a masked-LM head or a sequence classifier.

>>> import torch; from llmlab import ModelConfig
>>> model = Bert(ModelConfig.preset("bert-mini", vocab_size=100, context_length=16))
>>> model(torch.zeros(2, 8, dtype=torch.long)).logits.shape
torch.Size([2, 8, 100])
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
from llmlab.models.layers import activation_fn, make_norm


class MaskedLMHead(nn.Module):
    """BERT's prediction head: dense, activation, norm, then the (tied) vocabulary projection."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.act = activation_fn(cfg.activation)
        self.norm = make_norm(cfg)
        self.decoder = nn.Linear(cfg.d_model, cfg.vocab_size, bias=cfg.bias)

    def forward(self, h: Tensor) -> Tensor:
        return self.decoder(self.norm(self.act(self.dense(h))))


class ClassifierHead(nn.Module):
    """BERT's pooler (dense + tanh over the first token) followed by a linear classifier."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.pool = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(cfg.d_model, cfg.n_labels, bias=cfg.bias)

    def forward(self, h: Tensor) -> Tensor:
        return self.out(self.drop(torch.tanh(self.pool(h[:, 0]))))


class Bert(TransformerModel):
    """Embeddings (tokens, positions, token types), bidirectional blocks, and a head."""

    predicts_next_token = False
    capture_input = "text_pair"

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.encoder = Stack(cfg, cfg.n_layer, causal=False)
        if cfg.n_labels:
            self.classifier = ClassifierHead(cfg)
        elif cfg.lm_head:
            self.mlm_head = MaskedLMHead(cfg)
        self._init_weights()
        self._tie()

    def attention_kinds(self) -> dict[str, int]:
        return {"encoder": self.config.n_layer}

    def capture_forward(self, sides: dict[str, Tensor], token_types: Tensor | None = None,
                        **flags: bool) -> ModelOutput:
        return self(sides["encoder"], token_type_ids=token_types, **flags)

    def lens_parts(self) -> tuple[Stack, nn.Module, str, str]:
        self._check_lens_head()
        return self.encoder, self.mlm_head, "encoder", "masked token"

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        targets: Tensor | None = None,
        *,
        token_type_ids: Tensor | None = None,
        return_attention: bool = False,
        return_hidden: bool = False,
    ) -> ModelOutput:
        """``input_ids [B, T]`` -> logits ``[B, T, vocab]`` (or ``[B, n_labels]``).

        ``targets``: original ids at masked positions and -100 elsewhere (masked LM), or class
        ids ``[B]`` for a classifier.
        """
        self._check_ids(input_ids)
        self._check_mask(attention_mask, input_ids, "attention_mask")
        mask = self_attention_mask(attention_mask, causal=False)
        h, seen = self.encoder(
            self.embed(input_ids, token_type_ids), mask=mask,
            rope=self._rope(None, input_ids.shape[1]),
            need_weights=return_attention, keep_hidden=return_hidden,
        )
        if self.config.n_labels:
            logits = self.classifier(h)
            loss = None if targets is None else F.cross_entropy(logits.float(), targets)
        elif self.config.lm_head:
            logits = self.mlm_head(h)
            loss = token_loss(logits, targets)
        else:
            logits, loss = None, headless_loss(targets)
        return ModelOutput(logits=logits, loss=loss, attentions=seen["attentions"],
                           hidden_states=seen["hidden_states"], last_hidden_state=h)
