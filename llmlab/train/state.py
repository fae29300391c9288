"""What the Trainer needs besides accelerate: a fresh Accelerator, its own resumable state,
and the checks that model, data and settings fit together.

>>> s = TrainerState(seed=0); s.step
0
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from llmlab.errors import ConfigError

STATE_FILE = "trainer_state.json"
GENERATOR_FILE = "data_generator.safetensors"


@dataclass
class TrainerState:
    """Step counter, tokens seen and the data sampler's RNG: saved with every checkpoint.

    Every process seeds the sampler alike and draws the same global batch, then keeps its
    own rows, so one process and several see the same data.
    """

    seed: int
    step: int = 0
    tokens: int = 0
    generator: torch.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        save_file({"state": self.generator.get_state()}, folder / GENERATOR_FILE)
        info = {"seed": self.seed, "step": self.step, "tokens": self.tokens}
        (folder / STATE_FILE).write_text(json.dumps(info), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, *, seed: int | None = None) -> TrainerState:
        """The state saved in a checkpoint ``folder``. With ``seed`` (an inexact resume) a
        sampler state that cannot be read is replaced by one seeded from ``seed`` and the step."""
        from safetensors.torch import load_file

        info = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        if not isinstance(info, dict) or not all(
                isinstance(info.get(k), int) for k in ("seed", "step", "tokens")):
            raise ValueError(f"{folder / STATE_FILE} does not hold seed, step and tokens")
        state = cls(seed=info["seed"])
        state.step, state.tokens = info["step"], info["tokens"]
        try:
            state.generator.set_state(load_file(folder / GENERATOR_FILE)["state"])
        except Exception:  # safetensors' errors, a missing file or key
            if seed is None:
                raise
            state.generator.manual_seed(seed + state.step)
        return state


def fresh_accelerator(cfg: Any, log_with: list[Any], project_dir: Path, **plugins: Any):
    """An Accelerator for ``cfg``, usable again and again in one notebook kernel.

    accelerate keeps one global state per process and refuses a second Accelerator with other
    settings. When this process is not part of a launched multi-process job, that state is
    reset first, so re-running a training cell with new settings works. ``plugins`` are the
    sharding plugins (:func:`llmlab.train.sharding.accelerator_plugins`).
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState, PartialState

    if PartialState._shared_state and PartialState().num_processes == 1:
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
    dynamo = "inductor" if cfg.compile else "no"
    return Accelerator(
        cpu=cfg.cpu, mixed_precision=cfg.mixed_precision, log_with=log_with or None,
        project_dir=str(project_dir), dynamo_backend=dynamo, **plugins,
    )


def check_compatible(model: torch.nn.Module, data: Any, cfg: Any) -> None:
    """Refuse model/data/settings combinations that cannot train, saying how to fix them."""
    mcfg = getattr(model, "config", None)
    if mcfg is None:
        raise ConfigError(f"Trainer needs an llmlab model (built with llmlab.build_model), got "
                          f"{type(model).__name__}.")
    kind = type(data).__name__
    expected = {
        "CausalLMData": ("gpt", False), "MaskedLMData": ("bert", False),
        "Seq2SeqData": ("seq2seq", False), "ClassificationData": (None, True),
    }
    if kind not in expected:
        raise ConfigError(f"Trainer needs data from llmlab.data (CausalLMData, MaskedLMData, "
                          f"Seq2SeqData or ClassificationData), got {kind}.")
    family, classifier = expected[kind]
    if classifier and mcfg.n_labels != data.n_labels:
        raise ConfigError(
            f"{kind} has {data.n_labels} labels but the model's n_labels is {mcfg.n_labels}; "
            f"build it with n_labels={data.n_labels} (e.g. llmlab.load(ckpt, "
            f"n_labels={data.n_labels}))."
        )
    if not classifier and (mcfg.family != family or mcfg.n_labels):
        raise ConfigError(f"{kind} trains a {family} language model, but the model is a "
                          f"{mcfg.family} model{' classifier' if mcfg.n_labels else ''}; pick the "
                          "data class that matches the model.")
    if data.seq_len > mcfg.context_length:
        raise ConfigError(f"the data's seq_len={data.seq_len} is longer than the model's "
                          f"context_length={mcfg.context_length}; use seq_len <= "
                          f"{mcfg.context_length} or a model with a longer context.")
    if data.tokenizer.vocab_size > mcfg.vocab_size:
        raise ConfigError(f"the tokenizer has {data.tokenizer.vocab_size} ids but the model's "
                          f"vocab_size is {mcfg.vocab_size}; build the model with vocab_size="
                          f"{data.tokenizer.vocab_size}.")
    available = data.num_examples("train")
    micro = cfg.batch_size // cfg.grad_accum_steps
    if micro > available:
        raise ConfigError(f"a micro-batch of {micro} is larger than the {available} training "
                          "examples; lower batch_size (or raise grad_accum_steps), or use more "
                          "data.")
