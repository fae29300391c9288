"""ModelBuilder: a form over ModelConfig with inline validation, estimates and a diagram."""

import pytest
import torch

import llmlab
from llmlab import ModelConfig
from llmlab.errors import ConfigError
from llmlab.widgets import ModelBuilder
from llmlab.widgets.builder import architecture_svg


def small(**changes):
    return ModelConfig.preset("baby-char").replace(**{**dict(n_layer=1, d_model=32, n_head=2),
                                                       **changes})


def test_form_has_a_control_for_every_schema_field_and_reads_back_the_config():
    builder = ModelBuilder(small())
    assert set(builder.fields) == set(ModelConfig.json_schema()["properties"])
    assert builder.config == small()
    assert builder.fields["family"].options == ("gpt", "bert", "seq2seq")
    assert builder.fields["n_kv_head"].value == ""  # optional: empty means the default


def test_default_builder_starts_from_the_named_preset():
    builder = ModelBuilder(preset="bert-mini")
    assert builder.config == ModelConfig.preset("bert-mini")
    assert builder.preset.value == "bert-mini"
    with pytest.raises(ConfigError, match="unknown preset"):
        ModelBuilder(preset="nope")


def test_changing_a_knob_updates_config_estimate_and_diagram():
    builder = ModelBuilder(small())
    before = builder.estimate.params
    builder.fields["n_layer"].value = 3
    assert builder.config.n_layer == 3
    assert builder.estimate == builder.config.estimate(batch_size=12, dtype="float32")
    assert builder.estimate.params > before
    assert str(builder.estimate.params) not in builder.estimate_view.value  # shown formatted
    assert "× 3" in builder.diagram.value


def test_estimate_follows_batch_seq_len_and_dtype_and_reports_a_too_long_seq_len():
    builder = ModelBuilder(small())
    builder.batch_size.value, builder.seq_len.value, builder.dtype.value = 4, 16, "bfloat16"
    assert builder.estimate == small().estimate(batch_size=4, seq_len=16, dtype="bfloat16")
    builder.seq_len.value = 10_000
    assert builder.estimate is None
    assert "exceeds the config&#x27;s context_length" in builder.estimate_view.value
    assert not builder.build_button.disabled  # the config itself is still valid


def test_invalid_combination_shows_the_configs_message_and_disables_build():
    builder = ModelBuilder(small())
    builder.fields["d_model"].value = 33  # not divisible by n_head=2
    with pytest.raises(ConfigError) as err:
        small(d_model=33)
    assert builder.problem.kind == "error"
    assert builder.problem.message == str(err.value)
    assert builder.build_button.disabled
    assert builder.fields["d_model"].layout.border  # the offending field is marked
    assert builder.fields["n_head"].layout.border  # and the one it is about (err.fields)
    # the last valid estimates and diagram stay, greyed out and marked as out of date
    for view in (builder.estimate_view, builder.diagram):
        assert view.value.startswith('<div class="llmlab-stale"'), view.value[:80]
    builder.fields["d_model"].value = 35  # still invalid: greyed once, not nested
    assert builder.diagram.value.count("llmlab-stale") == 1
    builder.build_button.click()
    assert builder.model is None
    with pytest.raises(ConfigError, match="divisible"):
        _ = builder.config
    builder.fields["d_model"].value = 34
    assert builder.problem.message == "" and not builder.build_button.disabled
    assert not builder.fields["d_model"].layout.border
    assert "llmlab-stale" not in builder.diagram.value + builder.estimate_view.value


def test_optional_fields_parse_numbers_and_reject_text():
    builder = ModelBuilder(small())
    builder.fields["n_kv_head"].value = "1"
    assert builder.config.kv_heads == 1
    assert "1 kv" in builder.diagram.value
    builder.fields["n_kv_head"].value = "two"
    assert "n_kv_head='two' is not a whole number" in builder.problem.message
    assert builder.build_button.disabled


def test_build_button_builds_a_model_and_calls_on_build():
    builder = ModelBuilder(small())
    seen = []
    builder.on_build(seen.append)
    builder.seed.value = 3
    builder.build_button.click()
    assert builder.status.kind == "ok"
    assert isinstance(builder.model, torch.nn.Module) and seen == [builder.model]
    expected = llmlab.build_model(small(), seed=3)
    assert torch.equal(next(builder.model.parameters()), next(expected.parameters()))
    assert builder.model.num_params() == builder.estimate.params
    with pytest.raises(TypeError, match="on_build needs a function"):
        builder.on_build("not callable")


def test_preset_dropdown_and_load_config_fill_the_form():
    builder = ModelBuilder(small())
    assert builder.preset.value == "(custom)"  # a changed preset is no longer the preset
    builder.preset.value = "seq2seq-small"
    assert builder.config == ModelConfig.preset("seq2seq-small")
    assert "cross-attention" in builder.diagram.value
    builder.load_config(small(norm="rmsnorm").to_dict())
    assert builder.config.norm == "rmsnorm" and builder.preset.value == "(custom)"
    builder.load_config(small().to_json())
    assert builder.config == small()
    with pytest.raises(ConfigError, match="load_config needs"):
        builder.load_config(42)


def test_tokenizer_larger_than_the_vocabulary_blocks_build():
    builder = ModelBuilder(small(vocab_size=4))
    builder.tokenizer = llmlab.CharTokenizer.train("abcdefgh")
    assert builder.build_button.disabled
    assert "at least 8" in builder.problem.message
    builder.fields["vocab_size"].value = 8
    assert not builder.build_button.disabled
    assert builder.build().config.vocab_size == 8


def test_diagram_draws_each_family_and_escapes_text():
    gpt = architecture_svg(small(pos_encoding="rope"))
    assert gpt.startswith("<svg") and "causal self-attention" in gpt and "RoPE" in gpt
    assert "LM head" in gpt
    bert = architecture_svg(ModelConfig.preset("bert-mini", n_labels=3))
    assert "causal" not in bert and "3 classes" in bert and "segments" in bert
    s2s = architecture_svg(ModelConfig.preset("seq2seq-small"))
    assert "encoder" in s2s and "decoder" in s2s and "<path" in s2s  # encoder -> cross-attn
    assert "<script" not in s2s


def test_text_fallback_describes_the_config():
    builder = ModelBuilder(small())
    text = builder._repr_mimebundle_()["text/plain"]
    assert "gpt, 1 layers x 2 heads, d_model 32" in text and "not built" in text
    builder.fields["d_model"].value = 33
    assert "invalid" in repr(builder)
