"""Smaller and faster models: quantization, pruning, distillation, and their sizes.

>>> small = llmlab.compress.quantize(model, "int8")    # doctest: +SKIP
>>> pruned = llmlab.compress.prune(model, amount=0.3, structured="heads")  # doctest: +SKIP
>>> student = llmlab.compress.distill(teacher, llmlab.ModelConfig.preset("baby-char"),
...                                   data, steps=1000)  # doctest: +SKIP
>>> llmlab.compress.model_size(small)   # params, memory and disk bytes  # doctest: +SKIP

Compressed models save with ``llmlab.save`` and load back with ``llmlab.load``.
"""

from llmlab.compress.distill import DistillationModel, distill, distillation_loss
from llmlab.compress.heads import head_counts, remove_heads
from llmlab.compress.prune import prune, sparsity
from llmlab.compress.quantize import MODES, QuantizedLinear, quantize, quantized_mode
from llmlab.compress.size import ModelSize, count_params, model_size

__all__ = ["MODES", "DistillationModel", "ModelSize", "QuantizedLinear", "count_params", "distill",
           "distillation_loss", "head_counts", "model_size", "prune", "quantize",
           "quantized_mode", "remove_heads", "sparsity"]
