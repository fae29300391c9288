"""bf16 and torch.compile training on a CPU: they run where the machine has them, and are
refused with the working setting where it has not (llmlab/train/hardware.py)."""

from pathlib import Path

import pytest
import torch

import llmlab
from llmlab import ModelConfig, Trainer
from llmlab.data import CausalLMData
from llmlab.errors import ConfigError
from llmlab.train import hardware, suggested_settings

TEXT = (Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
        ).read_text()[:30_000]


@pytest.fixture(scope="module")
def tok():
    return llmlab.CharTokenizer.train(TEXT)


@pytest.fixture(scope="module")
def data(tok):
    return CausalLMData.from_text(TEXT, tok, seq_len=32)


def tiny(tok, **kw):
    return ModelConfig(**{**dict(family="gpt", vocab_size=tok.vocab_size, context_length=32,
                                 n_layer=2, n_head=2, d_model=32, dropout=0.0), **kw})


def train(tok, data, tmp_path, **settings):
    return Trainer(llmlab.build_model(tiny(tok), seed=0), data, run_dir=tmp_path, max_steps=4,
                   batch_size=4, lr=3e-3, eval_interval=4, eval_batches=1, progress=False,
                   cpu=True, **settings)


def losses(run):
    frame = run.metrics
    return frame.filter(frame["train/loss"].is_not_null())["train/loss"].to_list()


@pytest.mark.skipif(not hardware.cpu_has_bf16(), reason="this CPU has no native bf16")
def test_bf16_trains_in_bf16_close_to_float32(tok, data, tmp_path):
    seen = []
    trainer = train(tok, data, tmp_path, mixed_precision="bf16")
    linear = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    bf16 = trainer.fit()
    fp32 = train(tok, data, tmp_path).fit()
    assert torch.bfloat16 in seen  # autocast ran the matmuls in bf16
    assert bf16.manifest["training"]["mixed_precision"] == "bf16"
    assert losses(bf16) != losses(fp32)
    assert losses(bf16) == pytest.approx(losses(fp32), abs=0.05)
    assert next(trainer.model.parameters()).dtype == torch.float32  # master weights


def test_bf16_on_a_cpu_without_it_is_refused_with_the_fallback(tok, data, tmp_path,
                                                                monkeypatch):
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)
    with pytest.raises(ConfigError, match=r"AVX512-BF16.*mixed_precision='no'"):
        train(tok, data, tmp_path, mixed_precision="bf16")
    assert train(tok, data, tmp_path, mixed_precision="no").fit().status == "finished"


def test_fp16_on_a_cpu_is_refused(tok, data, tmp_path):
    with pytest.raises(ConfigError, match="fp16.*GPU.*'bf16'"):
        train(tok, data, tmp_path, mixed_precision="fp16")


def test_compile_without_a_compiler_is_refused(tok, data, tmp_path, monkeypatch):
    from torch._inductor import config as inductor

    monkeypatch.delenv("CXX", raising=False)
    with inductor.patch({"cpp.cxx": ("llmlab-no-such-compiler",)}):
        assert hardware.cxx_compiler() is None
        with pytest.raises(ConfigError, match=r"C\+\+ compiler.*compile=False"):
            train(tok, data, tmp_path, compile=True)


def test_compiler_is_found_from_cxx(monkeypatch, tmp_path):
    from torch._inductor import config as inductor

    fake = tmp_path / "my-cxx"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CXX", str(fake))
    with inductor.patch({"cpp.cxx": ("llmlab-no-such-compiler",)}):
        assert hardware.cxx_compiler() == str(fake)


def test_suggested_settings_follow_the_machine_and_the_width(monkeypatch):
    narrow, wide = ModelConfig.preset("baby-char"), ModelConfig.preset("shakespeare-char")
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: True)
    assert suggested_settings(narrow, "cpu") == {"mixed_precision": "no", "compile": False}
    assert suggested_settings(wide, "cpu") == {"mixed_precision": "bf16", "compile": False}
    assert suggested_settings(wide, "cuda") == {"mixed_precision": "bf16", "compile": True}
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)
    assert suggested_settings(wide, "cpu")["mixed_precision"] == "no"
