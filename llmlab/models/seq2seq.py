"""Seq2Seq: the encoder-decoder Transformer (Vaswani et al. 2017) with cross-attention.

>>> import torch; from llmlab import ModelConfig
>>> model = Seq2Seq(ModelConfig.preset("seq2seq-small"))
>>> src, tgt = torch.zeros(2, 10, dtype=torch.long), torch.zeros(2, 7, dtype=torch.long)
>>> model(src, tgt).logits.shape
torch.Size([2, 7, 1024])
"""

from __future__ import annotations

from torch import Tensor, nn

from llmlab.config import ModelConfig
from llmlab.models.base import (
    ModelOutput,
    Stack,
    TransformerModel,
    key_padding_mask,
    self_attention_mask,
    token_loss,
)
from llmlab.models.cache import KVCache


class Seq2Seq(TransformerModel):
    """A bidirectional encoder over the source and a causal decoder that attends to it.

    Source and target share one token embedding (and the LM head, when tied).
    """

    encoder_decoder = True
    capture_input = "source_target"

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.encoder = Stack(cfg, cfg.n_layer, causal=False)
        self.decoder = Stack(cfg, cfg.decoder_layers, causal=True, cross=True)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self._init_weights()
        self._tie()

    def attention_kinds(self) -> dict[str, int]:
        cfg = self.config
        return {"encoder": cfg.n_layer, "decoder": cfg.decoder_layers, "cross": cfg.decoder_layers}

    def capture_forward(self, sides: dict[str, Tensor], token_types: Tensor | None = None,
                        **flags: bool) -> ModelOutput:
        return self(sides["encoder"], sides["decoder"], **flags)

    def encode(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        *,
        return_attention: bool = False,
        return_hidden: bool = False,
    ) -> tuple[Tensor, dict]:
        """Source ids ``[B, S]`` -> encoder states ``[B, S, C]`` (what the decoder attends to)."""
        self._check_ids(input_ids)
        self._check_mask(attention_mask, input_ids, "attention_mask")
        return self.encoder(
            self.embed(input_ids), mask=self_attention_mask(attention_mask, causal=False),
            rope=self._rope(None, input_ids.shape[1]),
            need_weights=return_attention, keep_hidden=return_hidden,
        )

    def decode(
        self,
        decoder_input_ids: Tensor,
        memory: Tensor,
        attention_mask: Tensor | None = None,
        decoder_attention_mask: Tensor | None = None,
        *,
        cache: KVCache | None = None,
        logits_to_keep: int | None = None,
        return_attention: bool = False,
        return_hidden: bool = False,
    ) -> tuple[Tensor, dict]:
        """Target ids ``[B, T]`` attending to encoder ``memory`` -> logits ``[B, T, vocab]``.

        ``attention_mask`` is the source padding mask; with a ``cache``, the decoder ids are the
        tokens after the cached ones and the encoder's keys and values are computed once.
        """
        past = cache.length if cache is not None else 0
        self._check_ids(decoder_input_ids, "decoder_input_ids")
        T = decoder_input_ids.shape[1]
        self._check_length(T, past)
        self._check_mask(decoder_attention_mask, decoder_input_ids, "decoder_attention_mask",
                         past)
        positions = self._positions(decoder_attention_mask, T, past)
        h, seen = self.decoder(
            self.embed(decoder_input_ids, positions=positions),
            mask=self_attention_mask(decoder_attention_mask, causal=True, T=T),
            rope=self._rope(positions, T), cache=cache,
            context=memory, context_mask=key_padding_mask(attention_mask),
            need_weights=return_attention, keep_hidden=return_hidden,
        )
        if cache is not None:
            cache.advance(T)
        return self.lm_head(h if logits_to_keep is None else h[:, -logits_to_keep:]), seen

    def forward(
        self,
        input_ids: Tensor,
        decoder_input_ids: Tensor,
        attention_mask: Tensor | None = None,
        decoder_attention_mask: Tensor | None = None,
        targets: Tensor | None = None,
        *,
        return_attention: bool = False,
        return_hidden: bool = False,
    ) -> ModelOutput:
        """Source ``[B, S]`` and decoder input ``[B, T]`` -> next-token logits ``[B, T, vocab]``."""
        memory, enc_seen = self.encode(
            input_ids, attention_mask, return_attention=return_attention,
            return_hidden=return_hidden,
        )
        logits, dec_seen = self.decode(
            decoder_input_ids, memory, attention_mask, decoder_attention_mask,
            return_attention=return_attention, return_hidden=return_hidden,
        )
        return ModelOutput(
            logits=logits, loss=token_loss(logits, targets),
            attentions=dec_seen["attentions"], cross_attentions=dec_seen["cross_attentions"],
            encoder_attentions=enc_seen["attentions"], hidden_states=dec_seen["hidden_states"],
            encoder_hidden_states=enc_seen["hidden_states"],
        )
