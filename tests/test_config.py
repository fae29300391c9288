import json

import pytest

from llmlab import ModelConfig
from llmlab.errors import ConfigError


def test_presets_have_the_documented_shapes():
    baby = ModelConfig.preset("baby-char")
    assert (baby.n_layer, baby.n_head, baby.d_model, baby.context_length) == (4, 4, 128, 64)
    shakes = ModelConfig.preset("shakespeare-char")
    assert (shakes.n_layer, shakes.n_head, shakes.d_model, shakes.context_length) == (6, 6, 384, 256)
    gpt2 = ModelConfig.preset("gpt2-small")
    assert (gpt2.n_layer, gpt2.n_head, gpt2.d_model, gpt2.context_length, gpt2.vocab_size) == (
        12, 12, 768, 1024, 50257)
    bert = ModelConfig.preset("bert-mini")
    assert (bert.family, bert.n_layer, bert.n_head, bert.d_model) == ("bert", 4, 4, 256)
    assert ModelConfig.preset("seq2seq-small").family == "seq2seq"
    assert set(ModelConfig.presets()) >= {"baby-char", "shakespeare-char", "gpt2-small",
                                          "bert-mini", "seq2seq-small"}


def test_preset_overrides_and_replace_validate_again():
    cfg = ModelConfig.preset("baby-char", dropout=0.1)
    assert cfg.dropout == 0.1 and cfg.name == "baby-char"
    assert cfg.replace(n_layer=2).n_layer == 2
    with pytest.raises(ConfigError, match="n_head"):
        cfg.replace(n_head=3)


@pytest.mark.parametrize("name", ModelConfig.presets())
def test_json_round_trip(name, tmp_path):
    cfg = ModelConfig.preset(name)
    assert ModelConfig.from_json(cfg.to_json()) == cfg
    cfg.to_json(tmp_path / "cfg.json")
    assert ModelConfig.from_json(tmp_path / "cfg.json") == cfg


def test_json_schema_describes_every_field():
    schema = ModelConfig.json_schema()
    props = schema["properties"]
    assert set(props) == set(ModelConfig().to_dict())
    assert props["family"]["enum"] == ["gpt", "bert", "seq2seq"]
    assert props["pos_encoding"]["enum"] == ["learned", "sinusoidal", "rope", "none"]
    assert props["n_kv_head"]["type"] == ["integer", "null"]
    assert props["dropout"]["exclusiveMaximum"] == 1
    assert all("description" in props[k] for k in props if k != "name")
    json.dumps(schema)  # JSON-able


def test_schema_accepts_presets_and_rejects_bad_values():
    import jsonschema  # a dependency of jupyterlab
    schema = ModelConfig.json_schema()
    for name in ModelConfig.presets():
        jsonschema.validate(ModelConfig.preset(name).to_dict(), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"family": "rnn"}, schema)


def test_derived_sizes():
    cfg = ModelConfig(d_model=64, n_head=4, n_kv_head=2, d_ff=100)
    assert (cfg.head_dim, cfg.kv_heads, cfg.ffn_dim) == (16, 2, 100)
    assert ModelConfig(d_model=64, n_head=4).ffn_dim == 256
    s2s = ModelConfig(family="seq2seq", n_layer=3)
    assert s2s.decoder_layers == 3 and ModelConfig(family="seq2seq", n_decoder_layer=2).decoder_layers == 2


@pytest.mark.parametrize(
    "fields, field_name, hint",
    [
        (dict(d_model=100, n_head=12), "d_model", "divisible by n_head"),
        (dict(n_head=12, n_kv_head=5), "n_kv_head", "must divide n_head"),
        (dict(d_model=36, n_head=12, pos_encoding="rope"), "pos_encoding", "even head size"),
        (dict(family="rnn"), "family", "Use one of"),
        (dict(norm="batchnorm"), "norm", "Use one of"),
        (dict(activation="tanh"), "activation", "Use one of"),
        (dict(n_layer=0), "n_layer", "at least 1"),
        (dict(vocab_size=-5), "vocab_size", "at least 1"),
        (dict(n_layer=2.5), "n_layer", "must be int"),
        (dict(bias="yes"), "bias", "must be bool"),
        (dict(dropout=1.0), "dropout", r"\[0, 1\)"),
        (dict(n_labels=1), "n_labels", "at least 2"),
        (dict(family="gpt", n_decoder_layer=2), "n_decoder_layer", "seq2seq"),
        (dict(family="gpt", type_vocab_size=2), "type_vocab_size", "bert"),
        (dict(family="seq2seq", n_labels=3), "n_labels", "seq2seq"),
        (dict(norm_eps=0.0), "norm_eps", "positive"),
    ],
)
def test_invalid_configs_name_the_field_and_the_fix(fields, field_name, hint):
    with pytest.raises(ConfigError, match=hint) as err:
        ModelConfig(**fields)
    assert field_name in str(err.value)


def test_unknown_fields_and_presets_suggest_the_right_name():
    with pytest.raises(ConfigError, match="did you mean 'n_layer'"):
        ModelConfig.from_dict({"n_layers": 3})
    with pytest.raises(ConfigError, match="Known presets: .*baby-char"):
        ModelConfig.preset("tiny")
    with pytest.raises(ConfigError, match="malformed"):
        ModelConfig.from_json('{"family": ')
    with pytest.raises(ConfigError, match="JSON object"):
        ModelConfig.from_dict([1, 2])
    with pytest.raises(ConfigError, match="does not exist"):
        ModelConfig.from_json("no/such/config.json")
