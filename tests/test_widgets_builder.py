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
    assert ("seq len 10,000 is longer than context_length 64" in builder.estimate_view.value
            and "type 0 in it to follow context_length" in builder.estimate_view.value)
    assert builder.seq_len.layout.border and builder.fields["context_length"].layout.border
    assert not builder.build_button.disabled  # the config itself is still valid
    builder.seq_len.value = 64
    assert builder.estimate == small().estimate(batch_size=4, dtype="bfloat16")
    assert not builder.seq_len.layout.border and not builder.fields["context_length"].layout.border


def test_seq_len_shows_the_context_length_and_follows_it_until_the_user_types_another():
    builder = ModelBuilder(small())
    assert builder.seq_len.value == 64 and builder.seq_len_follows   # not "0"
    assert builder.estimate == small().estimate(batch_size=12, seq_len=None)
    builder.fields["context_length"].value = 128
    assert builder.seq_len.value == 128 and builder.estimate.seq_len == 128
    builder.load_config(small(context_length=32))
    assert builder.seq_len.value == 32 and builder.estimate.seq_len == 32
    assert "seq len 32 (context_length)" in builder.static_html()

    builder.seq_len.value = 20                            # the user's own length is kept
    assert not builder.seq_len_follows and builder.estimate.seq_len == 20
    builder.fields["context_length"].value = 48
    assert builder.seq_len.value == 20 and builder.estimate.seq_len == 20
    assert "seq len 20," in builder.static_html()
    builder.fields["context_length"].value = 16           # now too long: flagged, not followed
    assert builder.seq_len.value == 20 and builder.estimate is None
    assert builder.seq_len.layout.border and "longer than context_length 16" in \
        builder.estimate_view.value

    builder.seq_len.value = 0                             # 0 follows the context length again
    assert builder.seq_len_follows and builder.seq_len.value == 16
    assert builder.estimate == small(context_length=16).estimate(batch_size=12)
    assert not builder.seq_len.layout.border
    builder.seq_len.value = 8
    builder.seq_len.value = 16                            # so does typing the context length
    builder.fields["context_length"].value = 24
    assert builder.seq_len_follows and builder.seq_len.value == 24


def test_an_invalid_config_leaves_seq_len_as_it_was_and_follows_again_once_valid():
    builder = ModelBuilder(small())
    builder.fields["context_length"].value = -5
    assert builder.build_button.disabled and builder.seq_len.value == 64
    builder.fields["context_length"].value = 40
    assert builder.seq_len.value == 40 and builder.estimate.seq_len == 40


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
