"""llmlab.interop against transformers itself: tiny random GPT-2 and BERT models saved to disk
(no downloads), loaded into llmlab, and compared logit by logit and attention by attention."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file

from llmlab import ModelConfig, build_model
from llmlab.errors import CheckpointError
from llmlab.interop import export, export_gpt2, is_hf_checkpoint, load_hf

transformers = pytest.importorskip("transformers")

TOL = 1e-4
VOCAB, CTX, WIDTH, LAYERS, HEADS = 100, 32, 32, 2, 4
B, T, PAD = 2, 12, 4  # batch, length, padded positions at the end of row 1


# --------------------------------------------------------------------------- helpers
def randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Large random weights everywhere (LayerNorms included), so a wrong mapping shows."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            is_norm_gain = p.dim() == 1 and ("ln" in name.lower() or "norm" in name.lower())
            p.copy_(1 + 0.2 * noise if is_norm_gain and name.endswith("weight") else 0.3 * noise)
    return model.eval()


def gpt2_config(**kw):
    config = transformers.GPT2Config(
        vocab_size=VOCAB, n_positions=CTX, n_embd=WIDTH, n_layer=LAYERS, n_head=HEADS,
        bos_token_id=None, eos_token_id=None, **kw,
    )
    config._attn_implementation = "eager"  # explicit softmax: attentions are returned
    return config


def bert_config(**kw):
    config = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=WIDTH, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        intermediate_size=48, max_position_embeddings=CTX, **kw,
    )
    config._attn_implementation = "eager"
    return config


def batch(seed: int = 1, low: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids [B, T] and a right-padding mask (row 1 ends in PAD pad positions)."""
    ids = torch.randint(low, VOCAB, (B, T), generator=torch.Generator().manual_seed(seed))
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, T - PAD:] = 0
    return ids, mask


def max_diff(ours: torch.Tensor, theirs: torch.Tensor, where: torch.Tensor | None = None) -> float:
    """Largest absolute difference, over the positions ``where`` (a [B, T] mask) only."""
    diff = (ours - theirs).abs()
    if where is not None:
        diff = diff[where.bool()]
    return diff.max().item()


def attention_diff(ours, theirs, mask) -> float:
    """Largest difference over layers, comparing the rows of real (unpadded) query tokens."""
    assert len(ours) == len(theirs) == LAYERS
    # [B, H, T, S] -> [B, T, H, S], so the [B, T] mask picks query rows
    return max(max_diff(a.transpose(1, 2), b.transpose(1, 2), mask) for a, b in zip(ours, theirs, strict=False))


def save_bin(state: dict, directory, config) -> None:
    """A ``pytorch_model.bin`` folder, as older transformers versions wrote it."""
    directory.mkdir()
    config.to_json_file(directory / "config.json")
    torch.save({k: v.clone() for k, v in state.items()}, directory / "pytorch_model.bin")


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    torch.manual_seed(0)
    model = randomise(transformers.GPT2LMHeadModel(gpt2_config()))
    directory = tmp_path_factory.mktemp("gpt2")
    model.save_pretrained(directory)
    return model, directory


@pytest.fixture(scope="module")
def gpt2_bin(gpt2, tmp_path_factory):
    """The same weights as the OpenAI release stores them: no "transformer." prefix, the
    lm_head copy and the causal-mask buffers included."""
    model, _ = gpt2
    state = {k.removeprefix("transformer."): v for k, v in model.state_dict().items()}
    for i in range(LAYERS):
        state[f"h.{i}.attn.bias"] = torch.ones(1, 1, CTX, CTX).tril()
        state[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    directory = tmp_path_factory.mktemp("gpt2bin") / "model"
    save_bin(state, directory, model.config)
    return model, directory


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    torch.manual_seed(0)
    model = randomise(transformers.BertForMaskedLM(bert_config()))
    directory = tmp_path_factory.mktemp("bert")
    model.save_pretrained(directory)
    return model, directory


# --------------------------------------------------------------------------- GPT-2
def test_is_hf_checkpoint(gpt2, tmp_path):
    assert is_hf_checkpoint(gpt2[1])
    assert not is_hf_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"family": "gpt"}))  # llmlab's, not HF's
    assert not is_hf_checkpoint(tmp_path)
    assert not is_hf_checkpoint(tmp_path / "config.json")


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_gpt2_matches_transformers(fmt, gpt2, gpt2_bin):
    hf, directory = gpt2 if fmt == "safetensors" else gpt2_bin
    model, tokenizer = load_hf(directory)
    assert tokenizer is None and not model.training
    assert model.config.activation == "gelu_tanh" and model.config.tie_embeddings
    ids, mask = batch()
    with torch.no_grad():
        assert max_diff(model(ids).logits, hf(ids).logits) < TOL
        ours = model(ids, attention_mask=mask, return_attention=True)
        theirs = hf(ids, attention_mask=mask, output_attentions=True)
    assert max_diff(ours.logits, theirs.logits, mask) < TOL
    assert attention_diff(ours.attentions, theirs.attentions, mask) < TOL


def test_gpt2_sharded_checkpoint(gpt2, tmp_path):
    hf, directory = gpt2
    tensors = load_file(directory / "model.safetensors")
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2],
              "model-00002-of-00002.safetensors": names[1::2]}
    for shard, shard_names in shards.items():
        save_file({n: tensors[n] for n in shard_names}, tmp_path / shard)
    weight_map = {n: shard for shard, shard_names in shards.items() for n in shard_names}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (tmp_path / "config.json").write_text((directory / "config.json").read_text())
    model, _ = load_hf(tmp_path)
    ids, _ = batch()
    with torch.no_grad():
        assert max_diff(model(ids).logits, hf(ids).logits) < TOL


def test_gpt2_sequence_classifier(tmp_path):
    hf = randomise(transformers.GPT2ForSequenceClassification(gpt2_config(num_labels=3,
                                                                          pad_token_id=0)))
    hf.save_pretrained(tmp_path)
    model, _ = load_hf(tmp_path)
    assert model.config.n_labels == 3
    ids, mask = batch(low=1)  # id 0 is the pad: transformers finds the last token by it
    ids = ids.masked_fill(~mask.bool(), 0)
    with torch.no_grad():
        ours = model(ids, attention_mask=mask).logits
        theirs = hf(ids, attention_mask=mask).logits
    assert ours.shape == (B, 3) and max_diff(ours, theirs) < TOL


# --------------------------------------------------------------------------- BERT
def test_bert_masked_lm_matches_transformers(bert):
    hf, directory = bert
    model, _ = load_hf(directory)
    assert model.config.norm_position == "post" and model.config.type_vocab_size == 2
    ids, mask = batch()
    types = torch.zeros_like(ids)
    types[:, T // 2:] = 1
    with torch.no_grad():
        assert max_diff(model(ids).logits, hf(ids).logits) < TOL
        ours = model(ids, attention_mask=mask, token_type_ids=types, return_attention=True)
        theirs = hf(ids, attention_mask=mask, token_type_ids=types, output_attentions=True)
    assert max_diff(ours.logits, theirs.logits, mask) < TOL
    assert attention_diff(ours.attentions, theirs.attentions, mask) < TOL


def test_bert_sequence_classifier_matches_transformers(tmp_path):
    torch.manual_seed(0)
    hf = randomise(transformers.BertForSequenceClassification(bert_config(num_labels=3)))
    hf.save_pretrained(tmp_path)
    model, _ = load_hf(tmp_path)
    assert model.config.n_labels == 3
    ids, mask = batch()
    with torch.no_grad():
        ours = model(ids, attention_mask=mask).logits
        theirs = hf(ids, attention_mask=mask).logits
    assert ours.shape == (B, 3) and max_diff(ours, theirs) < TOL


def test_bert_old_names_and_bin(bert, tmp_path):
    """A bare-encoder prefix-free .bin with gamma/beta LayerNorms and the NSP head loads too."""
    hf, _ = bert
    state = {}
    for name, tensor in hf.state_dict().items():
        name = name.removeprefix("bert.").replace("LayerNorm.weight", "LayerNorm.gamma")
        state[name.replace("LayerNorm.bias", "LayerNorm.beta")] = tensor
    state["cls.seq_relationship.weight"] = torch.zeros(2, WIDTH)
    save_bin(state, tmp_path / "model", hf.config)
    model, _ = load_hf(tmp_path / "model")
    ids, _ = batch()
    with torch.no_grad():
        assert max_diff(model(ids).logits, hf(ids).logits) < TOL


# --------------------------------------------------------------------------- new heads
def test_n_labels_on_gpt2_lm_builds_a_classifier_and_warns(gpt2):
    hf, directory = gpt2
    with pytest.warns(UserWarning, match=r"classifier\.weight, classifier\.bias .*newly"):
        model, _ = load_hf(directory, n_labels=4)
    assert model.config.n_labels == 4
    assert torch.equal(model.embed.tok.weight, hf.transformer.wte.weight)
    assert model(batch()[0]).logits.shape == (B, 4)


def test_n_labels_on_bert_lm_keeps_its_pooler(bert, tmp_path):
    _, directory = bert
    tensors = load_file(directory / "model.safetensors")
    pooler = {"bert.pooler.dense.weight": torch.randn(WIDTH, WIDTH),
              "bert.pooler.dense.bias": torch.randn(WIDTH)}
    save_file({**tensors, **pooler}, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((directory / "config.json").read_text())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, _ = load_hf(tmp_path, n_labels=2)
    (message,) = [str(w.message) for w in caught]
    assert "classifier.out.weight, classifier.out.bias" in message and "pool" not in message
    assert torch.equal(model.classifier.pool.weight, pooler["bert.pooler.dense.weight"])
    assert model(batch()[0]).logits.shape == (B, 2)


def test_n_labels_cannot_change_a_classifier(tmp_path):
    transformers.BertForSequenceClassification(bert_config(num_labels=3)).save_pretrained(
        tmp_path)
    with pytest.raises(CheckpointError, match="classifier with 3 classes.*n_labels=None"):
        load_hf(tmp_path, n_labels=5)


# --------------------------------------------------------------------------- export
EXPORTABLE = {"family": "gpt", "vocab_size": VOCAB, "context_length": CTX, "n_layer": LAYERS,
              "n_head": HEADS, "d_model": WIDTH}


@pytest.mark.parametrize("changes", [
    {"activation": "gelu_tanh"},
    {"activation": "gelu", "tie_embeddings": False, "d_ff": 48},
    {"activation": "relu", "norm_eps": 1e-6},
    {"attn_scale": 1.0},  # written as scale_attn_weights=False
])
def test_export_gpt2_loads_in_transformers(changes, tmp_path):
    model = randomise(build_model(ModelConfig(**EXPORTABLE, **changes)), seed=3)
    export_gpt2(model, tmp_path / "export")
    stored = load_file(tmp_path / "export" / "model.safetensors")
    assert ("lm_head.weight" in stored) == (not model.config.tie_embeddings)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "export").eval()
    again, _ = load_hf(tmp_path / "export")
    ids, mask = batch()
    with torch.no_grad():
        ours = model(ids, attention_mask=mask).logits
        assert max_diff(ours, hf(ids, attention_mask=mask).logits, mask) < TOL
        assert torch.equal(again(ids, attention_mask=mask).logits, ours)


def test_export_with_tokenizer(tmp_path):
    from llmlab.tokenizers import BPETokenizer

    tok = BPETokenizer.train("the cat sat on the mat. " * 20, vocab_size=270)
    cfg = ModelConfig(**{**EXPORTABLE, "vocab_size": tok.vocab_size})
    export_gpt2(build_model(cfg, seed=0), tmp_path, tokenizer=tok)
    _, loaded = load_hf(tmp_path)
    text = "the mat sat on the cat"
    assert loaded.encode(text) == tok.encode(text)
    assert transformers.AutoTokenizer.from_pretrained(tmp_path).encode(text) == tok.encode(text)
    assert json.loads((tmp_path / "config.json").read_text())["eos_token_id"] == tok.eos_id


# --------------------------------------------------------------------------- bad input
def test_unsupported_model_type(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "falcon"}))
    with pytest.raises(CheckpointError, match="model_type='falcon'; llmlab can load") as err:
        load_hf(tmp_path)
    from llmlab.interop.load import FAMILIES

    assert all(repr(model_type) in str(err.value) for model_type in FAMILIES)


def test_unsupported_gpt2_variant(tmp_path):
    gpt2_config(scale_attn_by_inverse_layer_idx=True).to_json_file(tmp_path / "config.json")
    with pytest.raises(CheckpointError, match="scale_attn_by_inverse_layer_idx=True"):
        load_hf(tmp_path)


def test_not_a_checkpoint_folder(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        load_hf(tmp_path)
    with pytest.raises(CheckpointError, match="not a folder"):
        load_hf(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="damaged"):
        load_hf(tmp_path)


def test_missing_weights_file(gpt2, tmp_path):
    (tmp_path / "config.json").write_text((gpt2[1] / "config.json").read_text())
    with pytest.raises(CheckpointError, match="no weights.*model.safetensors.*pytorch_model.bin"):
        load_hf(tmp_path)


@pytest.mark.parametrize("name", ["model.safetensors", "pytorch_model.bin"])
def test_corrupt_weights_file(name, gpt2, tmp_path):
    (tmp_path / "config.json").write_text((gpt2[1] / "config.json").read_text())
    (tmp_path / name).write_bytes(b"\x93garbage, not weights" * 10)
    with pytest.raises(CheckpointError, match=f"{name}.*damaged"):
        load_hf(tmp_path)


def test_pickle_with_objects_is_refused(gpt2, tmp_path):
    import pickle

    (tmp_path / "config.json").write_text((gpt2[1] / "config.json").read_text())
    with open(tmp_path / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"w": Exception("not a tensor")}, fh, protocol=2)
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_hf(tmp_path)


def rewritten(gpt2, tmp_path, edit) -> None:
    """A copy of the GPT-2 folder whose tensors went through ``edit``."""
    tensors = load_file(gpt2[1] / "model.safetensors")
    edit(tensors)
    save_file(tensors, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((gpt2[1] / "config.json").read_text())


def test_missing_tensor_is_named(gpt2, tmp_path):
    rewritten(gpt2, tmp_path, lambda t: t.pop("transformer.h.1.mlp.c_fc.weight"))
    with pytest.raises(CheckpointError) as err:
        load_hf(tmp_path)
    assert "missing (1)" in str(err.value)
    assert "transformer.h.1.mlp.c_fc.weight (shape (32, 128))" in str(err.value)


def test_wrong_shape_and_unexpected_tensors_are_named(gpt2, tmp_path):
    def edit(tensors):
        tensors["transformer.h.0.attn.c_attn.weight"] = torch.zeros(WIDTH, 48)
        tensors["transformer.h.9.mlp.c_fc.weight"] = torch.zeros(3)

    rewritten(gpt2, tmp_path, edit)
    with pytest.raises(CheckpointError) as err:
        load_hf(tmp_path)
    message = str(err.value)
    assert ("transformer.h.0.attn.c_attn.weight: expected shape (32, 96), found (32, 48)"
            in message)
    assert "unexpected (1):\n    transformer.h.9.mlp.c_fc.weight (shape (3,))" in message


def test_export_rejects_what_gpt2_cannot_express(tmp_path):
    model = build_model(ModelConfig(**EXPORTABLE, pos_encoding="rope", norm="rmsnorm"))
    with pytest.raises(CheckpointError) as err:
        export_gpt2(model, tmp_path)
    message = str(err.value)
    assert "pos_encoding='rope' (GPT-2 needs 'learned')" in message
    assert "norm='rmsnorm' (GPT-2 needs 'layernorm')" in message
    assert not any(tmp_path.iterdir())
    bert_model = build_model(ModelConfig.preset("bert-mini", vocab_size=VOCAB, context_length=CTX,
                                                n_layer=1))
    with pytest.raises(CheckpointError, match="family='bert'.*norm_position='post'"):
        export_gpt2(bert_model, tmp_path)


@pytest.mark.parametrize("changes", [
    {"parallel_residual": True}, {"qkv_bias": False}, {"mlp_bias": False},
    {"sliding_window": 3}, {"qk_norm": True}, {"head_size": 4}, {"attn_scale": 0.5},
    {"sublayer_norm": True}, {"attn_softcap": 50.0}, {"logit_softcap": 30.0},
    {"sublayer_norm": True, "input_norm": False},
])
def test_export_refuses_each_knob_gpt2_and_llama_lack(changes, tmp_path):
    # before, parallel_residual, sliding_window and qk_norm models were written as plain GPT-2
    model = build_model(ModelConfig(**EXPORTABLE, **changes))
    field = next(iter(changes))
    with pytest.raises(CheckpointError, match=f"cannot be written as GPT-2 or Llama.*{field}="):
        export(model, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_gpt2_without_score_scaling_matches_transformers(tmp_path):
    torch.manual_seed(0)
    theirs = randomise(transformers.GPT2LMHeadModel(gpt2_config(scale_attn_weights=False)))
    theirs.save_pretrained(tmp_path)
    ours, _ = load_hf(tmp_path)
    assert ours.config.attn_scale == 1.0
    ids, mask = batch()
    with torch.no_grad():
        got = ours(ids, attention_mask=mask).logits
        assert max_diff(got, theirs(ids, attention_mask=mask).logits, mask) < TOL


def test_dtype_and_device_keep_the_tie(gpt2):
    hf, directory = gpt2
    model, _ = load_hf(directory, device="cpu", dtype=torch.float64)
    assert model.lm_head.weight is model.embed.tok.weight
    assert model.embed.tok.weight.dtype == torch.float64
    ids, _ = batch()
    with torch.no_grad():
        assert max_diff(model(ids).logits.float(), hf(ids).logits) < TOL
