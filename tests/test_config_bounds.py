"""Bounds and type checks of ModelConfig and TrainConfig: sizes of real models pass, absurd
ones, bools and floats given for ints, huge ints and NaN or infinite numbers are refused with
a message naming the field, the bound and the fix, before any arithmetic."""

from __future__ import annotations

import math

import pytest

from llmlab.config import MAX_SIZES, ModelConfig
from llmlab.errors import ConfigError
from llmlab.train.config import TrainConfig

# Llama 3.1 405B's architecture (the largest open model llmlab's bounds must admit)
LLAMA3_405B = dict(family="gpt", vocab_size=128256, context_length=131072, n_layer=126,
                   n_head=128, n_kv_head=8, d_model=16384, d_ff=53248, pos_encoding="rope",
                   rope_theta=500000.0, norm="rmsnorm", activation="swiglu", bias=False,
                   tie_embeddings=False)


def test_real_model_sizes_and_every_preset_pass():
    cfg = ModelConfig(**LLAMA3_405B)
    assert cfg.estimate(batch_size=1, seq_len=8192).params > 4e11
    for name in ModelConfig.presets():
        ModelConfig.preset(name)
    at_the_bounds = ModelConfig(d_model=MAX_SIZES["d_model"], n_head=1024,
                                n_layer=MAX_SIZES["n_layer"], vocab_size=MAX_SIZES["vocab_size"],
                                context_length=MAX_SIZES["context_length"])
    estimate = at_the_bounds.estimate(batch_size=1, seq_len=1024)
    assert estimate.training_bytes > 0 and str(estimate)  # exact ints, printable


@pytest.mark.parametrize("field", ["d_model", "n_layer", "context_length", "n_head",
                                   "vocab_size", "d_ff", "n_kv_head"])
def test_sizes_above_the_bound_say_the_bound(field):
    with pytest.raises(ConfigError, match=rf"{field}=.*at most {MAX_SIZES[field]:,}.*smaller"):
        ModelConfig(**{field: MAX_SIZES[field] + 1})


def test_huge_int_is_refused_before_any_arithmetic():
    with pytest.raises(ConfigError, match=r"d_model=<an integer of 401 digits> .*at most 65,536"):
        ModelConfig(d_model=10**400)
    with pytest.raises(ConfigError, match="rope_theta.*out of range"):
        ModelConfig(rope_theta=10**400)


@pytest.mark.parametrize("value, kind", [(True, "bool"), (4.0, "float"), ("4", "str"),
                                         ([4], "list")])
def test_ints_must_be_ints(value, kind):
    with pytest.raises(ConfigError, match=rf"n_layer must be int, got {kind}"):
        ModelConfig(n_layer=value)


@pytest.mark.parametrize("field", ["rope_theta", "norm_eps", "init_std", "dropout"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_floats_must_be_finite(field, value):
    with pytest.raises(ConfigError, match=field):
        ModelConfig(**{field: value})


def test_error_messages_do_not_quote_huge_values_whole():
    with pytest.raises(ConfigError) as info:
        ModelConfig(name=["x" * 100_000])
    assert len(str(info.value)) < 300


def test_schema_states_the_upper_bounds():
    props = ModelConfig.json_schema()["properties"]
    assert props["d_model"]["maximum"] == 65536 and props["vocab_size"]["maximum"] == 10**7


# ---------------------------------------------------------------------- TrainConfig
@pytest.mark.parametrize("field", ["lr", "grad_clip", "weight_decay", "beta1", "beta2",
                                   "min_lr"])
@pytest.mark.parametrize("value", [math.nan, math.inf, 10**400])
def test_train_numbers_must_be_finite(field, value):
    with pytest.raises(ConfigError, match=rf"TrainConfig\.{field}=.*must be a finite number"):
        TrainConfig(**{field: value})


@pytest.mark.parametrize("field", ["max_steps", "batch_size", "eval_interval", "log_interval",
                                   "warmup_steps", "checkpoint_interval", "seed"])
@pytest.mark.parametrize("value", [3.5, True, "8", 2**64])
def test_train_counts_must_be_ints(field, value):
    with pytest.raises(ConfigError, match=rf"TrainConfig\.{field}=.*must be a whole number"):
        TrainConfig(**{field: value})


@pytest.mark.parametrize("field", ["compile", "cpu"])
def test_train_flags_must_be_bools(field):
    with pytest.raises(ConfigError, match=rf"TrainConfig\.{field}=1 must be True or False"):
        TrainConfig(**{field: 1})


def test_valid_train_settings_still_pass():
    cfg = TrainConfig(max_steps=10, lr=1, min_lr=0, grad_clip=0, weight_decay=0.0,
                      warmup_steps=0, checkpoint_interval=None, seed=-1, cpu=True)
    assert cfg.warmup == 0 and TrainConfig.from_dict(cfg.to_dict()) == cfg
