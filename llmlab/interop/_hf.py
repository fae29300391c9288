"""What the GPT-2 and BERT converters share: Hugging Face folder files and tensor rules.

A :class:`Rule` says how one llmlab tensor is made from tensors of a Hugging Face checkpoint
(and back). :func:`load_into` applies a list of rules to a model and reports, all at once,
every tensor that is missing, unexpected or of the wrong shape.

This module reads the files itself (``json``, ``safetensors``, ``torch.load`` with
``weights_only=True``); it never imports ``transformers``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from llmlab.errors import CheckpointError

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
PICKLE_FILE = "pytorch_model.bin"
# in the order they are looked for; an ``.index.json`` lists the shards of a split checkpoint
WEIGHT_FILES = (
    SAFETENSORS_FILE,
    SAFETENSORS_FILE + ".index.json",
    PICKLE_FILE,
    PICKLE_FILE + ".index.json",
)
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "vocab.txt")
_MAX_LISTED = 12  # problems of one kind listed in an error before "... and N more"


# --------------------------------------------------------------------------- tensor rules
@dataclass(frozen=True)
class Rule:
    """How the llmlab tensor ``target`` is made from the checkpoint tensors ``sources``.

    ``layout``:
    - ``"same"``: one source, copied;
    - ``"transpose"``: one source stored ``[in, out]`` (GPT-2's ``Conv1D``), transposed to
      ``nn.Linear``'s ``[out, in]``;
    - ``"concat"``: several sources stacked along dim 0 (BERT's query, key, value -> our qkv),
      in equal parts, or in the sizes ``split`` gives (grouped-query q, k, v; gate, up);
    - ``"zeros"``: no source; the tensor is set to zero (a bias the checkpoint's layer lacks);
    - ``"plus_one"``: one source stored as an offset from 1 (Gemma's RMSNorm weights, applied
      as ``1 + w``);
    - ``"interleaved"``: one source whose rows hold q, k, v head by head (GPT-NeoX's
      ``query_key_value``: ``[heads, 3, D]``), regrouped to q | k | v (``heads`` gives the count).

    ``optional``: when a source is missing (or there are none) the tensor keeps its fresh
    initialisation (a new classification head) instead of being an error.
    """

    target: str
    sources: tuple[str, ...]
    layout: Literal["same", "transpose", "concat", "zeros", "interleaved", "plus_one"] = "same"
    optional: bool = False
    split: tuple[int, ...] | None = None
    heads: int = 1

    def _parts(self, shape: torch.Size) -> list[int]:
        if self.split is not None:
            return list(self.split)
        return [shape[0] // len(self.sources)] * len(self.sources)

    def source_shapes(self, shape: torch.Size) -> list[tuple[int, ...]]:
        """Shapes the sources must have for a target of ``shape``."""
        if self.layout == "transpose":
            return [tuple(reversed(shape))]
        if self.layout == "concat":
            return [(rows, *shape[1:]) for rows in self._parts(shape)]
        return [tuple(shape)] * len(self.sources)

    def to_llmlab(self, tensors: list[Tensor], shape: torch.Size) -> Tensor:
        """The target tensor from its source tensors (already checked for shape)."""
        if self.layout == "zeros":
            return torch.zeros(shape)
        if self.layout == "transpose":
            return tensors[0].t()
        if self.layout == "concat":
            return torch.cat(tensors, dim=0)
        if self.layout == "plus_one":
            return tensors[0] + 1.0
        if self.layout == "interleaved":
            rest = tensors[0].shape[1:]
            by_head = tensors[0].reshape(self.heads, 3, -1, *rest)
            return by_head.transpose(0, 1).reshape(shape)
        return tensors[0]

    def to_hf(self, tensor: Tensor) -> dict[str, Tensor]:
        """The source tensors, by checkpoint name, made from the llmlab tensor."""
        if self.layout == "zeros":
            return {}
        if self.layout == "transpose":
            return {self.sources[0]: tensor.t()}
        if self.layout == "concat":
            parts = tensor.split(self._parts(tensor.shape), dim=0)
            return dict(zip(self.sources, parts, strict=True))
        if self.layout == "plus_one":
            return {self.sources[0]: tensor - 1.0}
        if self.layout == "interleaved":
            by_kind = tensor.reshape(3, self.heads, -1, *tensor.shape[1:])
            return {self.sources[0]: by_kind.transpose(0, 1).reshape(tensor.shape)}
        return {self.sources[0]: tensor}


def load_into(
    model: nn.Module,
    rules: Iterable[Rule],
    checkpoint: Mapping[str, Tensor],
    *,
    ignorable: Callable[[str], bool],
    source: str,
    hint: str = "",
    assign_dtype: torch.dtype | None = None,
) -> list[str]:
    """Copy the checkpoint's tensors into ``model`` following ``rules``.

    Every problem is collected first and reported in one :class:`CheckpointError`: sources
    missing from the checkpoint, checkpoint tensors no rule uses (unless ``ignorable``), and
    sources of the wrong shape. Nothing is copied unless all fit. Returns the names of the
    tensors left freshly initialised (targets of optional rules whose sources were missing).
    With ``assign_dtype`` the checkpoint's tensors (in that dtype) *become* the parameters
    instead of being copied into them: for a skeleton (``build_skeleton``), so that loading
    never holds two copies of the weights.
    """
    from llmlab.checkpoint import unique_tensors

    targets = unique_tensors(model.state_dict(keep_vars=True), contiguous=False)
    rules = list(rules)
    _check_rules_cover(rules, targets)
    missing: list[str] = []
    wrong: list[str] = []
    fresh: list[str] = []
    used: set[str] = set()
    values: dict[str, Tensor] = {}
    for rule in rules:
        if rule.optional and not _complete(rule, checkpoint):
            fresh.append(rule.target)
            continue
        used.update(rule.sources)
        shape = targets[rule.target].shape
        absent, bad = _source_problems(rule, shape, checkpoint)
        missing += absent
        wrong += bad
        if not absent and not bad:
            values[rule.target] = rule.to_llmlab([checkpoint[n] for n in rule.sources], shape)
    unexpected = [
        f"{name} (shape {tuple(tensor.shape)})"
        for name, tensor in checkpoint.items()
        if name not in used and not ignorable(name)
    ]
    if missing or unexpected or wrong:
        raise CheckpointError(_mismatch_report(source, missing, unexpected, wrong, hint))
    if assign_dtype is not None:
        _assign(model, values, assign_dtype)
        return fresh
    with torch.no_grad():
        for name, value in values.items():
            targets[name].copy_(value)
    return fresh


def _assign(model: nn.Module, values: dict[str, Tensor], dtype: torch.dtype) -> None:
    for name in list(values):
        owner, _, attr = name.rpartition(".")
        tensor = values.pop(name).to(dtype).contiguous()
        setattr(model.get_submodule(owner), attr, nn.Parameter(tensor, requires_grad=True))
    if hasattr(model, "_tie"):
        model._tie()
    left = [n for n, p in model.named_parameters() if p.is_meta]
    if left:  # a bug in a converter's rules, not in the user's files
        raise RuntimeError(f"llmlab.interop left parameters unloaded: {left}")


def _complete(rule: Rule, checkpoint: Mapping[str, Tensor]) -> bool:
    return bool(rule.sources) and all(name in checkpoint for name in rule.sources)


def _source_problems(
    rule: Rule, shape: torch.Size, checkpoint: Mapping[str, Tensor]
) -> tuple[list[str], list[str]]:
    """(missing sources, sources of the wrong shape), each described for the error message."""
    missing, wrong = [], []
    for name, expected in zip(rule.sources, rule.source_shapes(shape), strict=True):
        if name not in checkpoint:
            missing.append(f"{name} (shape {expected})")
        elif tuple(checkpoint[name].shape) != expected:
            found = tuple(checkpoint[name].shape)
            wrong.append(f"{name}: expected shape {expected}, found {found}")
    return missing, wrong


def _check_rules_cover(rules: list[Rule], targets: Mapping[str, Tensor]) -> None:
    covered = {rule.target for rule in rules}
    if covered != set(targets):  # a bug in a converter, not in the user's files
        raise RuntimeError(
            f"llmlab.interop rules do not match the model: no rule for "
            f"{sorted(set(targets) - covered)}, rules for unknown {sorted(covered - set(targets))}"
        )


def _mismatch_report(
    source: str, missing: list[str], unexpected: list[str], wrong: list[str], hint: str
) -> str:
    lines = [f"the weights in {source} do not fit the model its config.json describes:"]
    for title, items in (("missing", missing), ("wrong shape", wrong), ("unexpected", unexpected)):
        if items:
            lines.append(f"  {title} ({len(items)}):")
            lines += [f"    {item}" for item in items[:_MAX_LISTED]]
            if len(items) > _MAX_LISTED:
                lines.append(f"    ... and {len(items) - _MAX_LISTED} more")
    lines.append(
        hint
        or "Use the weights file saved together with this config.json (re-download or "
        "re-save the model if either was edited)."
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- files
def read_config(directory: Path) -> dict[str, Any]:
    """The folder's ``config.json`` as a dict (a CheckpointError when absent or malformed)."""
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{directory} has no {CONFIG_FILE}; a Hugging Face model folder (written by "
            "save_pretrained) holds config.json beside its weights. Pass that folder."
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"could not read {path} ({err}); the file is damaged: copy it again from the model."
        ) from None
    if not isinstance(config, dict):
        raise CheckpointError(
            f"{path} holds JSON {type(config).__name__}, not an object; copy it again."
        )
    return config


def read_weights(directory: Path) -> dict[str, Tensor]:
    """All tensors of the folder's weights, by checkpoint name, on the CPU.

    Reads ``model.safetensors``, else ``pytorch_model.bin`` (with ``weights_only=True``: a
    pickle that holds anything but tensors is refused), or the shards an ``.index.json`` lists.
    """
    for name in WEIGHT_FILES:
        path = directory / name
        if path.is_file():
            if name.endswith(".index.json"):
                return _read_shards(path)
            return _read_file(path)
    present = sorted(p.name for p in directory.iterdir())
    raise CheckpointError(
        f"{directory} holds no weights llmlab can read: looked for {', '.join(WEIGHT_FILES)}; "
        f"found {', '.join(present) or 'nothing'}. Copy the model's weights file beside "
        "config.json (TensorFlow and Flax weights must first be re-saved in PyTorch format)."
    )


def _read_file(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    return _read_pickle(path)


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"could not read {path} as safetensors ({err}); the file is damaged or truncated: "
            "download or save it again."
        ) from None


def _read_pickle(path: Path) -> dict[str, Tensor]:
    import pickle

    try:
        # weights_only=True: a .bin is a pickle, and only tensors may come out of it
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"could not load {path} as plain tensors ({_unpickler_reason(err)}): the file is "
            "damaged, or holds Python objects besides tensors, which llmlab never unpickles. "
            "Download it again, or re-save the weights as safetensors "
            "(model.save_pretrained(folder) writes model.safetensors)."
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError) as err:
        raise CheckpointError(
            f"could not read {path} ({str(err).splitlines()[0]}); the file is damaged or "
            "truncated: download or save it again."
        ) from None
    if not isinstance(state, dict) or not all(isinstance(t, Tensor) for t in state.values()):
        raise CheckpointError(
            f"{path} does not hold a flat name -> tensor dict (a state_dict); re-save it with "
            "torch.save(model.state_dict(), path) or as safetensors."
        )
    return state


def _unpickler_reason(err: Exception) -> str:
    """The line of torch's long weights-only error that says what was refused."""
    text = str(err)
    _, _, detail = text.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in (detail or text).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _read_shards(index_path: Path) -> dict[str, Tensor]:
    try:
        weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"could not read the shard index {index_path} ({err!r}); it must be JSON with a "
            "'weight_map' of tensor name -> shard file. Copy it again from the model."
        ) from None
    tensors: dict[str, Tensor] = {}
    for shard in shards:
        path = index_path.parent / str(shard)
        if Path(str(shard)).name != shard or not path.is_file():
            raise CheckpointError(
                f"{index_path} lists shard {shard!r}, which is not a file in "
                f"{index_path.parent}; copy every shard of the model into that folder."
            )
        tensors.update(_read_file(path))
    return tensors


def has_tokenizer(directory: Path) -> bool:
    """Whether the folder holds files ``llmlab.tokenizers.load_tokenizer`` reads."""
    return any((directory / name).is_file() for name in TOKENIZER_FILES)


# --------------------------------------------------------------------------- config values
def config_value(config: Mapping[str, Any], key: str, default: Any, kind: type | tuple) -> Any:
    """``config[key]`` (or ``default`` when absent), checked to be of ``kind``."""
    value = config.get(key, default)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise CheckpointError(
            f"config.json has {key}={value!r}; it must be "
            f"{' or '.join(k.__name__ for k in kinds)}. "
            "Fix the value or copy config.json again from the model."
        )
    return value


def window_fields(window: int | None, pattern: str) -> dict[str, Any]:
    """``sliding_window`` and ``window_pattern`` from each layer's letter (w: windowed, f:
    full): no window where no layer has one, no pattern where every layer has it."""
    if window is None or "w" not in pattern:
        return {"sliding_window": None, "window_pattern": ""}
    return {"sliding_window": window, "window_pattern": pattern if "f" in pattern else ""}


def config_gaps(cfg: Any, allowed: Mapping[str, tuple]) -> list[tuple[str, Any, str]]:
    """(field, value, what is needed) for each field of ``cfg`` whose value is not among its
    ``allowed`` ones: what an export to a family cannot express."""
    return [(name, getattr(cfg, name), " or ".join(map(repr, values)))
            for name, values in allowed.items() if getattr(cfg, name) not in values]


def checkpoint_labels(config: Mapping[str, Any]) -> int:
    """Classes of a ``...ForSequenceClassification`` checkpoint; 0 for other architectures."""
    architectures = config.get("architectures") or []
    if not any(str(a).endswith("ForSequenceClassification") for a in architectures):
        return 0
    if isinstance(config.get("id2label"), dict) and config["id2label"]:
        return len(config["id2label"])
    return config_value(config, "num_labels", 2, int)


def save_tokenizer(tokenizer: Any, directory: Path, *, vocab_size: int, context_length: int) -> None:
    """Write ``tokenizer`` into an exported folder, in Hugging Face's own format when it has one.

    A Hugging Face tokenizer (``HFTokenizer``, ``BPETokenizer``) becomes ``tokenizer.json`` plus
    ``tokenizer_config.json`` naming its special tokens, which both ``transformers`` and
    ``llmlab.load_tokenizer`` read; any other tokenizer is written by its own ``save``.
    """
    size = getattr(tokenizer, "vocab_size", None)
    if isinstance(size, int) and size > vocab_size:
        raise CheckpointError(
            f"the tokenizer has {size} ids but the model's vocab_size is {vocab_size}; export "
            "the tokenizer the model was trained with."
        )
    hf_tokenizer = getattr(tokenizer, "hf_tokenizer", None)
    if hf_tokenizer is None:
        if not callable(getattr(tokenizer, "save", None)):
            raise CheckpointError(
                f"cannot save a {type(tokenizer).__name__} as a tokenizer: it has no save(). "
                "Pass an llmlab tokenizer (llmlab.tokenizers), or tokenizer=None."
            )
        tokenizer.save(directory)
        warnings.warn(
            f"{type(tokenizer).__name__} was saved in llmlab's format: llmlab.load_tokenizer "
            "reads it, transformers cannot. Use a BPETokenizer for a folder transformers can "
            "tokenize with.",
            stacklevel=3,
        )
        return
    from llmlab._files import write_text_atomic

    write_text_atomic(directory / "tokenizer.json", hf_tokenizer.to_str())
    special = {f"{role}_token": token for role, token in getattr(tokenizer, "roles", {}).items()}
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": context_length,
        **special,
    }
    if getattr(tokenizer, "chat_template", None):
        config["chat_template"] = tokenizer.chat_template
    write_text_atomic(directory / "tokenizer_config.json", json.dumps(config, indent=2) + "\n")
