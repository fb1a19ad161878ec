"""max_unpool1d/2d/3d with torch.nn.functional's signatures (re-exported by
fastpool.functional), scriptable as torch's are.

The output size is torch's: its own ``_unpool_output_size`` (the default
from kernel_size, stride and padding, a given size checked against it, with
its errors), then the op, which makes aten's checks. As in torch, 1-d runs the
2-d op over the tensors unsqueezed to (N,) C, L, 1.

torch.export's dynamic sizes stay symbolic in the output size; under
torch.jit.trace (the legacy ONNX exporter) the sizes are traced as constants.

Duplicate indices (torch: undefined): within a plane the last in raster order
wins, on CPU and CUDA alike. An index outside the output raises torch's CPU
error on every device (CUDA included, where torch asserts on the device).
"""
from typing import List, Optional

import torch
from torch import Tensor
from torch._jit_internal import BroadcastingList1, BroadcastingList2, BroadcastingList3
from torch.nn.functional import _unpool_output_size
from torch.nn.modules.utils import _pair, _single, _triple

__all__ = ["max_unpool1d", "max_unpool2d", "max_unpool3d"]


def _ints(sizes: List[int]) -> List[int]:
    # A given output_size may hold 0-dim tensors (torch's parser takes them): the op takes ints.
    if torch.jit.is_scripting():
        return sizes
    # SymInts (torch.export's dynamic sizes) stay symbolic: int() would specialize them.
    return [s if isinstance(s, torch.SymInt) else int(s) for s in sizes]


class _Sizes:
    # A stand-in for the input in torch's _unpool_output_size, which reads only input.size().
    def __init__(self, sizes: List[int]):
        self.sizes = sizes

    def size(self) -> List[int]:
        return self.sizes


def _output_size(input: Tensor, kernel: List[int], stride: List[int], padding: List[int],
                 output_size: Optional[List[int]]) -> List[int]:
    if not torch.jit.is_scripting():
        if torch.jit.is_tracing():
            # torch.jit.trace (and so the legacy ONNX exporter) gives sizes as
            # 0-dim tensors, which torch's checks cannot branch on; the op's
            # output size is a list of constants in the trace anyway, so the
            # sizes are read as ints (a TracerWarning says so).
            sizes = [int(s) for s in input.shape]
            if output_size is not None:
                output_size = [int(s) for s in output_size]
            return _unpool_output_size(_Sizes(sizes), kernel, stride, padding, output_size)  # type: ignore[arg-type]
    return _ints(_unpool_output_size(input, kernel, stride, padding, output_size))


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size: BroadcastingList1[int],
                 stride: Optional[BroadcastingList1[int]] = None, padding: BroadcastingList1[int] = 0,
                 output_size: Optional[BroadcastingList1[int]] = None) -> Tensor:
    """Same as :func:`torch.nn.functional.max_unpool1d`, and bit-identical to it."""
    kernel = _single(kernel_size)
    if stride is not None:
        step = _single(stride)
    else:
        step = kernel
    size = _output_size(input, kernel, step, _single(padding), output_size)
    return torch.ops.fastpool.max_unpool2d(input.unsqueeze(-1), indices.unsqueeze(-1), size + [1]).squeeze(-1)


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size: BroadcastingList2[int],
                 stride: Optional[BroadcastingList2[int]] = None, padding: BroadcastingList2[int] = 0,
                 output_size: Optional[BroadcastingList2[int]] = None) -> Tensor:
    """Same as :func:`torch.nn.functional.max_unpool2d`, and bit-identical to it."""
    kernel = _pair(kernel_size)
    if stride is not None:
        step = _pair(stride)
    else:
        step = kernel
    size = _output_size(input, kernel, step, _pair(padding), output_size)
    return torch.ops.fastpool.max_unpool2d(input, indices, size)


def max_unpool3d(input: Tensor, indices: Tensor, kernel_size: BroadcastingList3[int],
                 stride: Optional[BroadcastingList3[int]] = None, padding: BroadcastingList3[int] = 0,
                 output_size: Optional[BroadcastingList3[int]] = None) -> Tensor:
    """Same as :func:`torch.nn.functional.max_unpool3d`, and bit-identical to it."""
    kernel = _triple(kernel_size)
    if stride is not None:
        step = _triple(stride)
    else:
        step = kernel
    pad = _triple(padding)
    size = _output_size(input, kernel, step, pad, output_size)
    return torch.ops.fastpool.max_unpool3d(input, indices, size, step, pad)
