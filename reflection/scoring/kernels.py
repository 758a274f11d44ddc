"""Which matrix-multiply kernel the fast path's linear layers use on a CPU.

PyTorch sends fp32 `F.linear` on a CPU to MKL's sgemm. MKL picks its code path by CPU vendor,
and on AMD processors it does not use AVX-512: on this project's 2-core AMD EPYC (Zen 5) sgemm
reaches about 210 GFLOP/s, while oneDNN (also inside every x86 PyTorch build, through
`torch.ops.mkldnn._linear_pointwise`) reaches about 470 on the same shapes, in fp32, from the
same dense weights (no copy, no reordering kept). With about 80 % of a student's time in its
linear layers, that is most of the fast path's speed on such a machine.

Neither kernel wins everywhere, so nothing is assumed from the vendor: the first time a model
is scored, `linear_kernel` times both on that model's own layer shape and keeps the faster
(oneDNN only when it is clearly faster). `fast_linear` is a `TorchFunctionMode` that reroutes
fp32 CPU `F.linear` calls while the fast path runs; the model itself is never changed, so the
seed-style reference path (`reference.py`) keeps PyTorch's default kernels and stays an
independent yardstick. `REFLECTION_LINEAR_KERNEL=mkl|onednn` overrides the choice.
"""

from __future__ import annotations

import contextlib
import os
import time

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

# oneDNN must beat the default by this much to be chosen: a near tie is not worth the detour.
MARGIN = 1.15


def _onednn_linear():
    ops = getattr(torch.ops, "mkldnn", None)
    if not torch.backends.mkldnn.is_available() or ops is None:
        return None
    try:
        return ops._linear_pointwise
    except (AttributeError, RuntimeError):
        return None


def _best_of(fn, repeats: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


_CHOICES: dict[tuple[int, ...], str] = {}


def linear_kernel(model, device: str) -> str:
    """'onednn' when oneDNN's fp32 linear is clearly faster here on the model's layers, else
    'default'. Measured once per process and layer shape (about 20 ms)."""
    if not str(device).startswith("cpu"):
        return "default"
    onednn = _onednn_linear()
    if onednn is None:
        return "default"
    forced = os.environ.get("REFLECTION_LINEAR_KERNEL", "").strip().lower()
    if forced in ("onednn", "mkl", "default"):
        return "onednn" if forced == "onednn" else "default"
    weight = _widest_linear_weight(model)
    if weight is None or weight.dtype != torch.float32:
        return "default"
    shape = tuple(weight.shape)
    if shape not in _CHOICES:
        with torch.inference_mode():
            x = torch.randn(256, shape[1])
            try:
                fast = _best_of(lambda: onednn(x, weight, None, "none", [], ""))
            except RuntimeError:
                fast = float("inf")
            slow = _best_of(lambda: F.linear(x, weight))
        _CHOICES[shape] = "onednn" if slow > fast * MARGIN else "default"
    return _CHOICES[shape]


def _widest_linear_weight(model):
    """The weight of the model's largest per-layer linear (an MLP projection, not the head)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    weights = [
        module.weight
        for module in model.modules()
        if isinstance(module, torch.nn.Linear) and module is not head
    ]
    return max(weights, key=torch.Tensor.numel, default=None)


class OneDnnLinear(TorchFunctionMode):
    """Reroutes `F.linear` on dense fp32 CPU tensors to oneDNN; every other call runs as is."""

    def __init__(self, op):
        super().__init__()
        self.op = op

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear:
            x, weight = args[0], args[1]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            if (
                x.dtype == torch.float32
                and weight.dtype == torch.float32
                and x.device.type == "cpu"
                and x.layout == torch.strided
                and weight.layout == torch.strided
                and weight.dim() == 2
            ):
                return self.op(x.contiguous(), weight, bias, "none", [], "")
        return func(*args, **kwargs)


def fast_linear(model, device: str):
    """A context in which fp32 CPU linear layers run on the kernel `linear_kernel` chose."""
    if linear_kernel(model, device) != "onednn":
        return contextlib.nullcontext()
    return OneDnnLinear(_onednn_linear())
