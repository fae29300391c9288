"""GenerateWidget: sampling controls, streamed coloured output, Stop, and messages on bad input."""

import math
import time

import pytest

import llmlab
from llmlab.generation import Alternative, TokenEvent
from llmlab.widgets import GenerateWidget, ModelBuilder
from llmlab.widgets.generator import token_span

TEXT = "the cat sat on the mat. the dog sat on the log. <&> \n"


@pytest.fixture(scope="module")
def tok():
    return llmlab.CharTokenizer.train(TEXT)


@pytest.fixture(scope="module")
def model(tok):
    cfg = llmlab.ModelConfig.preset("baby-char").replace(
        n_layer=1, d_model=32, n_head=2, vocab_size=tok.vocab_size, context_length=32)
    return llmlab.build_model(cfg, seed=0)


def widget(model, tok, **controls):
    w = GenerateWidget((model, tok))
    w.slide.value = False
    w.prompt.value = "the "
    w.seed.value = "7"
    w.max_new_tokens.value = 12
    for name, value in controls.items():
        getattr(w, name).value = value
    return w


def test_controls_become_generate_options(model, tok):
    w = widget(model, tok, temperature=0.5, top_k=3, top_p=0.9, repetition_penalty=1.2)
    assert w.options() == dict(max_new_tokens=12, temperature=0.5, top_k=3, top_p=0.9,
                               repetition_penalty=1.2, seed=7, on_overflow="error")
    w.top_k.value, w.seed.value, w.slide.value = 0, "", True
    assert w.options()["top_k"] is None and w.options()["seed"] is None
    assert w.options()["on_overflow"] == "slide"


def test_generate_matches_the_library_call_and_fills_the_output(model, tok):
    w = widget(model, tok, temperature=0.7, top_k=5)
    result = w.generate()
    expected = llmlab.generate(model, tok, "the ", max_new_tokens=12, temperature=0.7,
                               top_k=5, seed=7)
    assert result.text == expected.text == w.text
    assert [e.token_id for e in w.events] == expected.token_ids
    assert w.output.value.count("<span title=") == 0  # every token span is shaded
    assert w.output.value.count("title=") == len([e for e in w.events if e.text])
    assert html_text(w.output.value).endswith("the " + expected.text)
    assert expected.text[:8] in repr(w)


def html_text(markup):
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def test_generate_button_runs_in_the_background_and_reports(model, tok):
    w = widget(model, tok)
    w.generate_button.click()
    assert w.wait(timeout=60)
    assert w.status.kind == "ok" and "12 tokens, finished by length" in w.status.message
    assert not w.generate_button.disabled and w.stop_button.disabled
    assert len(w.events) == 12


def test_stop_ends_a_long_generation_and_keeps_its_text(model, tok):
    w = widget(model, tok, max_new_tokens=100_000, slide=True)
    w.generate_button.click()
    deadline = time.monotonic() + 60
    while not w.events and time.monotonic() < deadline:
        time.sleep(0.01)
    w.generate_button.click()  # a second start while running is refused with a message
    assert "already running" in w.status.message
    w.stop_button.click()
    assert w.wait(timeout=60)
    assert 0 < len(w.events) < 100_000
    assert w.status.message == f"stopped after {len(w.events)} tokens"
    # the partial Generation is kept: the tokens the widget showed, and their text
    assert w.result.finish_reason == "stopped"
    assert w.result.token_ids == [e.token_id for e in w.events]
    assert w.result.text == w.text


def test_generating_before_a_model_exists_shows_a_message(tok):
    builder = ModelBuilder()
    builder.tokenizer = tok
    w = GenerateWidget(builder)
    w.generate_button.click()
    assert w.wait(timeout=60)
    assert w.status.kind == "error"
    assert w.status.message.startswith("generating failed: there is no model yet")
    assert w.events == [] and not w.generate_button.disabled


def test_a_model_without_a_tokenizer_says_so_in_the_status_line(model):
    w = GenerateWidget((model, None))
    w.prompt.value = "the "
    w.generate_button.click()
    assert w.wait(timeout=60)
    assert w.status.kind == "error"
    assert "no tokenizer" in w.status.message and "Traceback" not in w.status.message
    assert w.events == [] and not w.generate_button.disabled


def test_bad_options_show_the_librarys_message(model, tok):
    w = widget(model, tok, max_new_tokens=500)
    w.generate_button.click()
    w.wait(timeout=60)
    assert "context_length" in w.status.message and "on_overflow" not in w.status.message
    assert "tick 'slide past the context'" in w.status.message
    assert "set 'max new tokens' to" in w.status.message and "max_new_tokens" not in \
        w.status.message
    w = widget(model, tok, seed="abc")
    w.generate_button.click()
    w.wait(timeout=60)
    assert "seed 'abc' is not a whole number" in w.status.message
    w = widget(model, tok, prompt="€")  # a character the tokenizer does not know
    w.generate_button.click()
    w.wait(timeout=60)
    assert w.status.kind == "error" and w.events == []


def test_token_span_escapes_text_and_lists_alternatives():
    event = TokenEvent(row=0, index=0, token_id=3, token="<b>", text='<b>"x"',
                       logprob=math.log(0.25),
                       alternatives=[Alternative("<b>", 3, math.log(0.25)),
                                     Alternative("&", 4, math.log(0.2))])
    span = token_span(event)
    assert "<b>" not in span.replace("<span", "").replace("</span>", "")
    assert "&lt;b&gt;&quot;x&quot;" in span
    assert "p = 0.250" in span and "&#x27;&amp;&#x27; 0.200" in span
    assert "hsla(30," in span  # hue = 120 x probability
    assert token_span(TokenEvent(0, 1, 5, "\\xe2", "")) == ""


def test_the_defaults_slide_past_the_context_and_an_empty_prompt_is_explained(model, tok):
    w = GenerateWidget((model, tok))
    assert w.slide.value and w.options()["on_overflow"] == "slide"
    w.prompt.value, w.max_new_tokens.value, w.seed.value = "the ", 500, "1"
    w.generate_button.click()
    w.wait(timeout=120)
    assert w.status.kind == "ok" and len(w.events) == 500   # longer than the context
    w.prompt.value = ""
    w.generate_button.click()
    w.wait(timeout=60)
    assert tok.bos_id is None  # a character tokenizer: nothing to start from
    assert w.status.kind == "error" and "type a prompt" in w.status.message
