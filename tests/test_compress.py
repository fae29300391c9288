import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import llmlab
from llmlab import ModelConfig, compress
from llmlab.compress.heads import PrunedAttention
from llmlab.data import CausalLMData
from llmlab.errors import InputError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TEXT = (SHARED / "tinyshakespeare.txt").read_text()[:40_000]


@pytest.fixture(scope="module")
def tok():
    return llmlab.CharTokenizer.train(TEXT)


@pytest.fixture(scope="module")
def data(tok):
    return CausalLMData.from_text(TEXT, tok, seq_len=32)


def tiny(tok, **kw):
    return ModelConfig(**{**dict(vocab_size=tok.vocab_size, context_length=32, n_layer=2,
                                 n_head=4, d_model=64, bias=True), **kw})


@pytest.fixture(scope="module")
def trained(tok, data, tmp_path_factory):
    """A tiny model trained a little, so that its outputs are not uniform."""
    model = llmlab.build_model(tiny(tok), seed=0)
    llmlab.Trainer(model, data, max_steps=30, batch_size=8, lr=3e-3, eval_batches=1,
                   checkpoint_interval=0, progress=False,
                   run_dir=tmp_path_factory.mktemp("runs")).fit()
    return model.eval()


def ids(tok, text="ROMEO: what light"):
    return torch.tensor([tok.encode(text)])


# ------------------------------------------------------------------------------ quantization
@pytest.mark.parametrize("mode, tolerance", [("int8", 0.05), ("int8-weight", 0.03),
                                             ("int4-weight", 0.3)])
def test_quantized_logits_are_close_to_float(trained, tok, mode, tolerance):
    x = ids(tok)
    ref = trained(x).logits
    small = compress.quantize(trained, mode)
    out = small(x).logits
    assert (out - ref).abs().max() < tolerance * ref.abs().max()
    assert (out.argmax(-1) == ref.argmax(-1)).float().mean() > 0.9
    assert compress.quantized_mode(small) == mode
    assert compress.quantized_mode(trained) is None  # the float model is untouched


def test_generate_and_score_work_on_the_int8_model(trained, tok):
    small = compress.quantize(trained, "int8")
    out = llmlab.generate(small, tok, "ROMEO:", max_new_tokens=12)
    assert len(out.token_ids) == 12
    ppl_float = llmlab.score(trained, tok, "To be, or not to be").perplexity
    ppl_int8 = llmlab.score(small, tok, "To be, or not to be").perplexity
    assert math.isclose(ppl_int8, ppl_float, rel_tol=0.05)


def test_quantized_layers_keep_weight_access(trained):
    small = compress.quantize(trained, "int8-weight")
    head = small.lm_head
    assert head.weight.dtype == torch.float32
    assert head.weight.shape == trained.lm_head.weight.shape
    assert torch.allclose(head.weight, trained.lm_head.weight, atol=head.scales.max().item())
    assert small.device == trained.device


def test_quantized_sizes_shrink(trained):
    full = compress.model_size(trained)
    int8 = compress.model_size(compress.quantize(trained, "int8"))
    int4 = compress.model_size(compress.quantize(trained, "int4-weight"))
    assert full.params == trained.num_params()
    assert int4.disk_bytes < int8.disk_bytes < full.disk_bytes
    assert int4.memory_bytes < int8.memory_bytes < full.memory_bytes
    # the linear layers hold most weights: int8 needs about a quarter of float32's bytes
    linear = sum(m.weight.numel() for m in trained.modules()
                 if isinstance(m, torch.nn.Linear) and m is not trained.lm_head)
    assert full.disk_bytes - int8.disk_bytes > 0.7 * 4 * linear


@pytest.mark.parametrize("tied", [True, False])
def test_a_quantized_model_counts_the_parameters_of_its_float_model(tok, tmp_path, tied):
    """Quantized weights are buffers, yet they are the model's weights: num_params and
    model_size count them, and a head tied to the embeddings once (it stays tied in the float
    model whose count this is, although the int8 head is stored apart)."""
    model = llmlab.build_model(tiny(tok, tie_embeddings=tied), seed=0)
    for mode in compress.MODES:
        small = compress.quantize(model, mode)
        assert small.num_params() == compress.count_params(small) == model.num_params()
        assert compress.model_size(small).params == model.num_params()
        again, _ = llmlab.load(llmlab.save(small, tmp_path / f"{mode}-{tied}"))
        assert again.num_params() == model.num_params()
    assert model.num_params() == model.config.estimate().params


def test_quantized_model_saves_and_loads(trained, tok, tmp_path):
    x = ids(tok)
    for mode in compress.MODES:
        small = compress.quantize(trained, mode)
        folder = llmlab.save(small, tmp_path / mode, tokenizer=tok)
        again, tok2 = llmlab.load(folder)
        assert compress.quantized_mode(again) == mode
        assert torch.equal(again(x).logits, small(x).logits)
        assert tok2.vocab_size == tok.vocab_size
        assert compress.model_size(again).disk_bytes == compress.model_size(small).disk_bytes


def test_int4_works_with_a_single_group_per_row(tok, tmp_path):
    # width 32 = one int4 group: the scales stay [out, 1], not [out]
    model = llmlab.build_model(tiny(tok, d_model=32, n_head=2), seed=0).eval()
    small = compress.quantize(model, "int4-weight")
    x = ids(tok)
    assert small.decoder.blocks[0].attn.qkv.scales.shape == (96, 1)
    torch.testing.assert_close(small(x).logits, model(x).logits, rtol=0.2, atol=0.2)
    again, _ = llmlab.load(llmlab.save(small, tmp_path / "int4", tokenizer=tok))
    assert torch.equal(again(x).logits, small(x).logits)


def test_quantization_bad_input(trained, tok):
    small = compress.quantize(trained, "int8")
    with pytest.raises(InputError, match="already quantized"):
        compress.quantize(small, "int4-weight")
    with pytest.raises(InputError, match="unknown quantization mode"):
        compress.quantize(trained, "int3")
    odd = llmlab.build_model(tiny(tok, d_model=48, n_head=4), seed=0)
    with pytest.raises(InputError, match="groups of 32"):
        compress.quantize(odd, "int4-weight")
    with pytest.raises(InputError, match="prune the float model"):
        compress.prune(small, amount=0.2)


# ------------------------------------------------------------------------------ pruning
def test_unstructured_pruning_zeroes_the_smallest_fraction(trained):
    sparse = compress.prune(trained, amount=0.3)
    for name, layer in sparse.named_modules():
        if not isinstance(layer, torch.nn.Linear) or name == "lm_head":
            continue
        before = dict(trained.named_modules())[name].weight.detach()
        zeroed = layer.weight == 0
        assert int(zeroed.sum()) == round(0.3 * before.numel())
        assert before[zeroed].abs().max() <= before[~zeroed].abs().min()
        assert not hasattr(layer, "weight_orig")  # made permanent
    assert torch.equal(sparse.embed.tok.weight, trained.embed.tok.weight)  # tied head kept
    assert compress.sparsity(trained) == 0.0
    assert compress.sparsity(sparse) == pytest.approx(0.3, abs=0.01)


def test_pruning_zero_heads_is_the_identity(trained, tok):
    same = compress.prune(trained, amount=0.0, structured="heads")
    assert same.num_params() == trained.num_params()
    assert torch.equal(same(ids(tok)).logits, trained(ids(tok)).logits)


def test_removing_a_head_with_zero_output_changes_nothing(trained, tok):
    model = copy.deepcopy(trained)
    D = model.config.head_dim
    with torch.no_grad():
        model.decoder.blocks[1].attn.proj.weight[:, 2 * D:3 * D] = 0
    x = ids(tok)
    ref = model(x).logits
    chosen = compress.prune(model, amount=0.15, structured="heads")  # magnitude: that head
    assert compress.head_counts(chosen) == {"decoder.blocks.0.attn": 4,
                                            "decoder.blocks.1.attn": 3}
    assert torch.allclose(chosen(x).logits, ref, atol=1e-5)
    assert isinstance(chosen.decoder.blocks[1].attn, PrunedAttention)
    # the KV cache follows the smaller layer: cached decoding equals recomputing
    cached = llmlab.generate(chosen, tok, "ROMEO:", max_new_tokens=10, do_sample=False)
    recomputed = llmlab.generate(chosen, tok, "ROMEO:", max_new_tokens=10, do_sample=False,
                                 use_cache=False)
    assert cached.token_ids == recomputed.token_ids
    # attention weights keep the original head numbers; the removed head reads as zeros
    weights = chosen(x, return_attention=True).attentions
    assert [w.shape[1] for w in weights] == [4, 4]
    assert torch.equal(weights[1][:, 2], torch.zeros_like(weights[1][:, 2]))
    assert torch.allclose(weights[1][:, 3], model(x, return_attention=True).attentions[1][:, 3])
    capture = llmlab.inspect(chosen, tok, "ROMEO: what light")
    assert capture.matrix(layer=1, head=2).sum() == 0
    assert capture.matrix(layer=1, head=3).sum() > 0


def test_head_pruning_really_shrinks_the_model(trained, tok):
    cfg = trained.config
    pruned = compress.prune(trained, amount=0.5, structured="heads")
    removed = 8 - sum(compress.head_counts(pruned).values())
    assert removed == 4
    # each head: q, k, v rows (weights and biases) and its output-projection columns
    per_head = 4 * cfg.head_dim * cfg.d_model + 3 * cfg.head_dim
    assert pruned.num_params() == trained.num_params() - removed * per_head
    assert compress.model_size(pruned).params == pruned.num_params()
    assert llmlab.score(pruned, tok, "To be, or not to be").perplexity > 1


def test_gradient_importance_finds_a_dead_head(trained, tok, data):
    model = copy.deepcopy(trained)
    D = model.config.head_dim
    with torch.no_grad():
        model.decoder.blocks[0].attn.proj.weight[:, :D] = 0
    scores = compress.heads.gradient_importance(
        model, [data.get_batch("val", 4, torch.Generator().manual_seed(0))])
    assert scores["decoder.blocks.0.attn"][0] == 0
    assert (scores["decoder.blocks.0.attn"][1:] > 0).all()
    for importance in ("gradient", "entropy"):
        pruned = compress.prune(model, amount=0.25, structured="heads", importance=importance,
                                data=data, score_batches=2, batch_size=4)
        assert sum(compress.head_counts(pruned).values()) == 6
    pruned = compress.prune(model, amount=0.15, structured="heads", data=data, score_batches=2)
    assert compress.head_counts(pruned)["decoder.blocks.0.attn"] == 3
    assert pruned.decoder.blocks[0].attn.kept_heads.tolist() == [1, 2, 3]
    again = compress.prune(pruned, amount=0.15, structured="heads", importance="entropy",
                           data=data, score_batches=1)  # pruning a pruned model
    assert sum(compress.head_counts(again).values()) == 6


def test_grouped_query_and_encoder_models_prune_whole_groups(tok):
    gqa = llmlab.build_model(tiny(tok, n_kv_head=2), seed=0).eval()
    pruned = compress.prune(gqa, amount=0.5, structured="heads")
    assert compress.head_counts(pruned) == {"decoder.blocks.0.attn": 2,
                                            "decoder.blocks.1.attn": 2}
    assert [b.attn.n_kv_head for b in pruned.decoder.blocks] == [1, 1]
    assert llmlab.generate(pruned, tok, "ab", max_new_tokens=4).token_ids
    with pytest.raises(InputError, match="whole groups"):
        compress.remove_heads(copy.deepcopy(gqa), {"decoder.blocks.0.attn": [0]})
    bert = llmlab.build_model(tiny(tok, family="bert", norm_position="post"), seed=0).eval()
    smaller = compress.prune(bert, amount=0.25, structured="heads")
    assert smaller(ids(tok)).logits.shape == bert(ids(tok)).logits.shape


def test_pruning_a_qk_norm_across_heads_keeps_the_kept_heads_norm(tok, tmp_path):
    # OLMo 2 normalises all heads' queries together: the norm loses the removed heads' part
    cfg = tiny(tok, n_kv_head=2, pos_encoding="rope", norm="rmsnorm", qk_norm=True,
               qk_norm_per_head=False, sublayer_norm=True, input_norm=False)
    model = llmlab.build_model(cfg, seed=0).eval()
    attn = model.decoder.blocks[0].attn
    with torch.no_grad():
        attn.q_norm.weight.copy_(torch.arange(attn.q_norm.weight.numel()).float())
    head = attn.head_dim
    pruned = compress.prune(model, amount=0.5, structured="heads", importance="magnitude")
    small = pruned.decoder.blocks[0].attn
    kept = small.kept_heads.tolist()
    expected = torch.cat([torch.arange(h * head, (h + 1) * head) for h in kept]).float()
    torch.testing.assert_close(small.q_norm.weight.detach(), expected)
    assert small.k_norm.weight.numel() == small.n_kv_head * head
    llmlab.save(pruned, tmp_path / "pruned", tok)
    again, _ = llmlab.load(tmp_path / "pruned")
    with torch.no_grad():
        torch.testing.assert_close(again(ids(tok)).logits, pruned(ids(tok)).logits)


def test_pruned_model_saves_loads_and_fine_tunes(trained, tok, data, tmp_path):
    pruned = compress.prune(trained, amount=0.5, structured="heads", data=data,
                            score_batches=1, finetune_steps=3, run_dir=tmp_path / "runs",
                            eval_batches=1, checkpoint_interval=0)
    assert llmlab.runs.get(pruned.run_id, tmp_path / "runs").status == "finished"
    # the run history lists the size that was trained, not the size its config builds
    listed = llmlab.runs.list(tmp_path / "runs").filter(id=pruned.run_id)["params"][0]
    assert listed == pruned.num_params() < trained.num_params()
    assert not pruned.training
    folder = llmlab.save(pruned, tmp_path / "pruned", tokenizer=tok)
    again, _ = llmlab.load(folder)
    assert compress.head_counts(again) == compress.head_counts(pruned)
    for name, layer in compress.heads.attention_layers(again).items():
        assert torch.equal(layer.kept_heads,
                           compress.heads.attention_layers(pruned)[name].kept_heads)
    assert torch.equal(again(ids(tok)).logits, pruned(ids(tok)).logits)
    both = compress.quantize(pruned, "int8")
    again, _ = llmlab.load(llmlab.save(both, tmp_path / "both"))
    assert torch.equal(again(ids(tok)).logits, both(ids(tok)).logits)


@pytest.mark.parametrize("amount", [-0.1, 1.0, 1.5, "0.3", True, float("nan")])
def test_pruning_amount_outside_the_unit_interval_is_refused(trained, amount):
    with pytest.raises(InputError, match=r"\[0, 1\)"):
        compress.prune(trained, amount=amount)


def test_pruning_bad_options(trained):
    with pytest.raises(InputError, match="structured"):
        compress.prune(trained, amount=0.2, structured="rows")
    with pytest.raises(InputError, match="needs data"):
        compress.prune(trained, amount=0.2, finetune_steps=5)
    with pytest.raises(InputError, match="pass data="):
        compress.prune(trained, amount=0.2, structured="heads", importance="gradient")
    with pytest.raises(InputError, match="not a self-attention layer"):
        compress.remove_heads(copy.deepcopy(trained), {"decoder.blocks.9.attn": [0]})
    with pytest.raises(InputError, match="at least one head"):
        compress.remove_heads(copy.deepcopy(trained), {"decoder.blocks.0.attn": [0, 1, 2, 3]})


# ------------------------------------------------------------------------------ distillation
def test_distillation_loss_equals_the_formula_by_hand():
    student = torch.tensor([[[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]]])
    teacher = torch.tensor([[[1.0, 1.0, 0.0], [3.0, 0.0, 0.0]]])
    targets = torch.tensor([[0, -100]])  # the second position is ignored
    T, alpha = 2.0, 0.3
    p = [math.exp(v / T) for v in (1.0, 1.0, 0.0)]
    p = [v / sum(p) for v in p]
    q = [math.exp(v / T) for v in (2.0, 0.0, -1.0)]
    q = [v / sum(q) for v in q]
    kl = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    ce = -math.log(math.exp(2.0) / (math.exp(2.0) + 1 + math.exp(-1.0)))
    expected = alpha * T * T * kl + (1 - alpha) * ce
    got = compress.distillation_loss(student, teacher, targets, temperature=T, alpha=alpha)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    hard = compress.distillation_loss(student, teacher, targets, alpha=0.0)
    assert hard.item() == pytest.approx(F.cross_entropy(student[0, :1], targets[0, :1]).item())
    same = compress.distillation_loss(teacher, teacher, torch.tensor([[0, 0]]), alpha=1.0)
    assert same.item() == pytest.approx(0.0, abs=1e-6)


def test_distillation_lowers_its_loss_and_records_both_configs(trained, tok, data, tmp_path):
    student_cfg = tiny(tok, d_model=32, n_head=2)
    batch = data.get_batch("val", 8, torch.Generator().manual_seed(5))
    before = compress.DistillationModel(llmlab.build_model(student_cfg, seed=0), trained)(**batch)
    student = compress.distill(trained, student_cfg, data, steps=25, batch_size=8, lr=3e-3,
                               run_dir=tmp_path, eval_batches=1, eval_interval=25,
                               checkpoint_interval=25, progress=False)
    after = compress.DistillationModel(student, trained)(**batch)
    assert after.loss < before.loss - 0.3
    run = llmlab.runs.get(student.run_id, tmp_path)
    manifest = run.manifest
    assert manifest["config"] == student_cfg.to_dict()
    assert manifest["distillation"]["teacher_config"] == trained.config.to_dict()
    assert manifest["distillation"]["temperature"] == 2.0
    assert manifest["params"] is None  # the student is what its config builds
    assert llmlab.runs.list(tmp_path)["params"][0] == student.num_params()
    assert not any(p.requires_grad is False for p in student.parameters())
    # the Trainer's checkpoint holds the student alone, loadable as a plain model
    loaded, _ = llmlab.load(run.latest_checkpoint() / "model")
    assert loaded.config == student_cfg
    assert torch.equal(loaded(ids(tok)).logits, student(ids(tok)).logits)


def test_distillation_refuses_incompatible_tokenizers(trained, tok, data):
    other = llmlab.CharTokenizer.train(TEXT + "\u00e9\u00e8")
    with pytest.raises(InputError, match="same tokenizer"):
        compress.distill(trained, tiny(tok, vocab_size=tok.vocab_size + 2), data, steps=1)
    with pytest.raises(InputError, match="tokenizer differs"):
        compress.distill(trained, tiny(tok), data, steps=1, teacher_tokenizer=other)
    with pytest.raises(InputError, match="temperature"):
        compress.DistillationModel(trained, trained, temperature=0)
    with pytest.raises(InputError, match="alpha"):
        compress.DistillationModel(trained, trained, alpha=1.5)
