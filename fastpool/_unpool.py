"""max_unpool1d/2d/3d with torch.nn.functional's signatures (re-exported by
fastpool.functional), scriptable as torch's are.

The output size is torch's: its own ``_unpool_output_size`` (the default
from kernel_size, stride and padding, a given size checked against it, with
its errors), then the op, which makes aten's checks. As in torch, 1-d runs the
2-d op over the tensors unsqueezed to (N,) C, L, 1.

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
    return [int(s) for s in sizes]


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size: BroadcastingList1[int],
                 stride: Optional[BroadcastingList1[int]] = None, padding: BroadcastingList1[int] = 0,
                 output_size: Optional[BroadcastingList1[int]] = None) -> Tensor:
    """Same as :func:`torch.nn.functional.max_unpool1d`, and bit-identical to it."""
    kernel = _single(kernel_size)
    if stride is not None:
        step = _single(stride)
    else:
        step = kernel
    size = _ints(_unpool_output_size(input, kernel, step, _single(padding), output_size))
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
    size = _ints(_unpool_output_size(input, kernel, step, _pair(padding), output_size))
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
    size = _ints(_unpool_output_size(input, kernel, step, pad, output_size))
    return torch.ops.fastpool.max_unpool3d(input, indices, size, step, pad)
