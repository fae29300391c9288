"""Hub names: resolved through huggingface_hub's cache, offline, with clear errors.

Every test is offline: the cache is a folder the test builds in the Hub layout
(``models--ORG--NAME/snapshots/<commit>/`` and ``refs/main``), and downloads are switched off
(``HF_HUB_OFFLINE``) wherever a call could reach the network.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import llmlab
from llmlab.errors import CheckpointError
from llmlab.interop import hub

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OLD_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


def tiny_gpt2(folder: Path, seed: int = 0) -> torch.nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=101)
    model = GPT2LMHeadModel(cfg).eval()
    model.save_pretrained(folder)
    return model


def add_snapshot(cache: Path, repo: str, commit: str, *, seed: int = 0,
                 ref: str | None = "main") -> torch.nn.Module:
    """Put a tiny GPT-2 in ``cache`` as huggingface_hub lays a download out."""
    storage = cache / f"models--{repo.replace('/', '--')}"
    model = tiny_gpt2(storage / "snapshots" / commit, seed)
    if ref:
        (storage / "refs").mkdir(parents=True, exist_ok=True)
        (storage / "refs" / ref).write_text(commit)
    return model


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A private Hub cache, and downloads switched off for this process."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(ids)
    return out.logits if hasattr(out, "logits") else out


def test_a_cached_hub_name_loads_with_the_same_logits(offline: Path) -> None:
    reference = add_snapshot(offline, "tiny-org/tiny-gpt2", COMMIT)
    model, _ = llmlab.interop.load_hf("tiny-org/tiny-gpt2")
    ids = torch.randint(0, 101, (2, 9), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(logits(model, ids), logits(reference, ids), atol=1e-4, rtol=1e-4)


def test_llmlab_load_takes_a_hub_name_and_a_revision(offline: Path) -> None:
    add_snapshot(offline, "tiny-org/tiny-gpt2", COMMIT, seed=0)
    old = add_snapshot(offline, "tiny-org/tiny-gpt2", OLD_COMMIT, seed=1, ref=None)
    latest, _ = llmlab.load("tiny-org/tiny-gpt2")
    pinned, _ = llmlab.load("tiny-org/tiny-gpt2", revision=OLD_COMMIT)
    ids = torch.arange(7)[None]
    torch.testing.assert_close(logits(pinned, ids), logits(old, ids), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(logits(latest, ids), logits(pinned, ids))


def test_a_name_missing_from_the_cache_offline_says_what_where_and_how(offline: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        llmlab.load("tiny-org/not-there")
    message = str(err.value)
    assert "tiny-org/not-there" in message and str(offline) in message
    assert "HF_HUB_OFFLINE" in message and "HF_HOME" in message and "folder" in message


def test_an_unknown_revision_offline_is_a_clear_error(offline: Path) -> None:
    add_snapshot(offline, "tiny-org/tiny-gpt2", COMMIT)
    with pytest.raises(CheckpointError, match="revision 'v9'.*not in the Hugging Face cache"):
        llmlab.load("tiny-org/tiny-gpt2", revision="v9")


def test_a_path_that_is_no_folder_and_no_hub_name_is_named(offline: Path, tmp_path: Path) -> None:
    missing = tmp_path / "models" / "gone"
    with pytest.raises(CheckpointError, match="does not exist|is not a folder"):
        llmlab.load(str(missing))
    with pytest.raises(CheckpointError, match="revision="):
        llmlab.load(str(missing), revision="main")


@pytest.mark.parametrize(("text", "is_name"), [
    ("EleutherAI/pythia-70m", True), ("gpt2", True), ("./gpt2", False), ("/abs/path", False),
    ("a/b/c", False), ("~/models/x", False), ("bad name", False),
])
def test_hub_names_are_told_from_paths(text: str, is_name: bool) -> None:
    assert hub.is_hub_name(text) is is_name


def _raising(error: Exception):
    def snapshot_download(*args, **kwargs):
        raise error
    return snapshot_download


def _http_error(cls: type, status: int) -> Exception:
    import httpx

    response = httpx.Response(status, request=httpx.Request("GET", "https://huggingface.co"))
    return cls("nope", response=response)


@pytest.mark.parametrize(("error_name", "status", "expected"), [
    ("RepositoryNotFoundError", 404, "Check the spelling"),
    ("GatedRepoError", 403, "gated model"),
    ("RevisionNotFoundError", 404, "has no revision"),
])
def test_hub_errors_become_errors_that_say_the_fix(
    monkeypatch: pytest.MonkeyPatch, error_name: str, status: int, expected: str
) -> None:
    import huggingface_hub
    from huggingface_hub import errors

    error = _http_error(getattr(errors, error_name), status)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _raising(error))
    with pytest.raises(CheckpointError, match=expected) as err:
        hub.resolve_folder("tiny-org/typo-gpt2")
    assert "tiny-org/typo-gpt2" in str(err.value)


def test_only_the_files_llmlab_reads_are_fetched(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    import huggingface_hub

    calls: list[list[str]] = []
    snapshot = tmp_path / "snap"
    snapshot.mkdir()

    def snapshot_download(name, *, allow_patterns, **options):
        calls.append(allow_patterns)
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    hub.resolve_folder("tiny-org/bin-only")  # no safetensors: a second call adds .bin
    assert len(calls) == 2
    assert "model.safetensors" in calls[0] and not any(".bin" in p for p in calls[0])
    assert "pytorch_model.bin" in calls[1]
    calls.clear()
    (snapshot / "model.safetensors").write_bytes(b"")
    hub.resolve_folder("tiny-org/has-safetensors")
    assert len(calls) == 1


def test_a_tokenizer_alone_comes_by_hub_name_without_any_weights(
        monkeypatch: pytest.MonkeyPatch, offline: Path) -> None:
    # a TinyStories-1M-style checkpoint has no tokenizer: users take GPT-Neo's by name
    import huggingface_hub
    from real_models import byte_bpe
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    add_snapshot(offline, "tiny-org/tiny-gpt2", COMMIT)
    folder = offline / "models--tiny-org--tiny-gpt2" / "snapshots" / COMMIT
    PreTrainedTokenizerFast(tokenizer_object=byte_bpe(["<|endoftext|>"]),
                            eos_token="<|endoftext|>").save_pretrained(folder)
    tok = llmlab.load_tokenizer("tiny-org/tiny-gpt2")
    text = "Once upon a time, Café 🤖"
    assert tok.encode(text) == AutoTokenizer.from_pretrained(folder).encode(text)
    with pytest.raises(CheckpointError, match="not in the Hugging Face cache"):
        llmlab.load_tokenizer("tiny-org/missing")

    calls: list[list[str]] = []

    def snapshot_download(name, *, allow_patterns, **options):
        calls.append(allow_patterns)
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    llmlab.load_tokenizer("tiny-org/tiny-gpt2", revision="main")
    assert calls and "tokenizer.json" in calls[0] and "merges.txt" in calls[0]
    assert not any("safetensors" in p or ".bin" in p or p == "config.json" for p in calls[0])


def test_hf_home_and_hf_hub_offline_from_the_environment(tmp_path: Path) -> None:
    """As a user sets them: in the environment of a fresh process."""
    add_snapshot(tmp_path / "home" / "hub", "tiny-org/tiny-gpt2", COMMIT)
    env = {**os.environ, "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    code = ("import llmlab; m, _ = llmlab.load('tiny-org/tiny-gpt2'); "
            "print(type(m).__name__, m.config.n_layer)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["GPT", "2"]
