import math

import pytest
import torch

import llmlab
from llmlab import ModelConfig
from llmlab.errors import ConfigError, InputError
from llmlab.models import GPT, Bert, Seq2Seq

V = 50


def tiny(family="gpt", **kw):
    base = dict(family=family, vocab_size=V, context_length=32, n_layer=2, n_head=4, d_model=32)
    return ModelConfig(**{**base, **kw})


def forward(model, ids, **kw):
    if model.config.family == "seq2seq":
        return model(ids, ids, **kw)
    return model(ids, **kw)


VARIANTS = [
    ("gpt", {}),
    ("gpt", dict(pos_encoding="rope", n_kv_head=2, norm="rmsnorm", activation="swiglu")),
    ("gpt", dict(pos_encoding="sinusoidal", norm_position="post", bias=False)),
    ("gpt", dict(pos_encoding="none", n_kv_head=1, activation="relu")),
    ("bert", dict(norm_position="post", type_vocab_size=2)),
    ("bert", dict(pos_encoding="rope", n_kv_head=2)),
    ("seq2seq", dict(pos_encoding="sinusoidal")),
    ("seq2seq", dict(pos_encoding="rope", n_kv_head=2, norm_position="post")),
]


def test_build_model_picks_the_family_class():
    assert type(llmlab.build_model(tiny("gpt"))) is GPT
    assert type(llmlab.build_model(tiny("bert"))) is Bert
    assert type(llmlab.build_model(tiny("seq2seq"))) is Seq2Seq
    with pytest.raises(ConfigError, match="needs a ModelConfig"):
        llmlab.build_model({"family": "gpt"})


@pytest.mark.parametrize("family, extra", VARIANTS)
def test_explicit_attention_matches_fused_path(family, extra):
    model = llmlab.build_model(tiny(family, **extra), seed=0).eval()
    ids = torch.randint(0, V, (3, 12))
    mask = torch.ones(3, 12, dtype=torch.bool)
    mask[1, :4] = False  # left padding
    mask[2, 9:] = False  # right padding
    for attention_mask in (None, mask):
        fused = forward(model, ids, attention_mask=attention_mask)
        explicit = forward(model, ids, attention_mask=attention_mask, return_attention=True)
        assert torch.allclose(fused.logits, explicit.logits, atol=1e-5)
        assert not fused.logits.isnan().any()
        layers = model.config.decoder_layers or model.config.n_layer
        assert len(explicit.attentions) == layers
        weights = explicit.attentions[0]
        assert weights.shape == (3, 4, 12, 12)
        assert torch.allclose(weights.sum(-1), torch.ones(3, 4, 12), atol=1e-5)
        if family == "seq2seq":
            assert len(explicit.cross_attentions) == layers
            assert len(explicit.encoder_attentions) == model.config.n_layer


def test_causal_models_do_not_see_the_future_and_bert_does():
    ids = torch.randint(0, V, (1, 10))
    changed = ids.clone()
    changed[0, 7] = (ids[0, 7] + 1) % V
    gpt = llmlab.build_model(tiny("gpt"), seed=0).eval()
    assert torch.allclose(gpt(ids).logits[:, :7], gpt(changed).logits[:, :7], atol=1e-6)
    assert not torch.allclose(gpt(ids).logits[:, 7:], gpt(changed).logits[:, 7:])
    att = gpt(ids, return_attention=True).attentions[0]
    assert torch.all(att.triu(1) == 0)
    bert = llmlab.build_model(tiny("bert"), seed=0).eval()
    assert not torch.allclose(bert(ids).logits[:, :7], bert(changed).logits[:, :7])


@pytest.mark.parametrize("pos", ["learned", "rope", "sinusoidal"])
def test_padding_does_not_change_real_tokens(pos):
    model = llmlab.build_model(tiny("bert", pos_encoding=pos), seed=0).eval()
    ids = torch.randint(0, V, (1, 6))
    padded = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    mask = torch.tensor([[1] * 6 + [0] * 4])
    assert torch.allclose(model(ids).logits, model(padded, attention_mask=mask).logits[:, :6],
                          atol=1e-5)


def test_gpt_classifier_reads_the_last_real_token():
    model = llmlab.build_model(tiny("gpt", n_labels=3), seed=0).eval()
    ids = torch.randint(0, V, (1, 5))
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    mask = torch.tensor([[1] * 5 + [0] * 3])
    out = model(padded, attention_mask=mask, targets=torch.tensor([2]))
    assert out.logits.shape == (1, 3)
    assert torch.allclose(out.logits, model(ids).logits, atol=1e-5)
    assert out.loss.item() > 0


def test_bert_classifier_and_mlm_heads():
    clf = llmlab.build_model(tiny("bert", n_labels=4), seed=0)
    out = clf(torch.randint(0, V, (2, 8)), targets=torch.tensor([0, 3]))
    assert out.logits.shape == (2, 4) and out.loss.requires_grad
    mlm = llmlab.build_model(tiny("bert"), seed=0)
    assert mlm.mlm_head.decoder.weight is mlm.embed.tok.weight
    targets = torch.full((2, 8), -100)
    targets[:, 3] = 7
    assert mlm(torch.randint(0, V, (2, 8)), targets=targets).loss.item() > 0


@pytest.mark.parametrize("family", ["gpt", "bert", "seq2seq"])
def test_loss_at_init_is_near_uniform_and_backward_reaches_every_parameter(family):
    model = llmlab.build_model(tiny(family), seed=0)
    ids, targets = torch.randint(0, V, (2, 4, 16))
    loss = forward(model, ids, targets=targets).loss
    assert abs(loss.item() - math.log(V)) < 0.3
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_embeddings_are_tied_and_init_follows_gpt2():
    model = llmlab.build_model(ModelConfig.preset("shakespeare-char"), seed=0)
    assert model.lm_head.weight is model.embed.tok.weight
    block = model.decoder.blocks[0]
    assert abs(block.attn.qkv.weight.std().item() - 0.02) < 2e-3
    assert abs(block.attn.proj.weight.std().item() - 0.02 / math.sqrt(12)) < 1e-3
    untied = llmlab.build_model(tiny("gpt", tie_embeddings=False))
    assert untied.lm_head.weight is not untied.embed.tok.weight


def test_seed_makes_init_reproducible():
    a = llmlab.build_model(tiny(), seed=3).state_dict()
    b = llmlab.build_model(tiny(), seed=3).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("family", ["gpt", "bert", "seq2seq"])
def test_bfloat16_forward_and_backward(family):
    model = llmlab.build_model(tiny(family), dtype=torch.bfloat16, seed=0)
    ids = torch.randint(0, V, (2, 8))
    out = forward(model, ids, targets=ids)
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.loss)
    out.loss.backward()
    out_explicit = forward(model.eval(), ids, return_attention=True)
    assert out_explicit.attentions[0].dtype == torch.bfloat16


def test_hidden_states_cover_embeddings_and_every_block():
    model = llmlab.build_model(tiny(), seed=0).eval()
    out = model(torch.randint(0, V, (1, 5)), return_hidden=True)
    assert len(out.hidden_states) == 3 and out.hidden_states[0].shape == (1, 5, 32)
    assert torch.allclose(model.lm_head(out.hidden_states[-1]), out.logits, atol=1e-6)


def test_bad_inputs_say_what_to_do():
    model = llmlab.build_model(tiny())
    with pytest.raises(InputError, match=r"token id 50, outside the vocabulary \[0, 50\)"):
        model(torch.tensor([[1, 2, 50]]))
    with pytest.raises(InputError, match="token id -1"):
        model(torch.tensor([[-1, 2]]))
    with pytest.raises(InputError, match="context_length is 32; truncate"):
        model(torch.zeros(1, 33, dtype=torch.long))
    with pytest.raises(InputError, match="integer tensor"):
        model(torch.zeros(1, 4))
    with pytest.raises(InputError, match=r"unsqueeze\(0\)"):
        model(torch.zeros(4, dtype=torch.long))
    with pytest.raises(InputError, match="empty"):
        model(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(InputError, match="attention_mask has shape"):
        model(torch.zeros(2, 4, dtype=torch.long), attention_mask=torch.ones(2, 5))
    s2s = llmlab.build_model(tiny("seq2seq"))
    with pytest.raises(InputError, match="decoder_input_ids contains token id 99"):
        s2s(torch.zeros(1, 4, dtype=torch.long), torch.tensor([[99]]))


CACHE_VARIANTS = [
    {}, dict(pos_encoding="rope", n_kv_head=2), dict(pos_encoding="sinusoidal"),
    dict(pos_encoding="none", norm_position="post"),
]


@pytest.mark.parametrize("extra", CACHE_VARIANTS)
def test_kv_cache_gives_the_same_logits_as_a_full_forward(extra):
    from llmlab.models import KVCache

    model = llmlab.build_model(tiny("gpt", **extra), seed=0).eval()
    ids = torch.randint(0, V, (2, 12))
    full = model(ids).logits
    cache = KVCache.for_model(model, batch_size=2)
    pieces = [model(ids[:, :5], cache=cache).logits]  # prefill several tokens at once
    pieces += [model(ids[:, t:t + 1], cache=cache).logits for t in range(5, 10)]
    pieces.append(model(ids[:, 10:], cache=cache).logits)  # two new tokens after a cache
    assert cache.length == 12
    assert torch.allclose(torch.cat(pieces, dim=1), full, atol=1e-5)


@pytest.mark.parametrize("extra", CACHE_VARIANTS)
def test_left_padding_with_cache_matches_each_row_alone(extra):
    from llmlab.models import KVCache

    model = llmlab.build_model(tiny("gpt", **extra), seed=0).eval()
    short, long = torch.randint(0, V, (1, 4)), torch.randint(0, V, (1, 7))
    batch = torch.cat([torch.cat([torch.zeros(1, 3, dtype=torch.long), short], 1), long])
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[0, :3] = False
    cache = KVCache.for_model(model, batch_size=2)
    first = model(batch, attention_mask=mask, cache=cache).logits[:, -1]
    nxt = torch.randint(0, V, (2, 1))
    mask = torch.cat([mask, torch.ones(2, 1, dtype=torch.bool)], 1)
    second = model(nxt, attention_mask=mask, cache=cache).logits[:, -1]
    for row, ids in enumerate((short, long)):
        alone = model(torch.cat([ids, nxt[row:row + 1]], 1)).logits
        assert torch.allclose(first[row], alone[0, -2], atol=1e-5)
        assert torch.allclose(second[row], alone[0, -1], atol=1e-5)


def test_seq2seq_decoder_cache_matches_full_decode():
    from llmlab.models import KVCache

    model = llmlab.build_model(tiny("seq2seq", pos_encoding="rope"), seed=0).eval()
    src, tgt = torch.randint(0, V, (2, 9)), torch.randint(0, V, (2, 6))
    src_mask = torch.ones(2, 9, dtype=torch.bool)
    src_mask[1, 6:] = False
    full = model(src, tgt, attention_mask=src_mask).logits
    memory, _ = model.encode(src, src_mask)
    cache = KVCache.for_model(model, batch_size=2)
    steps = [model.decode(tgt[:, t:t + 1], memory, src_mask, cache=cache)[0] for t in range(6)]
    assert all(kv is not None for kv in cache.cross)  # encoder keys/values computed once
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-5)


@pytest.mark.parametrize("rows", [[1, 0], [1, 1, 0, 0, 1]], ids=["permute", "expand"])
def test_reordered_cache_continues_like_the_reordered_batch(rows):
    """Beam search keeps, repeats and swaps rows of the cache; the next step must then see
    exactly the keys/values of the rows it was given."""
    from llmlab.models import KVCache

    model = llmlab.build_model(tiny("gpt", pos_encoding="rope"), seed=0).eval()
    ids = torch.randint(0, V, (2, 6))
    cache = KVCache.for_model(model, batch_size=2)
    model(ids[:, :5], cache=cache)
    index = torch.tensor(rows)
    cache.reorder(index)
    step = model(ids[index, 5:], cache=cache).logits[:, -1]
    assert torch.allclose(step, model(ids[index]).logits[:, -1], atol=1e-5)
    assert cache.keys[0].shape[0] == len(rows) and cache.length == 6


def test_cache_overflow_and_mask_shape_errors():
    from llmlab.models import KVCache

    model = llmlab.build_model(tiny("gpt"), seed=0).eval()
    cache = KVCache.for_model(model, batch_size=1)
    model(torch.zeros(1, 30, dtype=torch.long), cache=cache)
    with pytest.raises(InputError, match="30 cached \\+ 3 new tokens exceed"):
        model(torch.zeros(1, 3, dtype=torch.long), cache=cache)
    with pytest.raises(InputError, match=r"should be \(1, 31\) \(with 30 cached tokens\)"):
        model(torch.zeros(1, 1, dtype=torch.long), attention_mask=torch.ones(1, 1), cache=cache)


def test_logits_to_keep_computes_only_the_last_positions():
    model = llmlab.build_model(tiny("gpt"), seed=0).eval()
    ids = torch.randint(0, V, (2, 9))
    full = model(ids).logits
    assert torch.allclose(model(ids, logits_to_keep=1).logits, full[:, -1:], atol=1e-6)
    s2s = llmlab.build_model(tiny("seq2seq"), seed=0).eval()
    memory, _ = s2s.encode(ids)
    last, _ = s2s.decode(ids[:, :4], memory, logits_to_keep=2)
    assert torch.allclose(last, s2s(ids, ids[:, :4]).logits[:, -2:], atol=1e-6)
