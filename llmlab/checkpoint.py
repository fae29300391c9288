"""Save and load models (safetensors + JSON config + tokenizer); never pickle.

A checkpoint is a folder::

    config.json        {"format": "llmlab-checkpoint", "format_version": 1, "config": {...}}
    model.safetensors  the weights (a tied output projection is stored once)
    tokenizer.json     optional, written by the tokenizer

:func:`load` also reads a local Hugging Face GPT-2 or BERT folder (see :mod:`llmlab.interop`).

>>> import llmlab, tempfile
>>> model = llmlab.build_model(llmlab.ModelConfig.preset("baby-char"))
>>> folder = llmlab.save(model, tempfile.mkdtemp() + "/ckpt")
>>> model2, tok = llmlab.load(folder)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from llmlab._files import current_umask
from llmlab._version import __version__
from llmlab.config import ModelConfig
from llmlab.errors import CheckpointError, ConfigError
from llmlab.formats import Format

FORMAT = "llmlab-checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
#: Metadata flag of a ``model/`` folder whose weights are sharded beside it (no weights file).
SHARDED_KEY = "weights_sharded"
#: Format 0: configs written before the version was recorded, still read.
CHECKPOINT_FORMAT = Format(FORMAT, FORMAT_VERSION, oldest=0, missing=0,
                           what="an llmlab checkpoint config",
                           redo="save the model again with llmlab.save")


def save(model: torch.nn.Module, path: str | os.PathLike, tokenizer: Any = None,
         *, metadata: dict[str, Any] | None = None, weights: bool = True) -> Path:
    """Write ``model`` (and ``tokenizer``) to the folder ``path``; returns the folder.

    The folder is written beside its final place and swapped in, so a crash mid-save never
    leaves a half-written checkpoint where a good one was. ``weights=False`` writes the
    config and tokenizer only: a sharded training checkpoint's ``model/`` folder, whose
    weights are accelerate's shards beside it (``llmlab.runs.consolidate`` merges them).
    """
    from safetensors.torch import save_file

    cfg = _model_config(model)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        metadata = dict(metadata or {})
        if weights:
            save_file(unique_tensors(model.state_dict()), staging / WEIGHTS_FILE,
                      metadata={"format": FORMAT})
        else:
            metadata[SHARDED_KEY] = True
        header = {**CHECKPOINT_FORMAT.header(), "llmlab_version": __version__, "config": cfg.to_dict(),
                  "metadata": metadata}
        (staging / CONFIG_FILE).write_text(json.dumps(header, indent=2), encoding="utf-8")
        if tokenizer is not None:
            tokenizer.save(staging)
        _swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def load(path: str | os.PathLike | Any, *, family: str | None = None,
         n_labels: int | None = None, device: str | torch.device | None = None,
         dtype: torch.dtype | None = None,
         revision: str | None = None) -> tuple[torch.nn.Module, Any]:
    """Load ``(model, tokenizer)`` from an llmlab checkpoint, a Hugging Face folder, a Hub
    name (from the Hugging Face cache, downloaded if missing and the machine allows it), or a
    training run: a :class:`~llmlab.runs.Run` or a run id of the current store (its latest
    checkpoint; ``run.load_model(step=...)`` picks another).

    ``family`` asserts what the checkpoint must be; ``n_labels`` turns a language-model
    checkpoint into a classifier with a freshly initialised head (for fine-tuning);
    ``revision`` picks a branch, tag or commit of a Hub name.
    The tokenizer is None when the folder has none.

    >>> model, tok = load("openai-community/gpt2")           # doctest: +SKIP
    >>> model, tok = load(run)                                # doctest: +SKIP
    """
    from llmlab import interop
    from llmlab.interop.hub import resolve_folder

    path = _run_model_folder(path)
    folder = _existing_folder(resolve_folder(path, revision=revision))

    if interop.is_hf_checkpoint(folder):
        model, tok = interop.load_hf(folder, n_labels=n_labels, device=device, dtype=dtype)
    else:
        cfg = read_config(folder)
        if n_labels is not None and n_labels != cfg.n_labels:
            cfg = cfg.replace(n_labels=n_labels)
        from llmlab.models import build_model

        model = build_model(cfg)
        _refuse_sharded(folder)
        state = read_weights(folder / WEIGHTS_FILE)
        if _is_compressed(state):
            from llmlab.compress.storage import shape_like

            shape_like(model, state)  # fewer heads, quantized layers: as the tensors were saved
        load_state_checked(model, state, source=str(folder), allow_new_head=n_labels is not None)
        model = model.to(device=device, dtype=dtype) if device or dtype else model
        tok = _read_tokenizer(folder)
    if family is not None and model.config.family != family:
        raise CheckpointError(
            f"{folder} holds a {model.config.family!r} model, not {family!r}; load it without "
            f"family=, or pick a {family} checkpoint."
        )
    return model.eval(), tok


def read_config(folder: str | os.PathLike) -> ModelConfig:
    """The ModelConfig stored in an llmlab checkpoint folder."""
    file = Path(folder) / CONFIG_FILE
    if not file.is_file():
        raise CheckpointError(
            f"{folder} has no {CONFIG_FILE}; an llmlab checkpoint holds {CONFIG_FILE} and "
            f"{WEIGHTS_FILE} (written by llmlab.save), a Hugging Face one config.json with a "
            "model_type."
        )
    try:
        header = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{file} is not valid JSON ({err}); the checkpoint is corrupt, "
                              "save it again.") from None
    CHECKPOINT_FORMAT.check(header, file, CheckpointError)
    try:
        return ModelConfig.from_dict(header.get("config"))
    except ConfigError as err:
        raise CheckpointError(f"{file} holds an invalid model config: {err}") from None


def _run_model_folder(path: Any) -> Any:
    """A run (or the id of one in the current store, where no such folder exists) as the
    model folder of its latest checkpoint; anything else unchanged."""
    from llmlab.runs import Run, get, is_valid_run_id

    if isinstance(path, str) and is_valid_run_id(path) and not Path(path).exists():
        path = get(path)
    if not isinstance(path, Run):
        return path
    folder = path.latest_checkpoint()
    if folder is None:
        raise CheckpointError(f"run {path.id} has no complete checkpoint to load; train it to "
                              "a checkpoint (checkpoint_interval, or to the end) first.")
    return folder / "model"


def _refuse_sharded(folder: Path) -> None:
    """A sharded checkpoint's ``model/`` folder has no weights of its own: say how to get them."""
    if (folder / WEIGHTS_FILE).exists():
        return
    header = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    if (header.get("metadata") or {}).get(SHARDED_KEY):
        raise CheckpointError(
            f"{folder} is the model folder of a sharded (FSDP / DeepSpeed) training checkpoint: "
            "its weights are the shards in ../accelerate. Merge them into one folder first: "
            "llmlab.runs.get(run_id).consolidate('out/') (or llmlab.runs.consolidate(<the "
            "checkpoint folder>, 'out/')), then llmlab.load('out/').")


def read_weights(file: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, with a clear error when it is missing or corrupt."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not file.is_file():
        raise CheckpointError(f"weights file {file} is missing; the checkpoint is incomplete, "
                              "save it again with llmlab.save.")
    try:
        return load_file(file)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"weights file {file} is corrupt or truncated ({err}); save the "
                              "checkpoint again.") from None


def unique_tensors(state: dict[str, torch.Tensor], *,
                   contiguous: bool = True) -> dict[str, torch.Tensor]:
    """The state dict with tied tensors kept once (first name wins), made contiguous for
    saving unless ``contiguous=False`` (the tensors themselves, e.g. to load into)."""
    seen: set[tuple[int, ...]] = set()
    out = {}
    for name, tensor in state.items():
        # meta tensors (a model built before its weights are read) have no storage to
        # compare: tied ones are the same Parameter object there (state_dict(keep_vars=True))
        key = (id(tensor),) if tensor.is_meta else (
            tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if key in seen:
            continue
        seen.add(key)
        out[name] = tensor.contiguous() if contiguous else tensor
    return out


def _is_compressed(state: dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` comes from a model llmlab.compress pruned or quantized."""
    return any(key.endswith((".kept_heads", ".qmode")) for key in state)


def load_state_checked(model: torch.nn.Module, state: dict[str, torch.Tensor], *,
                       source: str, allow_new_head: bool = False) -> None:
    """Load ``state`` into ``model`` strictly, saying exactly which tensors do not fit.

    Tied tensors absent from ``state`` are fine. With ``allow_new_head``, a head present in
    the model but not in ``state`` (a classifier on a language-model checkpoint) is kept as
    initialised and the checkpoint's own head is dropped, with a warning naming both.
    """
    expected = model.state_dict()
    aliases = set(expected) - set(unique_tensors(expected))
    missing = [k for k in expected if k not in state and k not in aliases]
    unexpected = [k for k in state if k not in expected]
    if allow_new_head:
        new = [k for k in missing if _is_head(k)]
        dropped = [k for k in unexpected if _is_head(k)]
        missing = [k for k in missing if k not in new]
        unexpected = [k for k in unexpected if k not in dropped]
        if new:
            warnings.warn(f"new, randomly initialised head tensors {new} (not in {source}); "
                          f"dropped the checkpoint's head tensors {dropped}. Fine-tune before "
                          "use.", stacklevel=3)
    wrong = [f"{k}: model expects {tuple(expected[k].shape)}, checkpoint has "
             f"{tuple(state[k].shape)}" for k in expected
             if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        parts = [f"missing tensors: {missing}" if missing else "",
                 f"unexpected tensors: {unexpected}" if unexpected else "",
                 "wrong shapes: " + "; ".join(wrong) if wrong else ""]
        raise CheckpointError(
            f"the weights in {source} do not fit the model ({'; '.join(p for p in parts if p)})."
            " The checkpoint and config disagree: load the folder with llmlab.load, or build "
            "the model from the checkpoint's own config."
        )
    model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)


def _is_head(name: str) -> bool:
    return name.split(".", maxsplit=1)[0] in ("lm_head", "mlm_head", "classifier")


def _model_config(model: torch.nn.Module) -> ModelConfig:
    cfg = getattr(model, "config", None)
    if not isinstance(cfg, ModelConfig):
        raise CheckpointError(
            f"llmlab.save needs an llmlab model (with a ModelConfig in .config), got "
            f"{type(model).__name__}; build it with llmlab.build_model."
        )
    return cfg


def _existing_folder(path: str | os.PathLike) -> Path:
    folder = Path(path)
    if not folder.exists():
        raise CheckpointError(f"checkpoint folder {folder} does not exist; check the path "
                              "(llmlab.save(model, folder) writes one).")
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is a file; pass the checkpoint's folder instead.")
    return folder


def _read_tokenizer(folder: Path) -> Any:
    if not (folder / TOKENIZER_FILE).exists():
        return None
    from llmlab.tokenizers import load_tokenizer

    return load_tokenizer(folder)


def _is_llmlab_checkpoint(folder: Path) -> bool:
    try:
        return json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))["format"] == FORMAT
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _swap_in(staging: Path, target: Path) -> None:
    staging.chmod(0o777 & ~current_umask())
    if not target.exists():
        os.replace(staging, target)
        return
    if not target.is_dir():
        raise CheckpointError(f"{target} exists and is not a folder; choose another path.")
    if any(target.iterdir()) and not _is_llmlab_checkpoint(target):
        raise CheckpointError(
            f"{target} is a non-empty folder that is not an llmlab checkpoint; saving would "
            "replace its contents. Choose a new or empty folder."
        )
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
