"""OLMo 2 and OLMo 3 checkpoints (``model_type`` "olmo2", "olmo3") -> llmlab ``GPT`` models.

OLMo 2 is Llama with its norms moved: a block does not normalise its input, only each
sublayer's output before it joins the residual (``input_norm=False``,
``sublayer_norm=True``), and queries and keys are RMS-normalised over all heads together,
the projection's whole width (``qk_norm_per_head=False``). OLMo 3 adds windowed layers,
three to each full one (``sliding_window``, ``window_pattern``).

>>> from llmlab.interop import load_hf                        # doctest: +SKIP
>>> model, tok = load_hf("allenai/OLMo-2-0425-1B")             # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from llmlab.config import ModelConfig
from llmlab.errors import CheckpointError
from llmlab.interop import llama
from llmlab.interop._hf import Rule
from llmlab.interop.llama import canonical_names, headless, ignorable, mismatch_hint

MODEL_TYPES = ("olmo2", "olmo3")
CHECKED = ("logits", "eager attention", "greedy generate (batch 1, left-padded 4)",
           "every llmlab tool")
__all__ = ["canonical_names", "headless", "ignorable", "mismatch_hint", "model_config", "rules"]


def model_config(hf: dict[str, Any], *, n_labels: int, name: str) -> ModelConfig:
    """The llmlab config of an OLMo 2/3 ``config.json`` (``n_labels`` classes, 0 = LM)."""
    cfg = llama.model_config(hf, n_labels=n_labels, name=name)
    local = llama.local_rope_settings(hf)
    if local.get("rope_type", "default") != "default":
        raise CheckpointError(
            f"this {hf.get('model_type')} variant cannot be loaded into llmlab's GPT yet: "
            f"sliding_attention rope_type={local['rope_type']!r} (llmlab needs 'default' in "
            "the windowed layers).")
    theta = float(local.get("rope_theta", cfg.rope_theta))
    windowed = cfg.sliding_window is not None and theta != cfg.rope_theta
    return cfg.replace(qk_norm=True, qk_norm_per_head=False, input_norm=False,
                       sublayer_norm=True, rope_local_theta=theta if windowed else None)


def rules(cfg: ModelConfig, *, new_head: bool = False) -> list[Rule]:
    """Llama's rules without the input norms OLMo does not have, plus its output norms."""
    out = [rule for rule in llama.rules(cfg, new_head=new_head)
           if not rule.target.endswith((".attn_norm.weight", ".ffn_norm.weight"))]
    return out + llama.output_norm_rules(cfg)
