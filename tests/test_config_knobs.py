"""The real-model knobs of ModelConfig: defaults that change nothing, and bad values refused
with the field and the fix."""

from __future__ import annotations

import pytest
import torch

import llmlab
from llmlab import ModelConfig
from llmlab.errors import ConfigError

BASE = dict(family="gpt", vocab_size=40, context_length=16, n_layer=1, n_head=4, d_model=32,
            pos_encoding="rope")


@pytest.mark.parametrize(("changes", "named"), [
    (dict(pos_encoding="learned", rotary_fraction=0.5), "rotary_fraction.*pos_encoding='rope'"),
    (dict(rotary_fraction=0.0), "rotary_fraction.*in \\(0, 1\\]"),
    (dict(rotary_fraction=1.5), "rotary_fraction"),
    (dict(rotary_fraction=0.1), "rotary_fraction.*at least 2"),
    (dict(rotary_fraction=0.375), "even head size to rotate"),
    (dict(rope_scaling="llama3", rope_factor=8.0), "rope_original_context.*llama3"),
    (dict(rope_scaling="linear", rope_factor=0.5), "rope_factor.*at least 1"),
    (dict(rope_scaling="llama3", rope_original_context=8, rope_low_freq_factor=4.0,
          rope_high_freq_factor=1.0), "rope_low_freq_factor.*below"),
    (dict(rope_scaling="yarn"), "rope_scaling='yarn' is not a known choice"),
    (dict(family="bert", sliding_window=4), "sliding_window.*causal"),
    (dict(sliding_window=0), "sliding_window.*at least 1"),
    (dict(parallel_residual=True, norm_position="post"), "parallel_residual.*pre"),
    (dict(family="seq2seq", parallel_residual=True), "parallel_residual.*family='gpt'"),
    (dict(head_size=0), "head_size.*at least 1"),
    (dict(head_size=3), "even head size"),
    (dict(qkv_bias="yes"), "qkv_bias must be bool"),
    (dict(head_size=10**6), "head_size.*at most"),
    (dict(embed_scale=0.0), "embed_scale.*positive"),
    (dict(lm_head=False, n_labels=2), "lm_head.*n_labels=0"),
    (dict(window_pattern="fw"), "window_pattern.*sliding_window set"),
    (dict(sliding_window=4, window_pattern="global"), "window_pattern.*letters w"),
    (dict(sliding_window=4, window_pattern="w" * 2000), "window_pattern.*one per layer"),
    (dict(attn_scale=0.0), "attn_scale.*positive"),
    (dict(attn_scale=-1.0), "attn_scale.*positive"),
    (dict(attn_scale="1"), "attn_scale must be float"),
    (dict(rope_local_theta=1e4), "rope_local_theta.*sliding_window"),
    (dict(sliding_window=4, rope_local_theta=-1.0), "rope_local_theta.*positive"),
    (dict(sliding_window=4, pos_encoding="learned", rope_local_theta=1e4),
     "rope_local_theta.*pos_encoding='rope'"),
    (dict(sublayer_norm=True, norm_position="post"), "sublayer_norm.*norm_position='pre'"),
    (dict(sublayer_norm=True, family="bert"), "sublayer_norm.*family='gpt'"),
    (dict(sublayer_norm=True, parallel_residual=True), "sublayer_norm.*parallel_residual"),
    (dict(attn_softcap=0.0), "attn_softcap.*positive"),
    (dict(input_norm=False), "input_norm.*sublayer_norm=True"),
    (dict(qk_norm_per_head=False), "qk_norm_per_head.*qk_norm=True"),
    (dict(logit_softcap=-3.0), "logit_softcap.*positive"),
    (dict(logit_softcap=30.0, n_labels=2), "logit_softcap.*language-model head"),
    (dict(logit_softcap=30.0, lm_head=False), "logit_softcap.*language-model head"),
])
def test_bad_knobs_name_the_field_and_the_fix(changes, named):
    with pytest.raises(ConfigError, match=named):
        ModelConfig(**{**BASE, **changes})


def test_head_size_frees_the_width_from_the_head_count():
    cfg = ModelConfig(**{**BASE, "d_model": 30, "n_head": 4, "head_size": 8})
    model = llmlab.build_model(cfg)
    assert model.decoder.blocks[0].attn.qkv.weight.shape == (3 * 32, 30)
    assert model(torch.zeros(1, 5, dtype=torch.long)).logits.shape == (1, 5, 40)


def test_the_defaults_build_the_same_model_as_before():
    plain = ModelConfig(**BASE)
    spelled = plain.replace(qkv_bias=True, mlp_bias=True, head_size=8, rotary_fraction=1.0)
    a, b = llmlab.build_model(plain, seed=0), llmlab.build_model(spelled, seed=0)
    ids = torch.arange(6)[None]
    torch.testing.assert_close(a(ids).logits, b(ids).logits)


def test_a_sliding_window_forgets_what_lies_behind_it():
    cfg = ModelConfig(**{**BASE, "sliding_window": 3})
    model = llmlab.build_model(cfg, seed=0).eval()
    ids = torch.randint(0, 40, (1, 10), generator=torch.Generator().manual_seed(0))
    other = ids.clone()
    other[0, :5] = (ids[0, :5] + 1) % 40  # change tokens far behind the last position
    with torch.no_grad():
        last = model(ids).logits[0, -1]
        # one layer, window 3: the last position reads positions 7, 8, 9 only
        torch.testing.assert_close(model(other).logits[0, -1], last)
        weights = model(ids, return_attention=True).attentions[0][0]
    assert torch.all(weights[:, 9, :7] == 0) and torch.all(weights[:, 9, 7:] > 0)


def test_a_window_pattern_windows_only_its_layers():
    cfg = ModelConfig(**{**BASE, "n_layer": 3, "sliding_window": 3, "window_pattern": "fw"})
    assert [cfg.layer_window(i) for i in range(3)] == [None, 3, None]
    model = llmlab.build_model(cfg, seed=0).eval()
    assert [block.attn.window for block in model.decoder.blocks] == [None, 3, None]
    ids = torch.randint(0, 40, (1, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full, windowed, _ = (w[0] for w in model(ids, return_attention=True).attentions)
    assert torch.all(full[:, 9] > 0)  # a full layer reads every earlier position
    assert torch.all(windowed[:, 9, :7] == 0) and torch.all(windowed[:, 9, 7:] > 0)


def test_a_seq2seq_encoder_stays_bidirectional_under_a_window():
    cfg = ModelConfig(family="seq2seq", vocab_size=40, context_length=16, n_layer=1, n_head=2,
                      d_model=16, sliding_window=2)
    model = llmlab.build_model(cfg, seed=0)
    assert model.encoder.blocks[0].attn.window is None
    assert model.decoder.blocks[0].attn.window == 2
    assert model.decoder.blocks[0].cross_attn.window is None


def test_attn_scale_multiplies_the_scores():
    plain = ModelConfig(**BASE)
    model = llmlab.build_model(plain, seed=0).eval()
    unscaled = llmlab.build_model(plain.replace(attn_scale=1.0), seed=0).eval()
    assert model.decoder.blocks[0].attn.scale == plain.head_dim ** -0.5
    assert unscaled.decoder.blocks[0].attn.scale == 1.0
    unscaled.load_state_dict(model.state_dict())
    ids = torch.arange(6)[None]
    with torch.no_grad():
        # queries divided by sqrt(head size), scores unscaled: the default attention again
        qkv = unscaled.decoder.blocks[0].attn.qkv
        qkv.weight[:32].div_(plain.head_dim ** 0.5)
        qkv.bias[:32].div_(plain.head_dim ** 0.5)
        torch.testing.assert_close(unscaled(ids).logits, model(ids).logits)
        explicit = unscaled(ids, return_attention=True).logits
    torch.testing.assert_close(explicit, model(ids).logits)


def test_windowed_layers_rotate_with_their_own_rope_base():
    cfg = ModelConfig(**{**BASE, "n_layer": 2, "sliding_window": 16, "window_pattern": "wf",
                         "rope_local_theta": 100.0})
    model = llmlab.build_model(cfg, seed=0).eval()
    assert [b.attn.rope_kind for b in model.decoder.blocks] == ["local", "full"]
    rope = model._rope(None, 8)
    plain = cfg.replace(rope_theta=100.0, rope_local_theta=None)
    slow = llmlab.build_model(plain, seed=0)._rope(None, 8)
    torch.testing.assert_close(rope["local"], slow)  # the windowed layer's tables: base 100
    assert not torch.allclose(rope["full"][1], slow[1])
    # the window covers all 8 tokens: only the base tells the two layers apart
    same_base = llmlab.build_model(cfg.replace(rope_local_theta=None), seed=0).eval()
    ids = torch.arange(8)[None]
    with torch.no_grad():
        assert not torch.allclose(model(ids).logits, same_base(ids).logits)


def test_sublayer_norms_normalise_each_sublayer_output():
    cfg = ModelConfig(**{**BASE, "sublayer_norm": True, "norm": "rmsnorm"})
    model = llmlab.build_model(cfg, seed=0).eval()
    block = model.decoder.blocks[0]
    seen = {}
    block.attn_out_norm.register_forward_hook(lambda m, i, o: seen.setdefault("attn", i[0]))
    block.ffn_out_norm.register_forward_hook(lambda m, i, o: seen.setdefault("ffn", i[0]))
    x = torch.randn(1, 5, 32)
    with torch.no_grad():
        attn_out, _ = block.attn(block.attn_norm(x))
        y, _, _ = block(x)
        mid = x + block.attn_out_norm(attn_out)
        expected = mid + block.ffn_out_norm(block.ffn(block.ffn_norm(mid)))
    torch.testing.assert_close(seen["attn"], attn_out)
    torch.testing.assert_close(y, expected)


def test_soft_caps_bound_scores_and_logits():
    cfg = ModelConfig(**{**BASE, "attn_softcap": 0.05, "logit_softcap": 0.2})
    model = llmlab.build_model(cfg, seed=0).eval()
    uncapped = llmlab.build_model(cfg.replace(attn_softcap=None, logit_softcap=None), seed=0)
    ids = torch.randint(0, 40, (1, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(ids, return_attention=True)
        fused = model(ids).logits  # no weights asked: the capped explicit path all the same
        weights = out.attentions[0][0]
        reference = uncapped.eval()(ids, return_attention=True).attentions[0][0]
    assert out.logits.abs().max() < 0.2
    torch.testing.assert_close(fused, out.logits)
    # scores within (-0.05, 0.05): every causal weight within a factor e^0.1 of uniform
    counts = torch.arange(1, 10, dtype=torch.float32)[:, None]
    causal = torch.ones(9, 9).tril().bool()
    ratio = (weights * counts)[:, causal]
    assert ratio.max() < 1.11 and ratio.min() > 0.9
    assert not torch.allclose(weights, reference)


def test_the_schema_shows_the_knobs_with_help_and_bounds():
    props = ModelConfig.json_schema()["properties"]
    for name in ("qkv_bias", "mlp_bias", "head_size", "rotary_fraction", "rope_scaling",
                 "parallel_residual", "qk_norm", "sliding_window", "embed_scale", "lm_head",
                 "window_pattern", "attn_scale", "sublayer_norm", "rope_local_theta",
                 "attn_softcap", "logit_softcap", "input_norm", "qk_norm_per_head"):
        assert props[name]["description"], name
    assert props["rope_scaling"]["enum"] == ["none", "linear", "llama3"]
    assert props["rotary_fraction"]["maximum"] == 1
