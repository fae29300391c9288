"""The decode plan: a GPT's one-token cached step without module dispatch, checked against
the model's own forward for every architecture option, and the cases where it must not run."""

from __future__ import annotations

import pytest
import torch

import llmlab
from llmlab.config import ModelConfig
from llmlab.generation import generate
from llmlab.models import decode
from llmlab.models.cache import KVCache
from llmlab.models.decode import decode_plan

VOCAB = 50


def tiny(**kw) -> ModelConfig:
    base = dict(family="gpt", vocab_size=VOCAB, context_length=32, n_layer=2, n_head=4,
                d_model=32, init_std=0.3, dropout=0.0)
    return ModelConfig(**{**base, **kw})


ARCHITECTURES = [
    {},
    dict(pos_encoding="rope", n_kv_head=2, norm="rmsnorm", activation="swiglu"),
    dict(pos_encoding="sinusoidal", norm_position="post", bias=False),
    dict(pos_encoding="none", activation="gelu_tanh", tie_embeddings=False),
    dict(activation="relu", n_kv_head=1),
    # the real-model knobs: Qwen2, Qwen3, GPT-NeoX, Llama 3 scaling, Mistral's window
    dict(pos_encoding="rope", bias=False, qkv_bias=True, norm="rmsnorm", activation="swiglu"),
    dict(pos_encoding="rope", bias=False, qk_norm=True, head_size=16, n_kv_head=2,
         norm="rmsnorm", activation="swiglu"),
    dict(pos_encoding="rope", parallel_residual=True, rotary_fraction=0.25,
         tie_embeddings=False),
    dict(pos_encoding="rope", rope_scaling="llama3", rope_factor=8.0, rope_original_context=8,
         norm="rmsnorm", activation="swiglu", bias=False),
    dict(pos_encoding="rope", sliding_window=4, n_kv_head=2),
    # GPT-Neo: unscaled scores, full and windowed layers in turn, no q/k/v biases
    dict(attn_scale=1.0, sliding_window=3, window_pattern="fw", qkv_bias=False),
    # Gemma 3: four norms per block, qk-norm, windowed layers with their own RoPE base
    dict(pos_encoding="rope", sublayer_norm=True, qk_norm=True, sliding_window=3,
         window_pattern="wf", rope_local_theta=100.0, norm="rmsnorm", activation="geglu",
         attn_scale=0.3, n_kv_head=2, bias=False),
    # OLMo 2: norms on the sublayers' outputs only, qk-norm across all heads
    dict(pos_encoding="rope", input_norm=False, sublayer_norm=True, qk_norm=True,
         qk_norm_per_head=False, n_kv_head=2, norm="rmsnorm", activation="swiglu", bias=False),
    # Gemma 2: soft-capped scores (explicit attention in the plan too) and logits
    dict(pos_encoding="rope", sublayer_norm=True, sliding_window=3, window_pattern="wf",
         attn_softcap=0.5, logit_softcap=0.7, n_kv_head=2, norm="rmsnorm", bias=False),
    dict(pos_encoding="rope", activation="geglu", embed_scale=5.6, head_size=16, norm="rmsnorm",
         bias=False),
]


def one_step(model, ids, mask, split, *, plan: bool):
    """Prefill ``ids[:, :split]``, then run token ``split`` through the plan or the model."""
    cache = KVCache.for_model(model, ids.shape[0], ids.shape[1])
    pre_mask, step_mask = (None, None) if mask is None else (mask[:, :split], mask[:, :split + 1])
    new = ids[:, split:split + 1]
    with torch.inference_mode():
        model(ids[:, :split], attention_mask=pre_mask, cache=cache)
        if plan:
            assert decode_plan(model) is not None
            logits = decode_plan(model).step(new, step_mask, cache)
        else:
            logits = model(new, attention_mask=step_mask, cache=cache,
                           logits_to_keep=1).logits[:, -1]
    return logits, cache


def assert_same_step(model, ids, mask=None, split=6):
    want, want_cache = one_step(model, ids, mask, split, plan=False)
    got, got_cache = one_step(model, ids, mask, split, plan=True)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert got_cache.length == want_cache.length == split + 1
    for a, b in zip(got_cache.keys + got_cache.values, want_cache.keys + want_cache.values):
        torch.testing.assert_close(a[:, :, :split + 1], b[:, :, :split + 1], rtol=1e-5,
                                   atol=1e-5)


@pytest.mark.parametrize("extra", ARCHITECTURES)
def test_plan_step_equals_the_model_forward(extra):
    model = llmlab.build_model(tiny(**extra), seed=3).eval()
    ids = torch.randint(0, VOCAB, (3, 7), generator=torch.Generator().manual_seed(0))
    assert_same_step(model, ids)


@pytest.mark.parametrize("extra", ARCHITECTURES[:3] + ARCHITECTURES[5:])
def test_plan_step_with_left_padding_equals_the_model_forward(extra):
    model = llmlab.build_model(tiny(**extra), seed=3).eval()
    ids = torch.randint(0, VOCAB, (2, 8), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, :3] = False  # row 1 is a shorter prompt, left-padded
    assert_same_step(model, ids, mask)


@pytest.fixture
def threads():
    """Set torch's thread count for one test, then restore it."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.fixture
def blocks_win(monkeypatch):
    """Thread blocks chosen for every projection, whatever this machine's timings say."""
    monkeypatch.setattr(decode, "_blocks_win", lambda *args: True)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_thread_blocks_give_the_model_forward(threads, blocks_win, n):
    # 3 threads: the 50-token head splits into 3 blocks of 16 rows and a tail of 2
    threads(n)
    model = llmlab.build_model(tiny(bias=True), seed=3).eval()
    plan = decode_plan(model)
    assert plan.threads == n
    assert isinstance(plan.head, decode._ThreadBlocks) == (n > 1)
    assert n != 3 or plan.head.tail.shape == (2, 32)
    for batch in (1, 3):
        ids = torch.randint(0, VOCAB, (batch, 7), generator=torch.Generator().manual_seed(2))
        assert_same_step(model, ids)


def test_blocks_are_views_of_the_parameters(threads, blocks_win):
    threads(2)
    model = llmlab.build_model(tiny(), seed=3).eval()
    qkv = decode_plan(model).layers[0].qkv
    assert qkv.blocks.data_ptr() == model.decoder.blocks[0].attn.qkv.weight.data_ptr()


def test_the_faster_of_blocks_and_linear_is_chosen_once_per_shape(threads, monkeypatch):
    threads(2)
    timed = []

    def best_time(fn, x):
        timed.append(type(fn).__name__)
        return 1.0 if isinstance(fn, decode._ThreadBlocks) == blocks_faster else 2.0

    monkeypatch.setattr(decode, "_best_time", best_time)
    for blocks_faster in (True, False):
        monkeypatch.setattr(decode, "_BLOCKS_WIN", {})
        timed.clear()
        model = llmlab.build_model(tiny(), seed=3).eval()
        plan = decode_plan(model)
        assert isinstance(plan.layers[0].qkv, decode._ThreadBlocks) == blocks_faster
        assert isinstance(plan.head, decode._ThreadBlocks) == blocks_faster
        shapes = {tuple(m.weight.shape) for m in model.modules() if isinstance(m, torch.nn.Linear)}
        assert len(timed) == 2 * len(shapes)  # each shape timed once, both ways
        decode_plan(model)
        assert len(timed) == 2 * len(shapes)
        assert_same_step(model, torch.randint(0, VOCAB, (2, 7)))


def test_plan_sees_in_place_weight_changes():
    model = llmlab.build_model(tiny(), seed=3).eval()
    plan = decode_plan(model)  # built before the weights change
    with torch.no_grad():
        model.decoder.blocks[0].attn.qkv.weight.add_(0.5)
    model.load_state_dict(llmlab.build_model(tiny(), seed=4).state_dict())
    ids = torch.randint(0, VOCAB, (1, 7), generator=torch.Generator().manual_seed(3))
    want, cache = one_step(model, ids, None, 6, plan=False)
    cache.length = 6  # step token 6 again, now through the old plan
    with torch.inference_mode():
        got = plan.step(ids[:, 6:], None, cache)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_no_plan_where_the_module_calls_must_happen():
    model = llmlab.build_model(tiny(), seed=3).eval()
    handle = model.decoder.blocks[1].attn.register_forward_hook(lambda *a: None)
    assert decode_plan(model) is None  # hooks (attention capture, head gates) must run
    handle.remove()
    assert decode_plan(model) is not None
    assert decode_plan(model.train()) is None
    model.eval()
    model.__class__ = type("TracedGPT", (type(model),), {"forward": lambda self, *a, **k: None})
    assert decode_plan(model) is None  # a GPT subclass with its own forward keeps it
    model.__class__ = model.__class__.__base__
    attn = model.decoder.blocks[0].attn
    attn.__class__ = type("MyAttention", (type(attn),), {"_project": lambda self, *a: None})
    assert decode_plan(model) is None  # so does a block part overriding what the plan replicates
    attn.__class__ = attn.__class__.__base__
    assert decode_plan(model) is not None
    s2s = llmlab.build_model(tiny(family="seq2seq"), seed=0).eval()
    assert decode_plan(s2s) is None
    classifier = llmlab.build_model(tiny(n_labels=2), seed=0).eval()
    assert decode_plan(classifier) is None


def test_generate_gives_the_same_tokens_with_and_without_the_plan():
    model = llmlab.build_model(tiny(pos_encoding="rope"), seed=5).eval()
    prompts = [[1, 2, 3, 4, 5], [7, 8]]
    fast = generate(model, None, prompts, max_new_tokens=20, temperature=0, stop_token_ids=[])
    handle = model.register_forward_hook(lambda *a: None)  # forces the module path
    try:
        slow = generate(model, None, prompts, max_new_tokens=20, temperature=0,
                        stop_token_ids=[])
    finally:
        handle.remove()
    assert [g.token_ids for g in fast] == [g.token_ids for g in slow]


@pytest.mark.parametrize("mode", ["int8", "int4-weight"])
def test_plan_of_a_quantized_model_calls_its_layers(mode):
    model = llmlab.build_model(tiny(), seed=3).eval()
    quantized = llmlab.compress.quantize(model, mode)
    plan = decode_plan(quantized)
    assert plan.layers[0].qkv == quantized.decoder.blocks[0].attn.qkv.forward
    ids = torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(5))
    assert_same_step(quantized, ids)


def test_plan_of_a_head_pruned_model_equals_its_forward():
    model = llmlab.build_model(tiny(), seed=3).eval()
    pruned = llmlab.compress.prune(model, 0.5, structured="heads", importance="magnitude")
    assert [b.attn.n_head for b in pruned.decoder.blocks] != [4, 4]
    ids = torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(4))
    assert_same_step(pruned, ids)
