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
from torch.overrides import has_torch_function_unary

from . import _C
from ._arg_parser import adaptive_max_pool_args, max_pool_args, plain_max_pool_args, plain_output_size

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
           "adaptive_max_pool3d"]
__all__ += ["max_unpool1d", "max_unpool2d", "max_unpool3d"]


def _eager_call(input):
    """Whether an eager call may take _C's typed entry to the op
    (csrc/eager_calls.cpp) instead of torch.ops: the same dispatch, without
    torch.ops' generic argument conversion, which costs more than pooling a
    small map. Not for an input with a __torch_function__ override (torch.ops
    honours it), nor while torch.compile traces (it sees the op itself)."""
    return not has_torch_function_unary(input) and not torch.compiler.is_compiling()


def _max_pool(dims, return_indices, input, kernel_size, stride, padding, dilation, ceil_mode):
    """An eager call of max_pool{dims}d(_with_indices), after torch's argument
    parsing (its errors)."""
    if stride is None:
        stride = []  # aten's "stride = kernel_size"
    if plain_max_pool_args(dims, input, kernel_size, stride, padding, dilation, ceil_mode):
        if _eager_call(input):
            return _C.window_pool(dims, return_indices, input, kernel_size, stride, padding, dilation, ceil_mode)
    else:
        kernel_size, stride, padding, dilation, ceil_mode = max_pool_args(
            dims, return_indices, input, kernel_size, stride, padding, dilation, ceil_mode)
    op = _WINDOW_OPS[dims - 1][return_indices]
    return op(input, kernel_size, stride, padding, dilation, ceil_mode)


def _size_int(size):
    return int(size) if isinstance(size, torch.Tensor) else size


def _adaptive_max_pool(dims, return_indices, input, output_size):
    """An eager call of adaptive_max_pool{dims}d(_with_indices), after torch's
    argument parsing (its errors; None keeps the input's size). TorchScript
    types output_size as int[dims] already and refuses None entries, as for
    torch. Under torch.jit.trace (the legacy ONNX exporter) sizes are traced
    0-dim tensors; the op takes ints, as the output size is fixed at export."""
    if plain_output_size(dims, input, output_size):
        if _eager_call(input):
            return _C.adaptive_pool(dims, return_indices, input, output_size)
    else:
        sizes = adaptive_max_pool_args(dims, input, output_size)
        output_size = [_size_int(s) for s in sizes] if isinstance(sizes, (list, tuple)) else _size_int(sizes)
    return _ADAPTIVE_OPS[dims - 1][return_indices](input, output_size)


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
        return _max_pool(1, True, input, kernel_size, stride, padding, dilation, ceil_mode)
    return torch.ops.fastpool.max_pool1d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)


def _max_pool1d(input: Tensor, kernel_size: BroadcastingList1[int], stride: Optional[BroadcastingList1[int]] = None,
                padding: BroadcastingList1[int] = 0, dilation: BroadcastingList1[int] = 1, ceil_mode: bool = False,
                return_indices: bool = False) -> Tensor:
    if stride is None:
        stride = torch.jit.annotate(List[int], [])
    if not torch.jit.is_scripting():
        return _max_pool(1, False, input, kernel_size, stride, padding, dilation, ceil_mode)
    return torch.ops.fastpool.max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode)


def _max_pool2d_with_indices(input: Tensor, kernel_size: BroadcastingList2[int],
                             stride: Optional[BroadcastingList2[int]] = None, padding: BroadcastingList2[int] = 0,
                             dilation: BroadcastingList2[int] = 1, ceil_mode: bool = False,
                             return_indices: bool = True) -> Tuple[Tensor, Tensor]:
    if stride is None:
        stride = torch.jit.annotate(List[int], [])
    if not torch.jit.is_scripting():
        return _max_pool(2, True, input, kernel_size, stride, padding, dilation, ceil_mode)
    return torch.ops.fastpool.max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)


def _max_pool2d(input: Tensor, kernel_size: BroadcastingList2[int], stride: Optional[BroadcastingList2[int]] = None,
                padding: BroadcastingList2[int] = 0, dilation: BroadcastingList2[int] = 1, ceil_mode: bool = False,
                return_indices: bool = False) -> Tensor:
    if stride is None:
        stride = torch.jit.annotate(List[int], [])
    if not torch.jit.is_scripting():
        return _max_pool(2, False, input, kernel_size, stride, padding, dilation, ceil_mode)
    return torch.ops.fastpool.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode)


def _max_pool3d_with_indices(input: Tensor, kernel_size: BroadcastingList3[int],
                             stride: Optional[BroadcastingList3[int]] = None, padding: BroadcastingList3[int] = 0,
                             dilation: BroadcastingList3[int] = 1, ceil_mode: bool = False,
                             return_indices: bool = True) -> Tuple[Tensor, Tensor]:
    if stride is None:
        stride = torch.jit.annotate(List[int], [])
    if not torch.jit.is_scripting():
        return _max_pool(3, True, input, kernel_size, stride, padding, dilation, ceil_mode)
    return torch.ops.fastpool.max_pool3d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)


def _max_pool3d(input: Tensor, kernel_size: BroadcastingList3[int], stride: Optional[BroadcastingList3[int]] = None,
                padding: BroadcastingList3[int] = 0, dilation: BroadcastingList3[int] = 1, ceil_mode: bool = False,
                return_indices: bool = False) -> Tensor:
    if stride is None:
        stride = torch.jit.annotate(List[int], [])
    if not torch.jit.is_scripting():
        return _max_pool(3, False, input, kernel_size, stride, padding, dilation, ceil_mode)
    return torch.ops.fastpool.max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode)


def _adaptive_max_pool1d_with_indices(input: Tensor, output_size: BroadcastingList1[int],
                                      return_indices: bool = True) -> Tuple[Tensor, Tensor]:
    if not torch.jit.is_scripting():
        return _adaptive_max_pool(1, True, input, output_size)
    return torch.ops.fastpool.adaptive_max_pool1d_with_indices(input, output_size)


def _adaptive_max_pool1d(input: Tensor, output_size: BroadcastingList1[int], return_indices: bool = False) -> Tensor:
    if not torch.jit.is_scripting():
        return _adaptive_max_pool(1, False, input, output_size)
    return torch.ops.fastpool.adaptive_max_pool1d(input, output_size)


def _adaptive_max_pool2d_with_indices(input: Tensor, output_size: BroadcastingList2[int],
                                      return_indices: bool = True) -> Tuple[Tensor, Tensor]:
    if not torch.jit.is_scripting():
        return _adaptive_max_pool(2, True, input, output_size)
    return torch.ops.fastpool.adaptive_max_pool2d_with_indices(input, output_size)


def _adaptive_max_pool2d(input: Tensor, output_size: BroadcastingList2[int], return_indices: bool = False) -> Tensor:
    if not torch.jit.is_scripting():
        return _adaptive_max_pool(2, False, input, output_size)
    return torch.ops.fastpool.adaptive_max_pool2d(input, output_size)


def _adaptive_max_pool3d_with_indices(input: Tensor, output_size: BroadcastingList3[int],
                                      return_indices: bool = True) -> Tuple[Tensor, Tensor]:
    if not torch.jit.is_scripting():
        return _adaptive_max_pool(3, True, input, output_size)
    return torch.ops.fastpool.adaptive_max_pool3d_with_indices(input, output_size)


def _adaptive_max_pool3d(input: Tensor, output_size: BroadcastingList3[int], return_indices: bool = False) -> Tensor:
    if not torch.jit.is_scripting():
        return _adaptive_max_pool(3, False, input, output_size)
    return torch.ops.fastpool.adaptive_max_pool3d(input, output_size)


_WINDOW_OPS = [(getattr(torch.ops.fastpool, f"max_pool{d}d"), getattr(torch.ops.fastpool, f"max_pool{d}d_with_indices"))
               for d in (1, 2, 3)]
_ADAPTIVE_OPS = [(getattr(torch.ops.fastpool, f"adaptive_max_pool{d}d"),
                  getattr(torch.ops.fastpool, f"adaptive_max_pool{d}d_with_indices")) for d in (1, 2, 3)]


# The public functions: in eager mode, straight to the op (the typed functions
# above are what TorchScript compiles). Without return_indices they run the op
# that writes no indices; under autograd it saves each output's argmax as its
# tap in the window (csrc/autograd.cpp), so training keeps no int64 indices.

@_scripted_as(_max_pool1d_with_indices, _max_pool1d, return_indices_position=6)
def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Same as :func:`torch.nn.functional.max_pool1d`, and bit-identical to it.

    An input stored N,L,C gives outputs stored so too, as torch's does with
    indices or under autograd (torch's no-grad path without indices returns a
    contiguous output: same values, other strides)."""
    return _max_pool(1, bool(return_indices), input, kernel_size, stride, padding, dilation, ceil_mode)


@_scripted_as(_max_pool2d_with_indices, _max_pool2d, return_indices_position=6)
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Same as :func:`torch.nn.functional.max_pool2d`, and bit-identical to it."""
    return _max_pool(2, bool(return_indices), input, kernel_size, stride, padding, dilation, ceil_mode)


@_scripted_as(_max_pool3d_with_indices, _max_pool3d, return_indices_position=6)
def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Same as :func:`torch.nn.functional.max_pool3d`, and bit-identical to it."""
    return _max_pool(3, bool(return_indices), input, kernel_size, stride, padding, dilation, ceil_mode)


@_scripted_as(_adaptive_max_pool1d_with_indices, _adaptive_max_pool1d, return_indices_position=2)
def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Same as :func:`torch.nn.functional.adaptive_max_pool1d`, and bit-identical to it."""
    return _adaptive_max_pool(1, bool(return_indices), input, output_size)


@_scripted_as(_adaptive_max_pool2d_with_indices, _adaptive_max_pool2d, return_indices_position=2)
def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Same as :func:`torch.nn.functional.adaptive_max_pool2d`, and bit-identical to it.

    Sizes that divide evenly (global pooling among them) run the fixed-window
    kernels; the others read their varying windows from a table."""
    return _adaptive_max_pool(2, bool(return_indices), input, output_size)


@_scripted_as(_adaptive_max_pool3d_with_indices, _adaptive_max_pool3d, return_indices_position=2)
def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Same as :func:`torch.nn.functional.adaptive_max_pool3d`, and bit-identical to it."""
    return _adaptive_max_pool(3, bool(return_indices), input, output_size)


# ---- fractional max pooling ------------------------------------------------------
#
# torch.nn.functional's argument handling, step for step (its errors included:
# a float output_ratio in 2-d fails on len() there, and so here), and the same
# random draw: torch.rand(batch, C, dims) in the input's dtype on its device, so
# that a seed gives the same windows as torch's and a model that swaps in
# fastpool trains identically.

def _fractional_output_size(dims: int, input: Tensor, output_size: Optional[List[int]],
                            output_ratio: Optional[List[float]]) -> List[int]:
    if output_size is None:
        if output_ratio is None:
            raise ValueError(f"fractional_max_pool{dims}d requires specifying either an output_size or an "
                             "output_ratio")
        if dims == 2 and len(output_ratio) > 2:
            raise ValueError("fractional_max_pool2d requires output_ratio to either be a single Int or tuple of Ints.")
        return [int(input.size(i - dims) * output_ratio[i]) for i in range(dims)]
    return output_size


def _fractional_samples(dims: int, input: Tensor, random_samples: Optional[Tensor]) -> Tensor:
    if random_samples is None:
        batch = 1 if input.dim() == dims + 1 else input.size(0)
        return torch.rand(batch, input.size(-dims - 1), dims, dtype=input.dtype, device=input.device)
    return random_samples


def _ratio_list(dims: int, output_ratio):
    """torch's _pair/_triple of output_ratio (eager: any number or sequence)."""
    if output_ratio is None:
        return None
    if isinstance(output_ratio, (list, tuple)):
        return tuple(output_ratio)
    return (output_ratio,) * dims


def _fractional_max_pool2d_args(input: Tensor, output_size: Optional[BroadcastingList2[int]],
                                output_ratio: Optional[BroadcastingList2[float]],
                                _random_samples: Optional[Tensor]) -> Tuple[List[int], Tensor]:
    """The op's output_size and random_samples."""
    if not torch.jit.is_scripting():
        if output_size is None and output_ratio is not None:
            len(output_ratio)  # torch's check starts with len(): a bare float raises its TypeError
        output_ratio = _ratio_list(2, output_ratio)
    return _fractional_output_size(2, input, output_size, output_ratio), _fractional_samples(2, input, _random_samples)


def _fractional_max_pool3d_args(input: Tensor, output_size: Optional[BroadcastingList3[int]],
                                output_ratio: Optional[BroadcastingList3[float]],
                                _random_samples: Optional[Tensor]) -> Tuple[List[int], Tensor]:
    if not torch.jit.is_scripting():
        output_ratio = _ratio_list(3, output_ratio)
    return _fractional_output_size(3, input, output_size, output_ratio), _fractional_samples(3, input, _random_samples)


def _fractional_max_pool2d_with_indices(input: Tensor, kernel_size: BroadcastingList2[int],
                                        output_size: Optional[BroadcastingList2[int]] = None,
                                        output_ratio: Optional[BroadcastingList2[float]] = None,
                                        return_indices: bool = True,
                                        _random_samples: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    size, samples = _fractional_max_pool2d_args(input, output_size, output_ratio, _random_samples)
    return torch.ops.fastpool.fractional_max_pool2d(input, kernel_size, size, samples)


# Without indices, the values op: inference writes none (training keeps them, in the op's autograd).
def _fractional_max_pool2d(input: Tensor, kernel_size: BroadcastingList2[int],
                           output_size: Optional[BroadcastingList2[int]] = None,
                           output_ratio: Optional[BroadcastingList2[float]] = None, return_indices: bool = False,
                           _random_samples: Optional[Tensor] = None) -> Tensor:
    size, samples = _fractional_max_pool2d_args(input, output_size, output_ratio, _random_samples)
    return torch.ops.fastpool.fractional_max_pool2d_values(input, kernel_size, size, samples)


def _fractional_max_pool3d_with_indices(input: Tensor, kernel_size: BroadcastingList3[int],
                                        output_size: Optional[BroadcastingList3[int]] = None,
                                        output_ratio: Optional[BroadcastingList3[float]] = None,
                                        return_indices: bool = True,
                                        _random_samples: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    size, samples = _fractional_max_pool3d_args(input, output_size, output_ratio, _random_samples)
    return torch.ops.fastpool.fractional_max_pool3d(input, kernel_size, size, samples)


def _fractional_max_pool3d(input: Tensor, kernel_size: BroadcastingList3[int],
                           output_size: Optional[BroadcastingList3[int]] = None,
                           output_ratio: Optional[BroadcastingList3[float]] = None, return_indices: bool = False,
                           _random_samples: Optional[Tensor] = None) -> Tensor:
    size, samples = _fractional_max_pool3d_args(input, output_size, output_ratio, _random_samples)
    return torch.ops.fastpool.fractional_max_pool3d_values(input, kernel_size, size, samples)


@_scripted_as(_fractional_max_pool2d_with_indices, _fractional_max_pool2d, return_indices_position=4)
def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    """Same as :func:`torch.nn.functional.fractional_max_pool2d`, and bit-identical to it (the same
    random samples for the same seed, hence the same windows)."""
    if return_indices:
        return _fractional_max_pool2d_with_indices(input, kernel_size, output_size, output_ratio, True,
                                                   _random_samples)
    return _fractional_max_pool2d(input, kernel_size, output_size, output_ratio, False, _random_samples)


@_scripted_as(_fractional_max_pool3d_with_indices, _fractional_max_pool3d, return_indices_position=4)
def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    """Same as :func:`torch.nn.functional.fractional_max_pool3d`, and bit-identical to it."""
    if return_indices:
        return _fractional_max_pool3d_with_indices(input, kernel_size, output_size, output_ratio, True,
                                                   _random_samples)
    return _fractional_max_pool3d(input, kernel_size, output_size, output_ratio, False, _random_samples)


__all__ += ["fractional_max_pool2d", "fractional_max_pool3d"]


# max_unpool1d/2d/3d (their own module: typed functions, no return_indices).
from ._unpool import max_unpool1d, max_unpool2d, max_unpool3d  # noqa: E402
