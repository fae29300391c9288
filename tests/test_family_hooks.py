"""What the tools need to know about a model family is asked of its class: no tool module
compares family names, and a new model class that answers the hooks works with them."""

from __future__ import annotations

import re
from pathlib import Path

import torch

import llmlab
from llmlab import ModelConfig
from llmlab.models import GPT

TOOLS = ["attention/capture.py", "attention/lens.py", "generation/core.py",
         "generation/scoring.py", "generation/prompts.py", "generation/stepper.py"]
PACKAGE = Path(llmlab.__file__).parent


def test_no_tool_module_compares_family_names():
    pattern = re.compile(r"""family\s*(==|!=|in\b)\s*[("']*(gpt|bert|seq2seq)""")
    offenders = [f"{name}:{i}" for name in TOOLS
                 for i, line in enumerate((PACKAGE / name).read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert not offenders


def test_each_family_answers_the_hooks():
    answers = {}
    for preset in ("baby-char", "bert-mini", "seq2seq-small"):
        model = llmlab.build_model(ModelConfig.preset(preset, n_layer=1, vocab_size=50))
        answers[preset] = (model.predicts_next_token, model.encoder_decoder,
                           model.capture_input, sorted(model.attention_kinds()),
                           model.lens_parts()[2:])
    assert answers == {
        "baby-char": (True, False, "text", ["decoder"], ("decoder", "next token")),
        "bert-mini": (False, False, "text_pair", ["encoder"], ("encoder", "masked token")),
        "seq2seq-small": (True, True, "source_target", ["cross", "decoder", "encoder"],
                          ("decoder", "next token")),
    }


class TaggedGPT(GPT):
    """A new model class: a GPT whose capture forward also records that it was asked."""

    asked = 0

    def capture_forward(self, sides, token_types=None, **flags):
        type(self).asked += 1
        return super().capture_forward(sides, token_types, **flags)


def test_a_new_model_class_is_inspected_through_its_hooks():
    tok = llmlab.CharTokenizer.train("hello world")
    cfg = ModelConfig(vocab_size=tok.vocab_size, context_length=16, n_layer=2, n_head=2,
                      d_model=16)
    model = TaggedGPT(cfg).eval()
    capture = llmlab.inspect(model, tok, "hello", logit_lens=True)
    assert TaggedGPT.asked >= 1
    assert capture.attention["decoder"].shape == (2, 2, 5, 5)
    assert capture.logit_lens().ids.shape[0] == 3
    assert llmlab.generate(model, tok, "he", max_new_tokens=3, temperature=0).token_ids
    assert torch.isfinite(torch.tensor(llmlab.score(model, tok, "hello").logprobs)).all()
