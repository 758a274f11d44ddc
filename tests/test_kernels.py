"""The fast path's choice of linear kernel (reflection/scoring/kernels.py).

oneDNN's fp32 linear must give what `F.linear` gives (to fp32 rounding) for every shape a
decoder passes it, anything it does not handle must fall through untouched, and the choice
must follow the override and never apply off the CPU.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from reflection.scoring import kernels  # noqa: E402

needs_onednn = pytest.mark.skipif(
    kernels._onednn_linear() is None, reason="this PyTorch build has no oneDNN linear"
)


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.up = torch.nn.Linear(64, 256, bias=False)
        self.down = torch.nn.Linear(256, 64, bias=True)
        self.head = torch.nn.Linear(64, 1000, bias=False)

    def get_output_embeddings(self):
        return self.head

    def forward(self, x):
        return self.head(self.down(F.silu(self.up(x))))


def _calls(monkeypatch):
    """Count the calls that reach the oneDNN op."""
    op, seen = kernels._onednn_linear(), []

    def counting(*args):
        seen.append(args[0].shape)
        return op(*args)

    monkeypatch.setattr(kernels, "_onednn_linear", lambda: counting)
    return seen


@needs_onednn
@pytest.mark.parametrize("shape", [(7, 64), (3, 11, 64), (2, 3, 5, 64)], ids=["2d", "3d", "4d"])
def test_onednn_mode_equals_f_linear(shape, monkeypatch):
    monkeypatch.setenv("REFLECTION_LINEAR_KERNEL", "onednn")
    seen = _calls(monkeypatch)
    model = _Tiny().eval()
    x = torch.randn(*shape)
    with torch.inference_mode():
        expected = model(x)
        with kernels.fast_linear(model, "cpu"):
            got = model(x)
    assert len(seen) == 3  # every linear went through oneDNN ...
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)  # ... with the same values
    with torch.inference_mode():
        assert torch.equal(model(x), expected)  # and the mode ends with the block


@needs_onednn
def test_non_contiguous_input_and_bias(monkeypatch):
    monkeypatch.setenv("REFLECTION_LINEAR_KERNEL", "onednn")
    x = torch.randn(64, 9).t()  # a transposed view, as attention outputs can be
    w, b = torch.randn(32, 64), torch.randn(32)
    with torch.inference_mode(), kernels.fast_linear(_Tiny(), "cpu"):
        got = F.linear(x, w, b)
        got_kw = F.linear(x, w, bias=b)
    torch.testing.assert_close(got, x @ w.t() + b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_kw, got)


@needs_onednn
def test_other_dtypes_fall_through(monkeypatch):
    monkeypatch.setenv("REFLECTION_LINEAR_KERNEL", "onednn")
    seen = _calls(monkeypatch)
    x, w = torch.randn(4, 8, dtype=torch.float64), torch.randn(3, 8, dtype=torch.float64)
    with torch.inference_mode(), kernels.fast_linear(_Tiny(), "cpu"):
        got = F.linear(x, w)
    assert seen == []
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, x @ w.t())


def test_the_choice(monkeypatch):
    model = _Tiny()
    monkeypatch.setenv("REFLECTION_LINEAR_KERNEL", "mkl")
    assert kernels.linear_kernel(model, "cpu") == "default"
    assert isinstance(kernels.fast_linear(model, "cpu"), type(kernels.contextlib.nullcontext()))
    monkeypatch.setenv("REFLECTION_LINEAR_KERNEL", "onednn")
    # Never off the CPU, whatever the override says.
    assert kernels.linear_kernel(model, "cuda") == "default"
    assert kernels.linear_kernel(model, "cuda:1") == "default"
    if kernels._onednn_linear() is not None:
        assert kernels.linear_kernel(model, "cpu") == "onednn"


def test_measured_choice_is_cached_per_shape(monkeypatch):
    monkeypatch.delenv("REFLECTION_LINEAR_KERNEL", raising=False)
    monkeypatch.setattr(kernels, "_CHOICES", {})
    model = _Tiny()
    first = kernels.linear_kernel(model, "cpu")
    assert first in ("default", "onednn")
    if kernels._onednn_linear() is not None:
        # The widest per-layer linear was timed, not the head.
        assert list(kernels._CHOICES) == [(256, 64)]
    monkeypatch.setattr(kernels, "_best_of", lambda fn: pytest.fail("timed twice"))
    assert kernels.linear_kernel(model, "cpu") == first


def test_a_clearly_faster_kernel_wins(monkeypatch):
    if kernels._onednn_linear() is None:
        pytest.skip("this PyTorch build has no oneDNN linear")
    monkeypatch.delenv("REFLECTION_LINEAR_KERNEL", raising=False)
    for timings, expected in (
        ((1.0, 3.0), "onednn"),
        ((1.0, 1.05), "default"),
        ((2.0, 1.0), "default"),
    ):
        monkeypatch.setattr(kernels, "_CHOICES", {})
        times = iter(timings)
        monkeypatch.setattr(kernels, "_best_of", lambda fn, times=times: next(times))
        assert kernels.linear_kernel(_Tiny(), "cpu") == expected, timings


def test_the_timed_layer_is_the_widest_linear_not_a_norm_or_the_head():
    nn = torch.nn
    model = nn.Sequential(nn.LayerNorm(4), nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 16)))
    assert kernels._widest_linear_weight(model).shape == (16, 8)
    assert kernels._widest_linear_weight(_Tiny()).shape == (256, 64)  # the head is 1000 x 64
    assert kernels._widest_linear_weight(nn.LayerNorm(4)) is None
