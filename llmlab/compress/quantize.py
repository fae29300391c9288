"""Post-training quantization of a model's linear layers for CPU inference.

Three modes, each replacing every ``nn.Linear`` with a :class:`QuantizedLinear` that stores
int8 (or packed int4) weights and their scales as plain tensors, so the model still saves
as safetensors:

- ``"int8"``: dynamic int8. Weights are int8 per output channel; each batch of activations
  is quantized on the fly and the product runs in int8 through PyTorch's own quantized
  kernels (``torch.ops.quantized.linear_dynamic``, fbgemm / oneDNN). Fastest on CPU.
- ``"int8-weight"``: weight-only int8 per output channel; weights are dequantized in the
  forward pass. Smaller, not faster (works on any device).
- ``"int4-weight"``: weight-only int4 in groups of 32 input columns, two weights per byte.

torchao (0.18) was tried as the engine: it installs beside torch 2.13, but its CPU int8
path was ~100x slower than float32 here, so PyTorch's own kernels are used instead.

>>> import llmlab
>>> model = llmlab.build_model(llmlab.ModelConfig.preset("baby-char"), seed=0).eval()
>>> small = quantize(model, "int8")
>>> type(small.decoder.blocks[0].attn.qkv).__name__
'QuantizedLinear'
"""

from __future__ import annotations

import collections
import copy
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from llmlab.errors import InputError

MODES = ("int8", "int8-weight", "int4-weight")
INT4_GROUP = 32


class QuantizedLinear(nn.Module):
    """A linear layer with quantized weights: ``y = x W^T + b`` with ``W ≈ q * scale``.

    ``qweight`` is int8 ``[out, in]`` (int8 modes) or uint8 ``[out, in / 2]`` holding two
    int4 values per byte (``int4-weight``); ``scales`` is ``[out]`` or ``[out, in / 32]``.
    ``weight`` gives the dequantized float matrix, so code that reads ``.weight`` (its shape,
    dtype or values) keeps working. ``tied`` is True when the float matrix it replaced is also
    another layer's parameter (a head tied to the embeddings): the model counts it there once.
    """

    def __init__(self, in_features: int, out_features: int, mode: str, *, bias: bool,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.in_features, self.out_features, self.mode = in_features, out_features, mode
        self.compute_dtype = dtype
        self.tied = False
        packed_in = in_features // 2 if mode == "int4-weight" else in_features
        groups = in_features // INT4_GROUP if mode == "int4-weight" else 1
        qdtype = torch.uint8 if mode == "int4-weight" else torch.int8
        self.register_buffer("qweight", torch.zeros(out_features, packed_in, dtype=qdtype))
        # int8: one scale per row [out]; int4: one per group of 32 columns [out, groups]
        scales = torch.ones(out_features, groups) if mode == "int4-weight" else torch.ones(
            out_features)
        self.register_buffer("scales", scales)
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)
        # the mode travels with the weights, so a saved model loads back in the same mode
        self.register_buffer("qmode", torch.tensor(MODES.index(mode), dtype=torch.uint8))
        self._packed = None  # the int8 kernel's prepacked weights, built on first use

    @classmethod
    def from_linear(cls, linear: nn.Linear, mode: str) -> QuantizedLinear:
        """Quantize a float ``nn.Linear`` (its weights are read, not changed)."""
        weight = linear.weight.detach().float()
        layer = cls(linear.in_features, linear.out_features, mode,
                    bias=linear.bias is not None, dtype=linear.weight.dtype)
        layer = layer.to(linear.weight.device)
        qweight, scales = (quantize_int4(weight) if mode == "int4-weight"
                           else quantize_int8(weight))
        layer.qweight.copy_(qweight)
        layer.scales.copy_(scales)
        if linear.bias is not None:
            layer.bias.copy_(linear.bias.detach().float())
        return layer

    @property
    def weight(self) -> Tensor:
        """The dequantized ``[out, in]`` weight matrix (a new tensor, in the compute dtype)."""
        if self.mode == "int4-weight":
            return dequantize_int4(self.qweight, self.scales).to(self.compute_dtype)
        return (self.qweight.float() * self.scales[:, None]).to(self.compute_dtype)

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "int8" and x.device.type == "cpu":
            y = torch.ops.quantized.linear_dynamic(x.float(), self._prepacked(), True)
            return y.to(x.dtype)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, self.weight.to(x.dtype), bias)

    def _prepacked(self):
        if self._packed is None:
            with warnings.catch_warnings():  # torch marks quantized tensor creation deprecated
                warnings.simplefilter("ignore", UserWarning)
                zero = torch.zeros(self.out_features, dtype=torch.long)
                qw = torch._make_per_channel_quantized_tensor(
                    self.qweight, self.scales.double(), zero, 0)
                self._packed = torch.ops.quantized.linear_prepack(qw, self.bias)
        return self._packed

    def _load_from_state_dict(self, *args, **kwargs):
        self._packed = None
        super()._load_from_state_dict(*args, **kwargs)

    def _apply(self, fn, recurse=True):
        self._packed = None
        return super()._apply(fn, recurse)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"mode={self.mode!r}, bias={self.bias is not None}")


def quantize(model: nn.Module, mode: str = "int8") -> nn.Module:
    """A copy of ``model`` whose linear layers are quantized (the original is untouched).

    ``mode`` is ``"int8"`` (dynamic int8, for CPU inference), ``"int8-weight"`` or
    ``"int4-weight"`` (weight-only). The copy is in eval mode; ``llmlab.generate`` and
    ``llmlab.score`` work on it as on the float model. Quantize a float model only once.

    >>> small = quantize(model, "int4-weight")                     # doctest: +SKIP
    >>> llmlab.compress.model_size(small)                           # doctest: +SKIP
    """
    if mode not in MODES:
        raise InputError(f"unknown quantization mode {mode!r}; use one of {', '.join(MODES)}.")
    if not isinstance(model, nn.Module):
        raise InputError(f"quantize needs a torch model, got {type(model).__name__}.")
    already = quantized_mode(model)
    if already is not None:
        raise InputError(
            f"the model is already quantized ({already}); quantizing twice would compound the "
            "rounding error. Quantize the float model instead (keep it: quantize returns a copy)."
        )
    _check_mode_fits(model, mode)
    quantized = copy.deepcopy(model).eval()
    replace_linears(quantized, mode)
    return quantized


def replace_linears(model: nn.Module, mode: str | dict[str, str]) -> None:
    """Swap ``nn.Linear`` layers of ``model`` (in place) for :class:`QuantizedLinear` ones:
    all of them in one ``mode``, or those named in a ``{layer name: mode}`` dict."""
    holders = collections.Counter(id(p) for _, p in model.named_parameters(remove_duplicate=False))
    for prefix, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            name = f"{prefix}.{child_name}" if prefix else child_name
            chosen = mode.get(name) if isinstance(mode, dict) else mode
            if isinstance(child, nn.Linear) and chosen is not None:
                layer = QuantizedLinear.from_linear(child, chosen)
                layer.tied = holders[id(child.weight)] > 1
                setattr(module, child_name, layer)


def quantized_mode(model: nn.Module) -> str | None:
    """The quantization mode of ``model``'s layers, or None for a float model."""
    for module in model.modules():
        if isinstance(module, QuantizedLinear):
            return module.mode
    return None


def quantize_int8(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Symmetric per-row int8: ``(q [out, in] int8, scale [out])`` with ``weight ≈ q * scale``."""
    scales = (weight.abs().amax(dim=1) / 127.0).clamp(min=1e-12)
    q = torch.round(weight / scales[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scales


def quantize_int4(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Symmetric int4 in groups of 32 columns: ``(packed [out, in/2] uint8, scales [out, in/32])``.

    Values in [-8, 7] are stored offset by 8, the even column in the low nibble.
    """
    out_f, in_f = weight.shape
    groups = weight.reshape(out_f, in_f // INT4_GROUP, INT4_GROUP)
    scales = (groups.abs().amax(dim=-1) / 7.0).clamp(min=1e-12)
    q = torch.round(groups / scales[..., None]).clamp(-8, 7).to(torch.int16) + 8
    q = q.reshape(out_f, in_f).to(torch.uint8)
    return q[:, 0::2] | (q[:, 1::2] << 4), scales


def dequantize_int4(packed: Tensor, scales: Tensor) -> Tensor:
    """The float ``[out, in]`` matrix behind :func:`quantize_int4`'s output."""
    low = (packed & 0x0F).to(torch.int8) - 8
    high = (packed >> 4).to(torch.int8) - 8
    q = torch.stack([low, high], dim=-1).reshape(packed.shape[0], -1).float()
    out_f, in_f = q.shape
    return (q.reshape(out_f, -1, INT4_GROUP) * scales[..., None]).reshape(out_f, in_f)


def _check_mode_fits(model: nn.Module, mode: str) -> None:
    device = next(model.parameters()).device
    if mode == "int8" and device.type != "cpu":
        raise InputError(f"dynamic int8 runs on the CPU but the model is on {device}; move it "
                         "with model.cpu(), or use mode='int8-weight' on this device.")
    if mode != "int4-weight":
        return
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and module.in_features % INT4_GROUP:
            raise InputError(
                f"int4 quantizes groups of {INT4_GROUP} input columns, but layer {name!r} has "
                f"{module.in_features}; use mode='int8-weight', or a width divisible by "
                f"{INT4_GROUP}.")
