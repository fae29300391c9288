"""Train from a JSON spec in a terminal, on one process or many.

    python -m llmlab.train spec.json
    accelerate launch --num_processes 2 -m llmlab.train spec.json

A spec names the model, the data and the training settings::

    {"model": {"preset": "baby-char"},              # or {"config": {...}}, or {"checkpoint": "dir", "n_labels": 2}
     "data": {"kind": "causal_lm", "source": "tinyshakespeare", "tokenizer": "char", "seq_len": 64},
     "train": {"max_steps": 2000, "lr": 1e-3, "batch_size": 12},
     "run_dir": "llmlab-runs", "run_name": "baby"}

``data.kind`` is ``causal_lm`` or ``masked_lm`` (``source``: a file, folder or named corpus;
or ``saved``: a folder written by ``llmlab.data.save_corpus``, as ``Trainer.to_spec`` does for
data built in a notebook) or ``classification`` (``dataset``: sst2, trec or agnews).

A run trained from a spec records it in its manifest (``"spec"``, paths made absolute), which
is what ``llmlab.runs.reproduce(run_id)`` reruns. In a notebook, ``trainer_from_spec(spec)``
gives the same Trainer the command line uses.

>>> spec = {"model": {"preset": "baby-char"}, "data": {"source": "tinyshakespeare"}}
>>> sorted(spec)
['data', 'model']
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from llmlab.errors import ConfigError
from llmlab.train.callbacks import Callback

DATA_KINDS = ("causal_lm", "masked_lm", "classification")
#: Manifest field holding the spec a run was trained from (what ``reproduce`` reruns).
SPEC_FIELD = "spec"


def build_from_spec(spec: dict[str, Any]):
    """``(model, data, train_config, run options)`` described by a spec dict."""
    import llmlab
    from llmlab.train.config import TrainConfig

    _check_keys(spec, {"model", "data", "train", "run_dir", "run_name"}, "spec")
    train = TrainConfig.from_dict(spec.get("train", {}))
    model_spec, data_spec = spec.get("model", {}), spec.get("data", {})
    tokenizer = None
    if "checkpoint" in model_spec:
        import torch

        torch.manual_seed(train.seed)  # a new classifier head, and dropout, start from the seed
        model, tokenizer = llmlab.load(model_spec["checkpoint"], n_labels=model_spec.get("n_labels"))
    data = _build_data(data_spec, tokenizer)
    if "checkpoint" not in model_spec:
        cfg = _model_config(model_spec, data)
        model = llmlab.build_model(cfg, seed=train.seed)
    return model, data, train, {"run_dir": spec.get("run_dir"), "run_name": spec.get("run_name")}


def _model_config(model_spec: dict[str, Any], data: Any):
    from llmlab import ModelConfig

    if "config" in model_spec:
        return ModelConfig.from_dict(model_spec["config"])
    if "preset" not in model_spec:
        raise ConfigError('spec "model" needs "preset", "config" or "checkpoint".')
    overrides = {k: v for k, v in model_spec.items() if k != "preset"}
    overrides.setdefault("vocab_size", data.tokenizer.vocab_size)
    if getattr(data, "n_labels", None):
        overrides.setdefault("n_labels", data.n_labels)
    return ModelConfig.preset(model_spec["preset"], **overrides)


def _build_data(spec: dict[str, Any], tokenizer: Any):
    from llmlab import data as D

    kind = spec.get("kind", "causal_lm")
    if kind not in DATA_KINDS:
        raise ConfigError(f'spec "data.kind" is {kind!r}; use one of {DATA_KINDS}.')
    if "saved" in spec:
        return _saved_data(spec["saved"], kind)
    seq_len = spec.get("seq_len", 64)
    if kind == "classification":
        train = D.load_classification(spec["dataset"], "train",
                                      download=spec.get("download", False))
        tok = tokenizer or _tokenizer(spec.get("tokenizer", "char"), " ".join(train.texts), kind)
        return D.ClassificationData.from_texts(train, tokenizer=tok, seq_len=seq_len,
                                               val_fraction=spec.get("val_fraction", 0.1))
    text = D.load_text(spec.get("source", "tinyshakespeare"), download=spec.get("download", False))
    tok = tokenizer or _tokenizer(spec.get("tokenizer", "char"), text, kind)
    cls = D.CausalLMData if kind == "causal_lm" else D.MaskedLMData
    return cls.from_text(text, tok, seq_len=seq_len, val_fraction=spec.get("val_fraction", 0.1))


def _saved_data(folder: Any, kind: str):
    from llmlab import data as D

    data = D.load_corpus(folder)
    saved_kind = "causal_lm" if isinstance(data, D.CausalLMData) else "masked_lm"
    if saved_kind != kind:
        raise ConfigError(f'spec "data.saved" holds {saved_kind} data but "data.kind" is '
                          f'{kind!r}; set "kind": "{saved_kind}".')
    return data


def _tokenizer(kind: Any, text: str, data_kind: str):
    import llmlab

    specials = "bert" if data_kind == "masked_lm" else ()
    if kind == "char":
        return llmlab.CharTokenizer.train(text, special_tokens=specials)
    if kind == "byte":
        return llmlab.ByteTokenizer(special_tokens=specials and ("<pad>", "<mask>", "<cls>", "<sep>"))
    if isinstance(kind, dict) and "bpe" in kind:
        return llmlab.BPETokenizer.train(text, vocab_size=int(kind["bpe"]))
    raise ConfigError(f'spec "data.tokenizer" is {kind!r}; use "char", "byte" or {{"bpe": size}}.')


def _check_keys(spec: dict[str, Any], known: set[str], where: str) -> None:
    if not isinstance(spec, dict):
        raise ConfigError(f"the {where} must be a JSON object.")
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in the {where}; known: {sorted(known)}.")


def trainer_from_spec(spec: dict[str, Any], **options: Any):
    """The :class:`~llmlab.train.Trainer` a spec describes; its run records the spec.

    ``options`` are further Trainer keyword arguments (``progress``, ``callbacks``, ...).

    >>> trainer = trainer_from_spec({"model": {"preset": "baby-char"},
    ...                              "data": {"source": "tinyshakespeare"},
    ...                              "train": {"max_steps": 100}})   # doctest: +SKIP
    >>> run = trainer.fit()                                           # doctest: +SKIP
    """
    from llmlab.train.trainer import Trainer

    model, data, train, run_options = build_from_spec(spec)
    callbacks = [*options.pop("callbacks", []), RecordSpec(spec)]
    return Trainer(model, data, train, callbacks=callbacks, **run_options, **options)


class RecordSpec(Callback):
    """Writes the spec into the run's manifest when training starts (main process only)."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = recorded_spec(spec)

    def on_start(self, trainer: Any) -> None:
        if trainer.run is not None:
            trainer.run.update_manifest(**{SPEC_FIELD: self.spec})


def recorded_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` as a manifest keeps it: without the store location, local paths made absolute
    (so the run can be rerun from another folder).

    >>> recorded_spec({"data": {"source": "tinyshakespeare"}, "run_dir": "runs"})
    {'data': {'source': 'tinyshakespeare'}}
    """
    from llmlab.data import DATASETS

    kept = {key: value for key, value in spec.items() if key not in ("run_dir", "run_name")}
    model, data = dict(kept.get("model", {})), dict(kept.get("data", {}))
    if "checkpoint" in model:
        model["checkpoint"] = str(Path(model["checkpoint"]).expanduser().resolve())
    if "saved" in data:
        data["saved"] = str(Path(data["saved"]).expanduser().resolve())
    source = data.get("source")
    if isinstance(source, str) and source not in DATASETS and Path(source).expanduser().exists():
        data["source"] = str(Path(source).expanduser().resolve())
    if "model" in kept:
        kept["model"] = model
    if "data" in kept:
        kept["data"] = data
    return kept


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m llmlab.train``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="llmlab.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", type=Path, help="JSON file describing model, data and training")
    parser.add_argument("--resume", help="run id to resume from its latest checkpoint")
    parser.add_argument("--inexact-resume", action="store_true",
                        help="resume even when the checkpoint's RNG or sampler state is lost "
                             "(recorded as resume_exact: false)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        spec = json.loads(args.spec.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        parser.error(f"cannot read {args.spec}: {err}")
    trainer = trainer_from_spec(spec, progress=not args.no_progress)
    run = trainer.fit(resume_from=args.resume, exact=not args.inexact_resume)
    if run is not None:
        print(json.dumps({"run_id": run.id, "status": run.status, "path": str(run.path)}))
        return 0 if run.status == "finished" else 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
