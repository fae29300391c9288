import itertools

import pytest
import torch

import llmlab
from llmlab import ModelConfig
from llmlab.errors import ConfigError

GRID = list(itertools.product(
    ["gpt", "bert", "seq2seq"], ["learned", "sinusoidal", "rope", "none"],
    ["layernorm", "rmsnorm"], ["gelu", "swiglu"], [True, False], [True, False], [None, 2],
    [0, 3], ["pre", "post"],
))


@pytest.mark.parametrize("chunk", range(4))
def test_param_count_equals_built_model_over_the_option_grid(chunk):
    for fam, pos, norm, act, bias, tie, kv, labels, where in GRID[chunk::4]:
        if labels and fam == "seq2seq":
            continue
        cfg = ModelConfig(
            family=fam, vocab_size=37, context_length=16, n_layer=2, n_head=4, d_model=32,
            pos_encoding=pos, norm=norm, activation=act, bias=bias, tie_embeddings=tie,
            n_kv_head=kv, n_labels=labels, norm_position=where,
            type_vocab_size=2 if fam == "bert" else 0,
            n_decoder_layer=3 if fam == "seq2seq" else None,
        )
        assert llmlab.build_model(cfg).num_params() == cfg.estimate().params, cfg


KNOBS = [
    dict(bias=False, qkv_bias=True), dict(bias=True, qkv_bias=False, mlp_bias=False),
    dict(bias=False, mlp_bias=True), dict(head_size=16), dict(head_size=4, n_kv_head=2),
    dict(qk_norm=True), dict(qk_norm=True, norm="layernorm", bias=True),
    dict(qk_norm=True, head_size=16, norm="rmsnorm"), dict(rotary_fraction=0.25),
    dict(parallel_residual=True), dict(sliding_window=4),
    dict(rope_scaling="llama3", rope_factor=8.0, rope_original_context=8),
    dict(activation="geglu", embed_scale=5.0),
    dict(sliding_window=4, window_pattern="wf", attn_scale=1.0, qkv_bias=False),
    dict(sublayer_norm=True, qk_norm=True, sliding_window=4, rope_local_theta=500.0),
    dict(attn_softcap=50.0),
    dict(input_norm=False, sublayer_norm=True, qk_norm=True, qk_norm_per_head=False,
         n_kv_head=2),
]


@pytest.mark.parametrize("family", ["gpt", "bert", "seq2seq"])
@pytest.mark.parametrize("knobs", KNOBS)
def test_param_count_is_exact_for_the_real_model_knobs(family, knobs):
    if family != "gpt" and ("parallel_residual" in knobs or "sublayer_norm" in knobs
                            or ("sliding_window" in knobs and family == "bert")):
        return  # refused by the config (tests/test_config.py)
    for labels in (0, 3) if family != "seq2seq" else (0,):
        cfg = ModelConfig(family=family, vocab_size=37, context_length=16, n_layer=2, n_head=4,
                          d_model=32, pos_encoding="rope", n_labels=labels,
                          **{"activation": "swiglu", **knobs})
        assert llmlab.build_model(cfg).num_params() == cfg.estimate().params, cfg


def test_a_sliding_window_caps_the_attention_flops():
    base = ModelConfig(family="gpt", vocab_size=37, context_length=64, n_layer=2, n_head=4,
                       d_model=32, pos_encoding="rope")
    from llmlab.estimate import attention_flops_per_token

    windowed = base.replace(sliding_window=8)
    assert attention_flops_per_token(windowed, 64) == attention_flops_per_token(base, 8)
    assert attention_flops_per_token(windowed, 4) == attention_flops_per_token(base, 4)
    # one of the two layers windowed: it reads 8 tokens, the other all 64
    half = base.replace(sliding_window=8, window_pattern="fw")
    one_layer = base.replace(n_layer=1)
    assert attention_flops_per_token(half, 64) == (attention_flops_per_token(one_layer, 64)
                                                   + attention_flops_per_token(one_layer, 8))


def test_a_seq2seq_window_caps_the_decoder_only():
    from llmlab.estimate import attention_flops_per_token

    base = ModelConfig(family="seq2seq", vocab_size=37, context_length=64, n_layer=2, n_head=4,
                       d_model=32)
    width = 4 * 32
    # encoder self-attention 2 x 64, decoder self-attention 2 x 8, cross-attention 2 x 64
    expected = 4 * width // 4 * (2 * 64 + 2 * 8 + 2 * 64)
    assert attention_flops_per_token(base.replace(sliding_window=8), 64) == expected


@pytest.mark.parametrize("name", ModelConfig.presets())
def test_presets_param_count_matches_model(name):
    cfg = ModelConfig.preset(name)
    with torch.device("meta"):
        model = llmlab.build_model(cfg)
    assert model.num_params() == cfg.estimate().params


def test_hand_calculation_for_baby_char():
    # 4 layers, width 128, vocab 65, context 64, no biases, tied embeddings (nanoGPT's CPU config)
    d, L, V, T = 128, 4, 65, 64
    per_layer = 2 * d + 3 * d * d + d * d + 2 * (d * 4 * d)  # two LayerNorm weights, qkv, proj, MLP
    params = V * d + T * d + L * per_layer + d
    est = ModelConfig.preset("baby-char").estimate(batch_size=12, seq_len=T)
    assert est.params == params == 804096
    matmul = params - T * d  # token table doubles as the output projection
    assert est.matmul_params == matmul
    assert est.flops_per_token_forward == 2 * matmul + 4 * L * d * T
    assert est.flops_per_token_train == 6 * matmul + 12 * L * d * T
    assert est.flops_per_step == est.flops_per_token_train * 12 * T
    assert est.kv_cache_bytes_per_token == 2 * L * d * 4
    assert est.weights_bytes == est.gradients_bytes == params * 4
    assert est.optimizer_bytes == params * 8
    assert est.activations_bytes == L * T * 12 * d * 34 * 4 // 2 + 2 * 12 * T * V * 4


def test_gpt2_small_matches_published_size_and_bf16_memory():
    est = ModelConfig.preset("gpt2-small").estimate(batch_size=8, seq_len=1024, dtype="bf16")
    assert est.params == 124_439_808  # GPT-2 small, with its tied LM head
    assert est.weights_bytes == 2 * est.params
    assert est.optimizer_bytes == 12 * est.params  # two fp32 moments + fp32 master weights
    fused = est.activations_bytes
    explicit = ModelConfig.preset("gpt2-small").estimate(
        batch_size=8, seq_len=1024, dtype="bf16", fused_attention=False).activations_bytes
    assert explicit - fused == 12 * 5 * 12 * 1024 * 1024 * 8  # the stored attention matrices


def test_weights_bytes_equal_the_built_model_in_each_dtype():
    cfg = ModelConfig.preset("baby-char")
    for dtype, torch_dtype in (("float32", torch.float32), ("bf16", torch.bfloat16)):
        model = llmlab.build_model(cfg, dtype=torch_dtype)
        real = sum(p.numel() * p.element_size() for p in model.parameters())
        assert cfg.estimate(dtype=dtype).weights_bytes == real


def test_gqa_shrinks_the_kv_cache():
    cfg = ModelConfig(n_head=8, d_model=256, n_layer=2)
    assert cfg.replace(n_kv_head=2).estimate().kv_cache_bytes_per_token * 4 == \
        cfg.estimate().kv_cache_bytes_per_token


def test_estimate_prints_a_readable_table():
    text = str(ModelConfig.preset("shakespeare-char").estimate(batch_size=64, seq_len=256))
    assert "parameters" in text and "10.75M" in text and "KV cache per token" in text
    assert "<table>" in ModelConfig.preset("baby-char").estimate()._repr_html_()
    assert ModelConfig.preset("baby-char").estimate().to_dict()["training_bytes"] > 0


def test_bad_estimate_arguments():
    cfg = ModelConfig.preset("baby-char")
    with pytest.raises(ConfigError, match="context_length"):
        cfg.estimate(seq_len=65)
    with pytest.raises(ConfigError, match="at least 1"):
        cfg.estimate(batch_size=0)
    with pytest.raises(ConfigError, match="unknown dtype"):
        cfg.estimate(dtype="int3")
