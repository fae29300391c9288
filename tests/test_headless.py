"""Bare encoders and bodies (BertModel, sentence-transformers folders, LlamaModel): loaded
without a head, returning hidden states and attention equal to transformers'."""

from __future__ import annotations

import json

import pytest
import torch
from real_models import tiny_llama

import llmlab
from llmlab.errors import InputError


@pytest.fixture(scope="module")
def sentence_folder(tmp_path_factory):
    """A sentence-transformers layout: a BertModel at the root, pooling settings beside it."""
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("minilm")
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=64,
                     attn_implementation="eager")
    model = BertModel(cfg).eval()
    model.save_pretrained(folder)
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    return folder, model


def test_a_bare_bert_loads_without_n_labels_and_matches_transformers(sentence_folder):
    folder, theirs = sentence_folder
    ours, _ = llmlab.load(folder)
    assert ours.config.lm_head is False and ours.config.n_labels == 0
    assert ours.num_params() == ours.config.estimate().params
    ids = torch.randint(0, 99, (2, 9), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 6:] = 0
    with torch.no_grad():
        expected = theirs(ids, attention_mask=mask, output_attentions=True)
        out = ours(ids, attention_mask=mask, return_attention=True)
    assert out.logits is None
    real = mask.bool()
    torch.testing.assert_close(out.last_hidden_state[real], expected.last_hidden_state[real],
                               atol=1e-5, rtol=1e-5)
    for a, b in zip(out.attentions, expected.attentions, strict=True):  # rows of real queries
        torch.testing.assert_close(a.transpose(1, 2)[real], b.transpose(1, 2)[real],
                                   atol=1e-5, rtol=1e-5)


def test_a_bare_encoder_can_be_inspected_and_refuses_what_needs_a_head(sentence_folder):
    folder, _ = sentence_folder
    ours, _ = llmlab.load(folder)
    capture = llmlab.inspect(ours, None, [2, 5, 7, 9, 3])
    assert capture.attention["encoder"].shape[:2] == (2, 4)
    with pytest.raises(InputError, match="no output head"):
        llmlab.inspect(ours, None, [2, 5, 7], logit_lens=True).logit_lens()
    with pytest.raises(InputError, match="no output head"):
        ours(torch.tensor([[1, 2]]), targets=torch.tensor([[1, 2]]))


def test_a_bare_llama_body_loads_headless_and_will_not_generate(tmp_path):
    from transformers import AutoModel

    tiny_llama(tmp_path / "full")
    AutoModel.from_pretrained(tmp_path / "full").save_pretrained(tmp_path / "body")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / "body" / name).write_bytes((tmp_path / "full" / name).read_bytes())
    body, tok = llmlab.load(tmp_path / "body")
    full, _ = llmlab.load(tmp_path / "full")
    assert not body.config.lm_head and full.config.lm_head
    ids = torch.tensor([tok.encode("The capital of France")])
    with torch.no_grad():
        torch.testing.assert_close(body(ids).last_hidden_state, full(ids).last_hidden_state)
    with pytest.raises(InputError, match="bare body"):
        llmlab.generate(body, tok, "The capital", max_new_tokens=3)
