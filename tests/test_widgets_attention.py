"""AttentionWidget: the attention inspector for a source's current model, inside a box."""

from types import SimpleNamespace

import pytest
import torch

import llmlab
from llmlab.attention import AttentionInspector
from llmlab.widgets import AttentionWidget, ModelBuilder

TEXT = "the animal didn't cross the street"


@pytest.fixture(scope="module")
def tok():
    return llmlab.CharTokenizer.train(TEXT + " .", special_tokens="bert")


def tiny(tok, family="gpt", seed=0):
    cfg = llmlab.ModelConfig(family=family, n_layer=2, n_head=2, d_model=32, context_length=64,
                             vocab_size=tok.vocab_size)
    return llmlab.build_model(cfg, seed=seed)


def test_inspect_button_shows_the_inspector_for_the_text(tok):
    model = tiny(tok)
    w = AttentionWidget((model, tok), text=TEXT)
    w.inspect_button.click()
    assert w.status.kind == "ok", w.status.message
    assert isinstance(w.inspector, AttentionInspector) and w.view.children == (w.inspector,)
    expected = llmlab.inspect(model, tok, TEXT)
    assert torch.equal(w.capture.attention["decoder"], expected.attention["decoder"])
    assert w.status.message == f"{len(TEXT)} tokens, 2 heads per layer"
    assert "Capture gpt" in repr(w)


def test_each_inspect_uses_the_sources_current_model(tok):
    source = SimpleNamespace(model=tiny(tok, seed=0), tokenizer=tok)
    w = AttentionWidget(source, text=TEXT)
    first = w.inspect()
    source.model = tiny(tok, seed=1)
    second = w.inspect()
    assert not torch.equal(first.attention["decoder"], second.attention["decoder"])
    assert w.capture is second and w.view.children == (w.inspector,)


def test_max_tokens_and_the_seq2seq_target_text(tok):
    w = AttentionWidget((tiny(tok, "seq2seq"), tok), text=TEXT)
    w.inspect_button.click()  # a seq2seq decoder needs its text
    assert w.status.kind == "error" and w.inspector is None
    w.target.value = "the street"
    w.max_tokens.value = 5
    w.inspect_button.click()
    assert w.status.kind == "ok", w.status.message
    assert len(w.capture.tokens["encoder"]) == 5
    assert w.capture.default_kind == "cross"


def test_no_model_empty_text_and_too_long_text_show_messages(tok):
    builder = ModelBuilder()
    w = AttentionWidget(builder, text=TEXT)
    w.inspect_button.click()
    assert w.status.message.startswith("inspecting failed: there is no model yet")
    w = AttentionWidget((tiny(tok), tok))
    w.inspect_button.click()
    assert "no text to inspect" in w.status.message
    w.text.value = "the street " * 10  # longer than the context of 64
    w.inspect_button.click()
    assert w.status.kind == "error" and "max_tokens" in w.status.message
    assert w.capture is None and repr(w) == "AttentionWidget (nothing inspected yet)"
