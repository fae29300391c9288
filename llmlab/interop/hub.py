"""Turn a Hugging Face Hub name (``"HuggingFaceTB/SmolLM2-135M"``) into a local folder.

Names resolve through ``huggingface_hub``, as ``transformers`` resolves them: the Hugging Face
cache (``HF_HOME`` / ``HF_HUB_CACHE``), ``HF_HUB_OFFLINE``, the user's token, a ``revision``.
Only the files llmlab reads are downloaded: the config, the safetensors weights (or their
shards), the tokenizer files. ``.bin`` weights are fetched only when a model has no
safetensors, and are then read with ``weights_only=True``. Nothing here touches the network
unless a name is asked for that the cache cannot answer and the machine allows downloads.

>>> from llmlab.interop.hub import resolve_folder            # doctest: +SKIP
>>> resolve_folder("EleutherAI/pythia-70m")                   # doctest: +SKIP
PosixPath('/home/me/.cache/huggingface/hub/models--EleutherAI--pythia-70m/snapshots/...')
"""

from __future__ import annotations

import os
from pathlib import Path

from llmlab.errors import CheckpointError

# What llmlab reads from a model repository; everything else (other frameworks' weights,
# ONNX exports, READMEs with images) stays on the Hub.
TOKENIZER_FILES = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
]
READ_FILES = [
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "model-*.safetensors",
    *TOKENIZER_FILES,
    "modules.json",
    "sentence_bert_config.json",
]
BIN_FILES = ["pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*.bin"]


def resolve_folder(
    name_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    tokenizer_only: bool = False,
) -> Path:
    """The local folder of a model: ``name_or_path`` itself when it is a folder, else the
    Hub snapshot of that name (from the cache, or downloaded when the machine allows it).
    ``tokenizer_only``: fetch the tokenizer files and no weights.

    >>> resolve_folder("~/models/gpt2")                                # doctest: +SKIP
    PosixPath('/home/me/models/gpt2')
    >>> resolve_folder("openai-community/gpt2", revision="main")      # doctest: +SKIP
    PosixPath('/home/me/.cache/huggingface/hub/models--openai-community--gpt2/snapshots/...')
    """
    path = Path(name_or_path).expanduser()
    if path.exists() or not isinstance(name_or_path, str) or not is_hub_name(name_or_path):
        if revision is not None:
            raise CheckpointError(f"revision={revision!r} applies to Hub names, and {path} is "
                                  "a local path; drop revision= or pass a Hub name (ORG/NAME).")
        return path
    options = {"revision": revision, "cache_dir": cache_dir,
               "local_files_only": local_files_only, "token": token}
    if tokenizer_only:
        return _snapshot(name_or_path, TOKENIZER_FILES, options)
    folder = _snapshot(name_or_path, READ_FILES, options)
    if not any(folder.glob("*.safetensors")):
        folder = _snapshot(name_or_path, READ_FILES + BIN_FILES, options)
    return folder


def is_hub_name(text: str) -> bool:
    """Whether ``text`` is shaped like a Hub repository id (``NAME`` or ``ORG/NAME``).

    >>> is_hub_name("EleutherAI/pythia-70m"), is_hub_name("./runs/model"), is_hub_name("a/b/c")
    (True, False, False)
    """
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if text.startswith((".", "/", "~")) or "\\" in text:
        return False
    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return True


def hub_cache(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where Hub snapshots are looked for: ``cache_dir`` or the ``HF_HUB_CACHE`` in force."""
    from huggingface_hub import constants

    return Path(cache_dir or constants.HF_HUB_CACHE).expanduser()


def _snapshot(name: str, patterns: list[str], options: dict) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, allow_patterns=patterns, **options))
    except Exception as err:  # huggingface_hub's errors, network errors, OSError
        raise _hub_error(name, options, err) from err


def _hub_error(name: str, options: dict, err: Exception) -> CheckpointError:
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = hub_cache(options["cache_dir"])
    revision = options["revision"] or "main"
    if isinstance(err, GatedRepoError):
        return CheckpointError(
            f"{name} is a gated model: accept its terms on https://huggingface.co/{name} and "
            "log in (`hf auth login`, or pass token=...), or pass a folder that holds it.")
    if isinstance(err, RevisionNotFoundError):
        return CheckpointError(
            f"{name} has no revision {revision!r} on the Hub; pass a branch, tag or commit "
            "that exists (revision='main' is the default).")
    if isinstance(err, RepositoryNotFoundError):
        return CheckpointError(
            f"no folder {name} here and no model {name!r} on the Hub (or it is private: log "
            "in with `hf auth login` or pass token=...). Check the spelling "
            "(ORG/NAME, as on huggingface.co), or pass the path of a local folder.")
    if isinstance(err, LocalEntryNotFoundError):
        why = ("downloads are off (HF_HUB_OFFLINE=1 or local_files_only=True)"
               if constants.HF_HUB_OFFLINE or options["local_files_only"]
               else "the Hub could not be reached")
        return CheckpointError(
            f"{name} (revision {revision!r}) is not in the Hugging Face cache at {where} and "
            f"{why}. Connect to the internet and try again, point HF_HOME (or cache_dir=) at "
            "a cache that holds it, or pass the path of a folder with the model.")
    return CheckpointError(
        f"could not fetch {name} from the Hub into {where}: {type(err).__name__}: {err}. "
        "Check the connection and the disk, or pass the path of a local folder.")
