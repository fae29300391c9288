"""Pruning: zero the smallest weights, or remove whole attention heads.

>>> import llmlab
>>> model = llmlab.build_model(llmlab.ModelConfig.preset("baby-char"), seed=0)
>>> sparse = prune(model, amount=0.5)                       # half of each matrix set to zero
>>> smaller = prune(model, amount=0.25, structured="heads")  # a quarter of the heads removed
>>> smaller.num_params() < model.num_params()
True
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from llmlab.compress import heads as head_pruning
from llmlab.compress.quantize import quantized_mode
from llmlab.errors import InputError

IMPORTANCE = ("gradient", "entropy", "magnitude")


def prune(
    model: nn.Module,
    amount: float = 0.3,
    *,
    structured: str | None = None,
    importance: str | None = None,
    data: Any = None,
    score_batches: int = 8,
    batch_size: int = 8,
    finetune_steps: int = 0,
    **train_settings: Any,
) -> nn.Module:
    """A pruned copy of ``model`` (the original is untouched).

    ``structured=None``: unstructured magnitude pruning; in every linear layer the
    ``amount`` fraction of weights smallest in absolute value are set to zero, permanently
    (``torch.nn.utils.prune`` L1, then made permanent). The model keeps its shapes.

    ``structured="heads"``: the ``amount`` fraction of attention heads, least important
    first and ranked across layers, are removed, so the model really shrinks. ``importance``
    is ``"gradient"`` (Michel et al. 2019; needs ``data``), ``"entropy"`` (mean attention
    entropy; needs ``data``) or ``"magnitude"`` (output-projection norm; no data); default
    ``"gradient"`` with data, else ``"magnitude"``. ``score_batches`` validation batches of
    ``batch_size`` score the heads.

    ``finetune_steps > 0`` then trains the pruned copy on ``data`` with :class:`llmlab.Trainer`
    (``train_settings`` go to it, e.g. ``lr=3e-4, run_dir=...``); the run's id is
    ``pruned.run_id``.
    """
    _check_amount(amount)
    if quantized_mode(model) is not None:
        raise InputError("the model is quantized; prune the float model, then quantize.")
    if structured not in (None, "heads"):
        raise InputError(f"structured={structured!r} is not supported; use None (unstructured) "
                         "or 'heads'.")
    if finetune_steps and data is None:
        raise InputError("fine-tuning after pruning needs data=; pass the training data.")
    pruned = copy.deepcopy(model)
    if structured == "heads":
        _prune_heads(pruned, amount, importance, data, score_batches=score_batches,
                     batch_size=batch_size)
    else:
        _prune_magnitude(pruned, amount)
    if finetune_steps:
        from llmlab.train import Trainer

        settings = {"batch_size": batch_size, "run_name": "pruned-finetune",
                    "progress": False, **train_settings}
        trainer = Trainer(pruned, data, max_steps=finetune_steps, **settings)
        pruned.run_id = trainer.fit().id
    return pruned.eval()


def sparsity(model: nn.Module) -> float:
    """Fraction of the linear layers' weights that are exactly zero."""
    total = zeros = 0
    for layer in _prunable_linears(model):
        total += layer.weight.numel()
        zeros += int((layer.weight == 0).sum())
    return zeros / max(total, 1)


def _check_amount(amount: float) -> None:
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not (
            0.0 <= amount < 1.0):
        raise InputError(f"amount={amount!r} must be a fraction in [0, 1): the share of weights "
                         "(or heads) to remove, e.g. amount=0.3.")


def _prunable_linears(model: nn.Module) -> list[nn.Linear]:
    """Linear layers whose weight is not shared with an embedding table (a tied LM head)."""
    tables = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    return [m for m in model.modules() if isinstance(m, nn.Linear) and id(m.weight) not in tables]


def _prune_magnitude(model: nn.Module, amount: float) -> None:
    from torch.nn.utils import prune as torch_prune

    for layer in _prunable_linears(model):
        torch_prune.l1_unstructured(layer, name="weight", amount=float(amount))
        torch_prune.remove(layer, "weight")


def _prune_heads(model: nn.Module, amount: float, importance: str | None, data: Any, *,
                 score_batches: int, batch_size: int) -> None:
    importance = importance or ("gradient" if data is not None else "magnitude")
    if importance not in IMPORTANCE:
        raise InputError(f"importance={importance!r} is unknown; use one of "
                         f"{', '.join(IMPORTANCE)}.")
    if not head_pruning.attention_layers(model):
        raise InputError("the model has no self-attention layers to prune.")
    if importance == "magnitude":
        scores = head_pruning.magnitude_importance(model)
    else:
        if data is None:
            raise InputError(f"importance={importance!r} scores heads on data; pass data= "
                             "(an llmlab.data batch maker), or use importance='magnitude'.")
        batches = _scoring_batches(model, data, score_batches, batch_size)
        score = (head_pruning.gradient_importance if importance == "gradient"
                 else head_pruning.entropy_importance)
        scores = score(model, batches)
    head_pruning.remove_heads(model, head_pruning.heads_to_remove(model, scores, amount))


def _scoring_batches(model: nn.Module, data: Any, n: int, batch_size: int) -> list[dict]:
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(0)
    return [{k: v.to(device) for k, v in data.get_batch("val", batch_size, generator).items()}
            for _ in range(n)]
