"""Loading checkpoints of compressed models (quantized and/or head-pruned).

``llmlab.save`` writes a compressed model as it writes any other: the config it was built
from and its actual tensors (int8 or int4 weights, scales and mode; smaller attention
matrices). ``llmlab.load`` rebuilds the model from the config,
reshapes it to fit those tensors with :func:`shape_like` (fewer heads per layer, quantized
layers), and loads them.

>>> import llmlab, tempfile
>>> model = llmlab.build_model(llmlab.ModelConfig.preset("baby-char"), seed=0)
>>> small = llmlab.compress.prune(model, amount=0.25, structured="heads")
>>> folder = llmlab.save(small, tempfile.mkdtemp() + "/pruned")
>>> again, tok = llmlab.load(folder)
>>> again.num_params() == small.num_params()
True
"""

from __future__ import annotations

import torch
from torch import nn

from llmlab.compress.heads import attention_layers, remove_heads
from llmlab.compress.quantize import MODES, replace_linears


def shape_like(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Reshape a freshly built ``model`` (in place) so that ``state``'s tensors fit it: remove
    the heads a layer's saved ``kept_heads`` lacks, quantize the layers stored quantized."""
    removed = {}
    for name, layer in attention_layers(model).items():
        kept = state.get(f"{name}.kept_heads")
        if kept is not None:
            removed[name] = sorted(set(range(layer.n_head)) - set(kept.tolist()))
    remove_heads(model, removed)
    modes = {key[: -len(".qmode")]: MODES[int(code)] for key, code in state.items()
             if key.endswith(".qmode")}
    if modes:
        replace_linears(model, modes)
