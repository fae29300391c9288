"""Tiny random stand-ins for real Hugging Face models, built with transformers and saved with
``save_pretrained`` (with a trained byte-level BPE tokenizer) for tests to load offline."""

from __future__ import annotations

from pathlib import Path

import torch

CORPUS = ["The capital of France is Paris.", "The animal didn't cross the street.",
          "a good film", "a dull film", "Café naïve résumé 🤖", "the quick brown fox"] * 40
LLAMA_SHAPE = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                   rope_theta=5000.0, rms_norm_eps=1e-5)
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def byte_bpe(specials: list[str], vocab_size: int = 300):
    """A byte-level BPE (GPT-2's scheme) trained on ``CORPUS``, ``specials`` first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def save_llama_tokenizer(folder: Path) -> int:
    """A SmolLM2-like tokenizer (BOS added, ChatML template) in ``folder``; its vocab size."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    tok = byte_bpe(["<s>", "</s>", "<|im_start|>", "<|im_end|>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                            chat_template=CHATML).save_pretrained(folder)
    return tok.get_vocab_size()


def tiny_llama(folder: Path, *, seed: int = 0, with_tokenizer: bool = True,
               **changes) -> torch.nn.Module:
    """A random ``LlamaForCausalLM`` (grouped-query, 2 layers, width 64) saved in ``folder``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    vocab = save_llama_tokenizer(folder) if with_tokenizer else 101
    torch.manual_seed(seed)
    cfg = LlamaConfig(**{**LLAMA_SHAPE, "vocab_size": vocab, "bos_token_id": 0,
                         "eos_token_id": 1, **changes}, attn_implementation="eager")
    model = LlamaForCausalLM(cfg).eval()
    model.save_pretrained(folder)
    return model


# kind -> (config class, model class, config changes) for tiny_causal_lm
FAMILIES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", {}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {}),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {"head_dim": 32}),
    "mistral": ("MistralConfig", "MistralForCausalLM", {"sliding_window": 8}),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", {"rotary_pct": 0.25}),
    "gemma": ("GemmaConfig", "GemmaForCausalLM", {"head_dim": 32}),
    "gpt_neo": ("GPTNeoConfig", "GPTNeoForCausalLM", {}),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM",
               {"head_dim": 32, "sliding_window": 4, "attn_logit_softcapping": 50.0,
                "final_logit_softcapping": 30.0}),  # Gemma 2's own caps
    "olmo2": ("Olmo2Config", "Olmo2ForCausalLM", {}),
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM",
               {"head_dim": 32, "sliding_window": 4, "sliding_window_pattern": 2}),
}
# GPT-Neo names its sizes differently; a full and a local layer, with a window the prompts pass
NEO_SHAPE = dict(hidden_size=64, intermediate_size=96, num_layers=2, num_heads=4,
                 max_position_embeddings=128, attention_types=[[["global", "local"], 1]],
                 window_size=6)


def tiny_causal_lm(kind: str, folder: Path, *, seed: int = 0) -> torch.nn.Module:
    """A random causal LM of ``kind`` (see ``FAMILIES``) with the SmolLM2-like tokenizer."""
    import transformers

    if kind == "llama":
        return tiny_llama(folder, seed=seed)
    config_name, model_name, changes = FAMILIES[kind]
    vocab = save_llama_tokenizer(folder)
    shape = {k: v for k, v in LLAMA_SHAPE.items()
             if kind != "gpt_neox" or k not in ("num_key_value_heads", "rms_norm_eps")}
    shape = NEO_SHAPE if kind == "gpt_neo" else shape
    torch.manual_seed(seed)
    cfg = getattr(transformers, config_name)(**{**shape, "vocab_size": vocab, "bos_token_id": 0,
                                                "eos_token_id": 1, **changes},
                                             attn_implementation="eager")
    model = getattr(transformers, model_name)(cfg).eval()
    model.save_pretrained(folder)
    return model
