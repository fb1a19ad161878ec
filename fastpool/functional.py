"""Functional API with torch.nn.functional's signatures.

Scriptable as torch's own functions are: TorchScript compiles a call to a
public function as one to one of two typed functions, chosen by
``return_indices`` (a constant there, as for torch's); their size arguments
are ``BroadcastingList``s (an int or a list of ints), and the eager-only
argument checks sit under ``not torch.jit.is_scripting()``, which TorchScript
does not compile.
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor
from torch._jit_internal import BroadcastingList1, BroadcastingList2, BroadcastingList3, boolean_dispatched

from ._arg_parser import adaptive_max_pool_args, max_pool_args

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
           "adaptive_max_pool3d"]
__all__ += ["max_unpool1d", "max_unpool2d", "max_unpool3d"]

def _size_int(size):
    return int(size) if isinstance(size, torch.Tensor) else size


def _adaptive_output_size(dims, input, output_size):
    """output_size as the list of ints the op takes, after torch's argument
    parsing (its errors; None keeps the input's size). Eager only: TorchScript
    types it as int[dims] already and refuses None entries, as for torch.
    Under torch.jit.trace (the legacy ONNX exporter) sizes are traced 0-dim
    tensors; the op takes ints, as the output size is fixed at export."""
    sizes = adaptive_max_pool_args(dims, input, output_size)
    return [_size_int(s) for s in sizes] if isinstance(sizes, (list, tuple)) else _size_int(sizes)


def _scripted_as(with_indices, without_indices, return_indices_position):
    """Has TorchScript compile calls to the decorated function as it compiles
    torch's max_pool functions (``torch._jit_internal.boolean_dispatch``): as
    calls to one of two typed functions, chosen by `return_indices`, which
    must be a constant there. The decorated function stays a plain function
    with torch's signature (torch's dispatch wrapper takes ``*args, **kwargs``
    and lives in a file torch.compile does not trace into)."""
    def register(public):
        boolean_dispatched[public] = {"if_true": with_indices, "if_false": without_indices,
                                      "index": return_indices_position, "default": False,
                                      "arg_name": "return_indices"}
        # Scripting the function itself (not a call to it) has no constant
        # return_indices; torch.jit.script reports this instead of failing on
        # the untyped signature with an internal assert.
        setattr(public, "__script_unsupported", (
            f"fastpool.{public.__name__} returns a Tensor or a tuple, depending on return_indices; script a "
            "function or module that calls it, as for torch.nn.functional's"))
        return public
    return register


# The typed functions TorchScript compiles: one per dims and return type,
# taking every argument of the public function (it passes them all).
# stride=None is aten's [] ("stride = kernel_size").

def _max_pool1d_with_indices(input: Tensor, kernel_size: BroadcastingList1[int],
                             stride: Optional[BroadcastingList1[int]] = None, padding: BroadcastingList1[int] = 0,
                             dilation: BroadcastingList1[int] = 1, ceil_mode: bool = False,
                             return_indices: bool = True) -> Tuple[Tensor, Tensor]:
    if stride is None:
        stride = torch.jit.annotate(List[int], [])
    if not torch.jit.is_scripting():
        kernel_size, stride, padding, dilation, ceil_mode = max_pool_args(
            1, True, input, kernel_size, stride, padding, dilation, ceil_mode)
    return torch.ops.fastpool.max_pool1d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)


def _max_pool1d(input: Tensor, kernel_size: BroadcastingList1[int], stride: Optional[BroadcastingList1[int]] = None,
                padding: BroadcastingList1[int] = 0, dilation: BroadcastingList1[int] = 1, ceil_mode: bool = False,
                return_indices: bool = False) -> Tensor:
    if stride is None:
        stride = torch.jit.annotate(List[int], [])
    if not torch.jit.is_scripting():
        kernel_size, stride, padding, dilation, ceil_mode = max_pool_args(
            1, False, input, kernel_size, stride, padding, dilation, ceil_mode)
    return torch.ops.fastpool.max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode)


def _max_pool2d_with_indices(input: Tensor, kernel_size: BroadcastingList2[int],
                             stride: Optional[BroadcastingList2[int]] = None, padding: BroadcastingList2[int] = 0,
                             dilation: BroadcastingList2[int] = 1, ceil_mode: bool = False,
                             return_indices: bool = True) -> Tuple[Tensor, Tensor]:
    if stride is None:
        stride = torch.jit.annotate(List[int], [])
    if not torch.jit.is_scripting():
        kernel_size, stride, padding, dilation, ceil_mode = max_pool_args(
            2, True, input, kernel_size, stride, padding, dilation, ceil_mode)
    return torch.ops.fastpool.max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)


def _max_pool2d(input: Tensor, kernel_size: BroadcastingList2[int], stride: Optional[BroadcastingList2[int]] = None,
                padding: BroadcastingList2[int] = 0, dilation: BroadcastingList2[int] = 1, ceil_mode: bool = False,
                return_indices: bool = False) -> Tensor:
    if stride is None:
        stride = torch.jit.annotate(List[int], [])
    if not torch.jit.is_scripting():
        kernel_size, stride, padding, dilation, ceil_mode = max_pool_args(
            2, False, input, kernel_size, stride, padding, dilation, ceil_mode)
    return torch.ops.fastpool.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode)


def _max_pool3d_with_indices(input: Tensor, kernel_size: BroadcastingList3[int],
                             stride: Optional[BroadcastingList3[int]] = None, padding: BroadcastingList3[int] = 0,
                             dilation: BroadcastingList3[int] = 1, ceil_mode: bool = False,
                             return_indices: bool = True) -> Tuple[Tensor, Tensor]:
    if stride is None:
        stride = torch.jit.annotate(List[int], [])
    if not torch.jit.is_scripting():
        kernel_size, stride, padding, dilation, ceil_mode = max_pool_args(
            3, True, input, kernel_size, stride, padding, dilation, ceil_mode)
    return torch.ops.fastpool.max_pool3d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)


def _max_pool3d(input: Tensor, kernel_size: BroadcastingList3[int], stride: Optional[BroadcastingList3[int]] = None,
                padding: BroadcastingList3[int] = 0, dilation: BroadcastingList3[int] = 1, ceil_mode: bool = False,
                return_indices: bool = False) -> Tensor:
    if stride is None:
        stride = torch.jit.annotate(List[int], [])
    if not torch.jit.is_scripting():
        kernel_size, stride, padding, dilation, ceil_mode = max_pool_args(
            3, False, input, kernel_size, stride, padding, dilation, ceil_mode)
    return torch.ops.fastpool.max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode)


def _adaptive_max_pool1d_with_indices(input: Tensor, output_size: BroadcastingList1[int],
                                      return_indices: bool = True) -> Tuple[Tensor, Tensor]:
    if not torch.jit.is_scripting():
        output_size = _adaptive_output_size(1, input, output_size)
    return torch.ops.fastpool.adaptive_max_pool1d_with_indices(input, output_size)


def _adaptive_max_pool1d(input: Tensor, output_size: BroadcastingList1[int], return_indices: bool = False) -> Tensor:
    if not torch.jit.is_scripting():
        output_size = _adaptive_output_size(1, input, output_size)
    return torch.ops.fastpool.adaptive_max_pool1d(input, output_size)


def _adaptive_max_pool2d_with_indices(input: Tensor, output_size: BroadcastingList2[int],
                                      return_indices: bool = True) -> Tuple[Tensor, Tensor]:
    if not torch.jit.is_scripting():
        output_size = _adaptive_output_size(2, input, output_size)
    return torch.ops.fastpool.adaptive_max_pool2d_with_indices(input, output_size)


def _adaptive_max_pool2d(input: Tensor, output_size: BroadcastingList2[int], return_indices: bool = False) -> Tensor:
    if not torch.jit.is_scripting():
        output_size = _adaptive_output_size(2, input, output_size)
    return torch.ops.fastpool.adaptive_max_pool2d(input, output_size)


def _adaptive_max_pool3d_with_indices(input: Tensor, output_size: BroadcastingList3[int],
                                      return_indices: bool = True) -> Tuple[Tensor, Tensor]:
    if not torch.jit.is_scripting():
        output_size = _adaptive_output_size(3, input, output_size)
    return torch.ops.fastpool.adaptive_max_pool3d_with_indices(input, output_size)


def _adaptive_max_pool3d(input: Tensor, output_size: BroadcastingList3[int], return_indices: bool = False) -> Tensor:
    if not torch.jit.is_scripting():
        output_size = _adaptive_output_size(3, input, output_size)
    return torch.ops.fastpool.adaptive_max_pool3d(input, output_size)


# The public functions. Without return_indices they run the op that writes no
# indices; under autograd it saves the input only and recomputes the argmax in
# backward, so training keeps no int64 index tensor alive.

@_scripted_as(_max_pool1d_with_indices, _max_pool1d, return_indices_position=6)
def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Same as :func:`torch.nn.functional.max_pool1d`, and bit-identical to it.

    An input stored N,L,C gives outputs stored so too, as torch's does with
    indices or under autograd (torch's no-grad path without indices returns a
    contiguous output: same values, other strides)."""
    if return_indices:
        return _max_pool1d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    return _max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode)


@_scripted_as(_max_pool2d_with_indices, _max_pool2d, return_indices_position=6)
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Same as :func:`torch.nn.functional.max_pool2d`, and bit-identical to it."""
    if return_indices:
        return _max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    return _max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode)


@_scripted_as(_max_pool3d_with_indices, _max_pool3d, return_indices_position=6)
def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Same as :func:`torch.nn.functional.max_pool3d`, and bit-identical to it."""
    if return_indices:
        return _max_pool3d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    return _max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode)


@_scripted_as(_adaptive_max_pool1d_with_indices, _adaptive_max_pool1d, return_indices_position=2)
def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Same as :func:`torch.nn.functional.adaptive_max_pool1d`, and bit-identical to it."""
    if return_indices:
        return _adaptive_max_pool1d_with_indices(input, output_size)
    return _adaptive_max_pool1d(input, output_size)


@_scripted_as(_adaptive_max_pool2d_with_indices, _adaptive_max_pool2d, return_indices_position=2)
def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Same as :func:`torch.nn.functional.adaptive_max_pool2d`, and bit-identical to it.

    Sizes that divide evenly (global pooling among them) run the fixed-window
    kernels; the others read their varying windows from a table."""
    if return_indices:
        return _adaptive_max_pool2d_with_indices(input, output_size)
    return _adaptive_max_pool2d(input, output_size)


@_scripted_as(_adaptive_max_pool3d_with_indices, _adaptive_max_pool3d, return_indices_position=2)
def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Same as :func:`torch.nn.functional.adaptive_max_pool3d`, and bit-identical to it."""
    if return_indices:
        return _adaptive_max_pool3d_with_indices(input, output_size)
    return _adaptive_max_pool3d(input, output_size)


# max_unpool1d/2d/3d (their own module: typed functions, no return_indices).
from ._unpool import max_unpool1d, max_unpool2d, max_unpool3d  # noqa: E402
