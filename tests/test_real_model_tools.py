"""Every llmlab tool on an imported model of each causal family (tiny random stand-ins for
SmolLM2, Qwen2, Qwen3, Mistral, Pythia, Gemma 1, 2 and 3, OLMo 2 and TinyStories' GPT-Neo).

The model and its tokenizer come from a folder transformers wrote; each tool is checked
against transformers where there is a reference, and for working at all where there is not.
"""

from __future__ import annotations

import math

import pytest
import torch
from real_models import FAMILIES, tiny_causal_lm

import llmlab
from llmlab.data import CausalLMData, ClassificationData, LabelledTexts

PROMPT = "The animal didn't cross the street"


@pytest.fixture(scope="module", params=list(FAMILIES))
def folder(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param)
    tiny_causal_lm(request.param, path)
    return path


@pytest.fixture(scope="module")
def theirs(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()


@pytest.fixture(scope="module")
def loaded(folder):
    return llmlab.load(folder)


def test_generate_from_text_uses_the_folder_tokenizer(loaded, theirs):
    model, tok = loaded
    got = llmlab.generate(model, tok, PROMPT, max_new_tokens=20, temperature=0, stop_token_ids=[])
    ids = torch.tensor([tok.encode(PROMPT)])
    with torch.no_grad():
        expected = theirs.generate(ids, max_new_tokens=20, do_sample=False, eos_token_id=None,
                                   pad_token_id=0)[0, ids.shape[1]:].tolist()
    assert got.token_ids == expected
    assert got.text == tok.decode(expected, skip_special_tokens=True)


def test_score_matches_transformers_log_probs(loaded, theirs):
    model, tok = loaded
    result = llmlab.score(model, tok, PROMPT)
    ids = torch.tensor([tok.encode(PROMPT)])
    with torch.no_grad():
        logprobs = theirs(ids).logits.log_softmax(-1)[0, :-1].gather(-1, ids[0, 1:, None])[:, 0]
    assert result.token_ids == ids[0, 1:].tolist()
    assert result.logprobs == pytest.approx(logprobs.tolist(), abs=1e-4)
    assert result.perplexity == pytest.approx(math.exp(-logprobs.mean().item()), rel=1e-4)


def test_inspect_shows_every_query_head_and_the_logit_lens(loaded, theirs):
    model, tok = loaded
    capture = llmlab.inspect(model, tok, PROMPT, logit_lens=True)
    ids = torch.tensor([tok.encode(PROMPT)])
    with torch.no_grad():
        expected = torch.stack(theirs(ids, output_attentions=True).attentions)[:, 0]
    (kind,) = capture.kinds
    assert capture.attention[kind].shape == expected.shape  # 4 query heads over 2 kv heads
    torch.testing.assert_close(capture.attention[kind].float(), expected, atol=1e-3, rtol=1e-3)
    lens = capture.logit_lens()
    assert lens.ids.shape[0] == model.config.n_layer + 1
    with torch.no_grad():
        top = theirs(ids).logits[0].argmax(-1)
    assert lens.ids[-1, :, 0].tolist() == top.tolist()  # the last row is the model's output
    assert capture.show() is not None


def test_prompt_classifier_on_a_real_lm(loaded):
    model, tok = loaded
    clf = llmlab.PromptClassifier(model, tok, "Review: {text}\nSentiment: {label}",
                                  {"dull": 0, "good": 1}, demonstrations=[("a good film", 1)])
    probs = clf.predict_proba(["a dull film", "a good film"])
    assert probs.shape == (2, 2)
    assert torch.allclose(torch.as_tensor(probs).sum(-1).double(), torch.ones(2).double())


def test_fine_tuning_a_causal_lm_lowers_its_loss(folder, tmp_path):
    model, tok = llmlab.load(folder)
    data = CausalLMData.from_text(" ".join(["the quick brown fox"] * 200), tok, seq_len=16)
    run = llmlab.Trainer(model, data, max_steps=30, run_dir=tmp_path, batch_size=8, lr=3e-3,
                         eval_interval=10, eval_batches=2, progress=False).fit()
    loss = run.metrics.drop_nulls("train/loss")["train/loss"].to_list()
    assert loss[-1] < loss[0] * 0.7
    llmlab.save(model, tmp_path / "tuned", tok)
    again, _ = llmlab.load(tmp_path / "tuned")
    ids = torch.tensor([tok.encode(PROMPT)])
    with torch.no_grad():
        torch.testing.assert_close(again(ids).logits, model.eval()(ids).logits)


def test_fine_tuning_a_classifier_from_the_lm(folder, tmp_path):
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="newly initialised"):
        model, tok = llmlab.load(folder, n_labels=2)
    texts = LabelledTexts(["a good film", "a dull film"] * 16, [1, 0] * 16)
    data = ClassificationData.from_texts(texts, tokenizer=tok, seq_len=16)
    run = llmlab.Trainer(model, data, max_steps=20, run_dir=tmp_path, batch_size=8, lr=3e-3,
                         eval_interval=10, eval_batches=1, progress=False).fit()
    loss = run.metrics.drop_nulls("train/loss")["train/loss"].to_list()
    assert loss[-1] < loss[0]


def test_quantize_and_grouped_query_head_pruning(loaded):
    from llmlab import compress
    from llmlab.compress.heads import attention_layers

    model, tok = loaded
    ids = torch.tensor([tok.encode(PROMPT)])
    with torch.no_grad():
        reference = model(ids).logits
        quantized = compress.quantize(model, "int8")
        # int8 moves these random stand-ins' logits by 2-4% of their largest (5% for Gemma 2
        # and 3, whose norm on each sublayer's output scales its rounding error up with it)
        assert (quantized(ids).logits - reference).abs().max() < 0.08 * reference.abs().max()
        pruned = compress.prune(model, 0.5, structured="heads", importance="magnitude")
    counts = compress.head_counts(pruned)
    assert sum(counts.values()) == sum(compress.head_counts(model).values()) // 2
    layer = next(iter(attention_layers(pruned).values()))
    cfg = model.config
    assert layer.n_head // layer.n_kv_head == cfg.n_head // cfg.kv_heads  # whole groups went
    assert llmlab.generate(pruned, tok, PROMPT, max_new_tokens=5, temperature=0).text is not None


def test_widgets_take_a_model_name_or_folder_as_their_source(folder):
    from llmlab.widgets.generator import GenerateWidget
    from llmlab.widgets.sources import resolve_model

    model, tok = resolve_model(str(folder))
    assert resolve_model(folder)[0] is model  # loaded once, kept
    assert model.config.n_layer == 2 and tok.bos_id is not None
    widget = GenerateWidget(str(folder))
    widget.prompt.value, widget.max_new_tokens.value = "The capital", 5
    widget.seed.value = "0"  # a random seed lets an untrained model draw eos early, sometimes
    widget.generate_button.click()
    assert widget.wait(timeout=60) and widget.status.kind != "error", widget.status.message
    assert widget.text and len(widget.events) == 5  # the new text (random weights)
