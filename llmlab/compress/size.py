"""How big a model is: parameters, bytes in memory and bytes on disk.

>>> import llmlab
>>> model = llmlab.build_model(llmlab.ModelConfig.preset("baby-char"))
>>> model_size(model).params
804096
>>> count_params(llmlab.compress.quantize(model, "int8"))   # the same weights, now in int8
804096
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from llmlab.compress.quantize import QuantizedLinear


@dataclass(frozen=True)
class ModelSize:
    """Size of one model.

    ``params`` counts weights as the float model would (a quantized matrix counts its
    elements, tied weights count once); ``memory_bytes`` is what its tensors take in memory
    (parameters and buffers); ``disk_bytes`` is the size of its safetensors weights file.
    """

    params: int
    memory_bytes: int
    disk_bytes: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def __str__(self) -> str:
        return (f"{self.params:,} parameters, {self.memory_bytes / 2**20:.2f} MiB in memory, "
                f"{self.disk_bytes / 2**20:.2f} MiB on disk")


def count_params(model: nn.Module) -> int:
    """Parameters of ``model`` as its float version has them: a quantized matrix counts its
    elements (it is a buffer, not a parameter) and tied weights count once, quantized or not.
    ``num_params()`` of llmlab's models is this."""
    params = sum(p.numel() for p in model.parameters())
    for module in model.modules():
        if isinstance(module, QuantizedLinear):
            params += 0 if module.tied else module.in_features * module.out_features
            params += 0 if module.bias is None else module.out_features
    return params


def model_size(model: nn.Module) -> ModelSize:
    """Parameters, memory and on-disk size of ``model`` (float, quantized or pruned).

    >>> model_size(llmlab.compress.quantize(model, "int8")).disk_bytes   # doctest: +SKIP
    """
    from safetensors.torch import save

    from llmlab.checkpoint import unique_tensors

    tensors = unique_tensors(dict(model.named_parameters()) | dict(model.named_buffers()))
    params = count_params(model)
    memory = sum(t.numel() * t.element_size() for t in tensors.values())
    disk = len(save(unique_tensors(model.state_dict()), metadata={"format": "llmlab-checkpoint"}))
    return ModelSize(params=params, memory_bytes=memory, disk_bytes=disk)
