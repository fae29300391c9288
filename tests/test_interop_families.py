"""Real-model families in llmlab: Llama, Mistral, Qwen2, Qwen3 (SmolLM2 is Llama), GPT-NeoX,
Gemma 1, 2 and 3, OLMo 2 and 3 and GPT-Neo (the TinyStories models).

Tiny random models built with transformers and saved with ``save_pretrained`` are loaded by
``llmlab.load`` and compared with transformers on the same inputs: logits, every layer's
attention weights, greedy generation, and an export that transformers loads back.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import llmlab
from llmlab.errors import CheckpointError

VOCAB = 101
SHAPE = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
             rope_theta=5000.0, rms_norm_eps=1e-5, bos_token_id=None, eos_token_id=None)


NEOX_SHAPE = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, max_position_embeddings=128, layer_norm_eps=1e-5,
                  hidden_act="gelu", bos_token_id=None, eos_token_id=None)
# two full and two local layers; prompts and generations run past the window of 5
NEO_SHAPE = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_layers=4,
                 num_heads=4, max_position_embeddings=128, window_size=5,
                 attention_types=[[["global", "local"], 2]], bos_token_id=None,
                 eos_token_id=None)


def _build(kind: str, folder: Path, seed: int = 0, **changes) -> torch.nn.Module:
    import transformers

    config_cls, model_cls = {
        "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
        "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM),
        "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
        "qwen3": (transformers.Qwen3Config, transformers.Qwen3ForCausalLM),
        "gpt_neox": (transformers.GPTNeoXConfig, transformers.GPTNeoXForCausalLM),
        "gemma": (transformers.GemmaConfig, transformers.GemmaForCausalLM),
        "gpt_neo": (transformers.GPTNeoConfig, transformers.GPTNeoForCausalLM),
        "gemma3_text": (transformers.Gemma3TextConfig, transformers.Gemma3ForCausalLM),
        "gemma2": (transformers.Gemma2Config, transformers.Gemma2ForCausalLM),
        "olmo2": (transformers.Olmo2Config, transformers.Olmo2ForCausalLM),
        "olmo3": (transformers.Olmo3Config, transformers.Olmo3ForCausalLM),
        "llama-classifier": (transformers.LlamaConfig,
                             transformers.LlamaForSequenceClassification),
        "gpt_neox-classifier": (transformers.GPTNeoXConfig,
                                transformers.GPTNeoXForSequenceClassification),
        "gpt_neo-classifier": (transformers.GPTNeoConfig,
                               transformers.GPTNeoForSequenceClassification),
    }[kind]
    torch.manual_seed(seed)
    shape = {"gpt_neox": NEOX_SHAPE, "gpt_neo": NEO_SHAPE}.get(kind.partition("-")[0], SHAPE)
    cfg = config_cls(**{**shape, **changes}, attn_implementation="eager")
    model = model_cls(cfg).eval()
    with torch.no_grad():  # norms off their init (Gemma's are zero): a misplaced one shows
        for name, param in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                param.add_(0.3 * torch.randn_like(param))
    model.save_pretrained(folder)
    return model


LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 5000.0, "factor": 8.0,
               "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 16}
VARIANTS = {
    "llama-gqa": ("llama", {}),
    "llama-tied": ("llama", {"tie_word_embeddings": True, "num_key_value_heads": 4}),
    "llama-biases": ("llama", {"attention_bias": True, "mlp_bias": True}),
    "llama3-rope": ("llama", {"rope_parameters": LLAMA3_ROPE}),
    "llama-linear-rope": ("llama", {"rope_parameters": {"rope_type": "linear",
                                                        "rope_theta": 5000.0, "factor": 4.0}}),
    "mistral-window": ("mistral", {"sliding_window": 5}),
    "qwen2": ("qwen2", {}),
    "qwen3": ("qwen3", {"head_dim": 32}),
    "gemma": ("gemma", {"head_dim": 32}),
    # a windowed layer (RoPE base 10,000) and a full one (5,000), four norms per block
    # caps small enough to bend these small scores and logits
    "gemma2": ("gemma2", {"head_dim": 32, "sliding_window": 4, "query_pre_attn_scalar": 24,
                          "attn_logit_softcapping": 0.5, "final_logit_softcapping": 0.4}),
    "gemma3": ("gemma3_text", {"head_dim": 32, "sliding_window": 4, "sliding_window_pattern": 2,
                               "query_pre_attn_scalar": 24}),
    "pythia": ("gpt_neox", {"rope_parameters": {"rope_type": "default", "rope_theta": 5000.0,
                                                 "partial_rotary_factor": 0.25}}),
    "neox-sequential": ("gpt_neox", {"use_parallel_residual": False,
                                     "rope_parameters": {"rope_type": "default",
                                                         "rope_theta": 5000.0,
                                                         "partial_rotary_factor": 0.5}}),
    # Qwen2's window above max_window_layers: layer 0 full, layer 1 windowed
    "qwen2-window-layers": ("qwen2", {"use_sliding_window": True, "sliding_window": 4,
                                      "max_window_layers": 1}),
    "olmo2": ("olmo2", {}),
    # a windowed and a full layer (layer_types), the windowed one on its own RoPE base
    "olmo3": ("olmo3", {"sliding_window": 4, "layer_types": ["sliding_attention",
                                                             "full_attention"],
                        "rope_parameters": {
                            "full_attention": {"rope_type": "default", "rope_theta": 5000.0},
                            "sliding_attention": {"rope_type": "default",
                                                  "rope_theta": 500.0}}}),
    "tinystories": ("gpt_neo", {}),
    "neo-all-local": ("gpt_neo", {"attention_types": [[["local"], 4]]}),
}
EXPORTABLE = {"llama-gqa", "llama-tied", "llama-biases", "llama3-rope", "llama-linear-rope"}


@pytest.fixture(scope="module", params=list(VARIANTS))
def pair(request, tmp_path_factory):
    """(transformers model, llmlab model) with the same weights."""
    folder = tmp_path_factory.mktemp(request.param)
    kind, changes = VARIANTS[request.param]
    theirs = _build(kind, folder, **changes)
    ours, _ = llmlab.load(folder)
    ours.variant = request.param
    return theirs, ours


def _ids(batch: int = 2, length: int = 11, seed: int = 3) -> torch.Tensor:
    return torch.randint(3, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def test_logits_match_transformers(pair):
    theirs, ours = pair
    ids = _ids()
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, theirs(ids).logits, atol=1e-4, rtol=1e-4)


def test_every_layers_attention_matches_eager_attention(pair):
    theirs, ours = pair
    ids = _ids()
    with torch.no_grad():
        expected = theirs(ids, output_attentions=True).attentions
        got = ours(ids, return_attention=True).attentions
    assert len(got) == len(expected) == ours.config.n_layer
    for layer, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert a.shape == b.shape == (2, 4, 11, 11), layer  # one map per query head
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def _their_greedy(model, ids: torch.Tensor, mask: torch.Tensor | None, new: int) -> list:
    """transformers' greedy tokens (the config names no eos, so all ``new`` are generated)."""
    with torch.no_grad():
        out = model.generate(ids, attention_mask=mask, max_new_tokens=new, do_sample=False,
                             pad_token_id=0)
    return out[:, ids.shape[1]:].tolist()


def test_greedy_generation_gives_transformers_token_ids(pair):
    theirs, ours = pair
    prompt = _ids(1, 6)[0].tolist()
    got = llmlab.generate(ours, None, prompt, max_new_tokens=50, temperature=0,
                          stop_token_ids=[])
    assert got.token_ids == _their_greedy(theirs, torch.tensor([prompt]), None, 50)[0]


def test_a_left_padded_batch_of_four_generates_as_transformers(pair):
    theirs, ours = pair
    prompts = [_ids(1, n, seed=n)[0].tolist() for n in (3, 7, 5, 9)]
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    got = llmlab.generate(ours, None, prompts, max_new_tokens=50, temperature=0,
                          stop_token_ids=[])
    assert [g.token_ids for g in got] == _their_greedy(theirs, ids, mask, 50)


def test_export_round_trips_through_transformers(pair, tmp_path):
    from transformers import AutoModelForCausalLM

    theirs, ours = pair
    if ours.variant not in EXPORTABLE:
        with pytest.raises(CheckpointError, match="cannot be written as GPT-2 or Llama"):
            llmlab.interop.export(ours, tmp_path / "export")
        return
    folder = llmlab.interop.export(ours, tmp_path / "export")
    assert json.loads((folder / "config.json").read_text())["model_type"] == "llama"
    back = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = _ids()
    with torch.no_grad():
        torch.testing.assert_close(back(ids).logits, theirs(ids).logits, atol=1e-4, rtol=1e-4)
    again, _ = llmlab.load(folder)
    with torch.no_grad():
        torch.testing.assert_close(again(ids).logits, ours(ids).logits)


def test_sharded_safetensors_load(tmp_path):
    theirs = _build("llama", tmp_path / "full")
    theirs.save_pretrained(tmp_path / "sharded", max_shard_size="100KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    ours, _ = llmlab.load(tmp_path / "sharded")
    ids = _ids()
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, theirs(ids).logits, atol=1e-4, rtol=1e-4)


def test_bfloat16_load(tmp_path):
    _build("llama", tmp_path)
    ours, _ = llmlab.load(tmp_path, dtype=torch.bfloat16)
    assert next(ours.parameters()).dtype == torch.bfloat16
    assert ours(_ids()).logits.dtype == torch.bfloat16


@pytest.mark.parametrize("kind", ["llama-classifier", "gpt_neox-classifier",
                                  "gpt_neo-classifier"])
def test_a_classifier_checkpoint_matches_transformers(tmp_path, kind):
    theirs = _build(kind, tmp_path, num_labels=3, pad_token_id=0)
    ours, _ = llmlab.load(tmp_path)
    ids = _ids()
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, theirs(ids).logits, atol=1e-4, rtol=1e-4)


def test_the_knobs_arrive_in_the_config(pair):
    _, ours = pair
    cfg, variant = ours.config, ours.variant
    expected = {
        "mistral-window": {"sliding_window": 5}, "qwen2": {"qkv_bias": True, "bias": False},
        "qwen3": {"qk_norm": True, "head_size": 32}, "llama3-rope": {"rope_scaling": "llama3"},
        "llama-biases": {"bias": True, "mlp_bias": True},
        "gemma": {"activation": "geglu", "embed_scale": 8.0, "head_size": 32},
        "pythia": {"parallel_residual": True, "rotary_fraction": 0.25, "bias": True},
        "neox-sequential": {"parallel_residual": False, "rotary_fraction": 0.5},
        "tinystories": {"attn_scale": 1.0, "sliding_window": 5, "window_pattern": "fwfw",
                        "qkv_bias": False, "pos_encoding": "learned"},
        "neo-all-local": {"sliding_window": 5, "window_pattern": ""},
        "qwen2-window-layers": {"sliding_window": 4, "window_pattern": "fw"},
        "olmo2": {"input_norm": False, "sublayer_norm": True, "qk_norm": True,
                  "qk_norm_per_head": False},
        "olmo3": {"input_norm": False, "window_pattern": "wf", "rope_local_theta": 500.0},
        "gemma2": {"sublayer_norm": True, "qk_norm": False, "attn_softcap": 0.5,
                   "logit_softcap": 0.4, "sliding_window": 4, "window_pattern": "wf",
                   "rope_local_theta": None},
        "gemma3": {"sublayer_norm": True, "qk_norm": True, "attn_scale": 24 ** -0.5,
                   "sliding_window": 4, "window_pattern": "wf", "rope_local_theta": 10000.0},
    }.get(variant, {})
    assert {key: getattr(cfg, key) for key in expected} == expected
    assert ours.num_params() == cfg.estimate().params


@pytest.mark.parametrize(("changes", "named"), [
    ({"hidden_act": "gelu"}, "hidden_act='gelu'"),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 2.0}}, "rope_type='yarn'"),
    ({"rope_scaling": {"rope_type": "default", "partial_rotary_factor": 0.5}},
     "partial_rotary_factor=0.5"),
    ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}},
     "original_max_position_embeddings=None"),
    ({"use_sliding_window": True, "sliding_window": 4,
      "layer_types": ["sliding_attention", "chunked_attention"]}, "layer_types="),
])
def test_options_llmlab_cannot_honour_are_named(tmp_path, changes, named):
    _build("llama", tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(changes)
    config.pop("rope_parameters", None) if "rope_scaling" in changes else None
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=named.replace("(", r"\(")):
        llmlab.load(tmp_path)


def test_a_gemma3_config_from_before_layer_types_windows_the_same_layers(tmp_path):
    # the Hub's Gemma 3 configs were written with sliding_window_pattern and
    # rope_local_base_freq, before transformers named each layer's kind
    theirs = _build("gemma3_text", tmp_path, head_dim=32, sliding_window=4,
                    sliding_window_pattern=2, query_pre_attn_scalar=24)
    config = json.loads((tmp_path / "config.json").read_text())
    config.pop("layer_types")
    rope = config.pop("rope_parameters")
    config.update(sliding_window_pattern=2, rope_theta=rope["full_attention"]["rope_theta"],
                  rope_local_base_freq=rope["sliding_attention"]["rope_theta"])
    (tmp_path / "config.json").write_text(json.dumps(config))
    ours, _ = llmlab.load(tmp_path)
    assert (ours.config.window_pattern, ours.config.rope_local_theta) == ("wf", 10000.0)
    ids = _ids()
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, theirs(ids).logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("changes", "named"), [
    ({"use_bidirectional_attention": True}, "use_bidirectional_attention=True"),
    ({"rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 1e6},
                          "sliding_attention": {"rope_type": "linear", "factor": 2.0,
                                                "rope_theta": 1e4}}}, "rope_type='linear'"),
])
def test_gemma3_options_llmlab_cannot_honour_are_named(tmp_path, changes, named):
    _build("gemma3_text", tmp_path, head_dim=32)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(changes)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=f"gemma3_text variant.*{named}"):
        llmlab.load(tmp_path)


def test_supported_lists_every_model_type_with_what_is_checked():
    table = llmlab.interop.supported()
    rows = {row["model_type"]: row for row in table.iter_rows(named=True)}
    assert {"gpt2", "bert", "llama", "mistral", "qwen2", "qwen3", "gpt_neox", "gemma",
            "gpt_neo", "gemma2", "gemma3_text", "olmo2", "olmo3"} <= set(rows)
    assert rows["llama"]["exports"] and rows["gpt2"]["exports"] and not rows["bert"]["exports"]
    assert "greedy generate (batch 1, left-padded 4)" in rows["mistral"]["checked"]
