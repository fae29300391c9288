"""Knowledge distillation: train a student on a teacher's softened predictions.

The loss (Hinton, Vinyals and Dean 2015, "Distilling the Knowledge in a Neural Network")::

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))
           + (1 - alpha) * cross_entropy(student, labels)

averaged over the labelled positions (targets != -100). The ``T^2`` keeps the soft term's
gradients on the scale of the hard term's as ``T`` changes. Training goes through
:class:`llmlab.Trainer` unchanged: :class:`DistillationModel` wraps student and teacher and
its forward returns this loss; it saves, checkpoints and resumes as the student alone.

>>> import llmlab                                                               # doctest: +SKIP
>>> student = distill(teacher, llmlab.ModelConfig.preset("baby-char"), data, steps=1000)  # doctest: +SKIP
>>> llmlab.runs.get(student.run_id).manifest["distillation"]["teacher_config"]  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from llmlab.compress.size import count_params
from llmlab.config import ModelConfig
from llmlab.errors import InputError
from llmlab.train.callbacks import Callback


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, *,
                      temperature: float = 2.0, alpha: float = 0.5) -> Tensor:
    """Hinton et al.'s mix of the soft (teacher) and hard (label) losses; see the module doc.

    Logits are ``[..., classes]`` and ``targets`` the matching ``[...]`` class ids, -100 for
    positions to ignore.

    >>> s, t = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    >>> round(distillation_loss(s, t, torch.tensor([0]), temperature=1.0, alpha=1.0).item(), 4)
    0.4621
    """
    classes = student_logits.shape[-1]
    s = student_logits.reshape(-1, classes).float()
    t = teacher_logits.reshape(-1, classes).float()
    labels = targets.reshape(-1)
    keep = labels != -100
    s, t, labels = s[keep], t[keep], labels[keep]
    soft_teacher = F.log_softmax(t / temperature, dim=-1)
    soft_student = F.log_softmax(s / temperature, dim=-1)
    kl = F.kl_div(soft_student, soft_teacher, log_target=True, reduction="batchmean")
    hard = F.cross_entropy(s, labels)
    return alpha * temperature**2 * kl + (1 - alpha) * hard


class DistillationModel(nn.Module):
    """A student and a frozen teacher; ``forward(**batch)`` returns the student's output with
    the distillation loss.

    ``config``, ``state_dict`` and ``load_state_dict`` are the student's, so the Trainer's
    checks, checkpoints and ``llmlab.save`` see the student only. The teacher stays in eval
    mode and has no gradients.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, *, temperature: float = 2.0,
                 alpha: float = 0.5):
        super().__init__()
        _check_mix(temperature, alpha)
        self.student, self.teacher = student, teacher
        self.temperature, self.alpha = temperature, alpha
        self.teacher.requires_grad_(False)
        self.teacher.eval()

    @property
    def config(self) -> ModelConfig:
        return self.student.config

    def forward(self, targets: Tensor | None = None, **inputs: Any):
        out = self.student(**inputs)
        if targets is None:
            return out
        with torch.no_grad():
            teacher_logits = self.teacher(**inputs).logits
        out.loss = distillation_loss(out.logits, teacher_logits, targets,
                                     temperature=self.temperature, alpha=self.alpha)
        return out

    def train(self, mode: bool = True) -> DistillationModel:
        self.training = mode
        self.student.train(mode)
        self.teacher.eval()
        return self

    def num_params(self) -> int:
        """The student's parameters (the frozen teacher is not part of what is trained)."""
        return count_params(self.student)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        return self.student.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.student.load_state_dict(state_dict, strict=strict, assign=assign)


class RecordTeacher(Callback):
    """Writes the teacher's config and the loss settings into the run manifest at start."""

    def __init__(self, model: DistillationModel):
        self.model = model

    def on_start(self, trainer) -> None:
        if trainer.run is None:  # not the main process
            return
        trainer.run.update_manifest(distillation={
            "teacher_config": self.model.teacher.config.to_dict(),
            "student_config": self.model.student.config.to_dict(),
            "temperature": self.model.temperature, "alpha": self.model.alpha,
        })


def distill(
    teacher: nn.Module,
    student: ModelConfig | nn.Module,
    data: Any,
    *,
    steps: int,
    temperature: float = 2.0,
    alpha: float = 0.5,
    teacher_tokenizer: Any = None,
    seed: int = 0,
    **train_settings: Any,
) -> nn.Module:
    """Train ``student`` (a config, built with ``seed``, or a model) to match ``teacher`` on
    ``data`` for ``steps`` steps with :class:`llmlab.Trainer`; returns the trained student.

    ``train_settings`` go to the Trainer (``lr``, ``batch_size``, ``run_dir``, ...). The run
    (its id is ``student.run_id``) records the student's config as its ``config`` and the teacher's under
    ``distillation``. ``teacher_tokenizer``, when given, must equal the data's tokenizer.
    """
    from llmlab.models import build_model
    from llmlab.train import Trainer

    if isinstance(student, ModelConfig):
        student = build_model(student, seed=seed)
    _check_compatible(teacher, student, data, teacher_tokenizer)
    device = next(student.parameters()).device
    wrapper = DistillationModel(student, teacher.to(device), temperature=temperature,
                                alpha=alpha)
    settings = {"run_name": "distill", "seed": seed, **train_settings}
    callbacks = [RecordTeacher(wrapper), *settings.pop("callbacks", [])]
    trainer = Trainer(wrapper, data, max_steps=steps, callbacks=callbacks, **settings)
    student.run_id = trainer.fit().id
    return student.eval()


def _check_mix(temperature: float, alpha: float) -> None:
    if not temperature > 0:
        raise InputError(f"temperature={temperature!r} must be positive (typically 1 to 10).")
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha={alpha!r} must be in [0, 1]: the weight of the teacher's soft "
                         "targets against the labels.")


def _check_compatible(teacher: nn.Module, student: nn.Module, data: Any,
                      teacher_tokenizer: Any) -> None:
    t_cfg, s_cfg = getattr(teacher, "config", None), getattr(student, "config", None)
    if not isinstance(t_cfg, ModelConfig) or not isinstance(s_cfg, ModelConfig):
        raise InputError("distill needs llmlab models (built with llmlab.build_model or "
                         "loaded with llmlab.load) for teacher and student.")
    t_out, s_out = t_cfg.n_labels or t_cfg.vocab_size, s_cfg.n_labels or s_cfg.vocab_size
    if t_out != s_out:
        what = "labels" if t_cfg.n_labels else "vocabulary ids"
        raise InputError(
            f"the teacher predicts {t_out} {what} but the student {s_out}; distillation matches "
            "their distributions id by id, so both must use the same tokenizer: build the "
            f"student with vocab_size={t_cfg.vocab_size} (and n_labels={t_cfg.n_labels}).")
    if t_cfg.family != s_cfg.family:
        raise InputError(f"teacher ({t_cfg.family}) and student ({s_cfg.family}) are different "
                         "model families; distill between models of one family.")
    data_tok = getattr(data, "tokenizer", None)
    if teacher_tokenizer is not None and data_tok is not None and (
            teacher_tokenizer.to_dict() != data_tok.to_dict()):
        raise InputError(
            "the teacher's tokenizer differs from the data's tokenizer, so the same id means "
            "different tokens to teacher and student; make the data with the teacher's "
            "tokenizer (e.g. CausalLMData.from_text(text, teacher_tokenizer, ...)).")
