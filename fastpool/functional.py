"""Functional API with torch.nn.functional's signatures."""
import torch

from ._arg_parser import adaptive_max_pool_args, max_pool_args

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
           "adaptive_max_pool3d"]

def _max_pool(dims, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    name = f"max_pool{dims}d"
    if stride is None:
        stride = []  # aten's convention for "stride = kernel_size"
    # torch's argument parsing: its TypeErrors, its values (_arg_parser.py).
    kernel_size, stride, padding, dilation, ceil_mode = max_pool_args(
        dims, return_indices, input, kernel_size, stride, padding, dilation, ceil_mode)
    if return_indices:
        op = getattr(torch.ops.fastpool, name + "_with_indices")
    else:
        op = getattr(torch.ops.fastpool, name)
    return op(input, kernel_size, stride, padding, dilation, ceil_mode)


# Without return_indices these run the op that writes no indices; under
# autograd it saves the input only and recomputes the argmax in backward, so
# training keeps no int64 index tensor alive.

def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Same as :func:`torch.nn.functional.max_pool1d`, and bit-identical to it.

    An input stored N,L,C gives outputs stored so too, as torch's does with
    indices or under autograd (torch's no-grad path without indices returns a
    contiguous output: same values, other strides)."""
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Same as :func:`torch.nn.functional.max_pool2d`, and bit-identical to it."""
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Same as :func:`torch.nn.functional.max_pool3d`, and bit-identical to it."""
    return _max_pool(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _adaptive_max_pool(dims, input, output_size, return_indices):
    name = f"adaptive_max_pool{dims}d"
    # torch's argument parsing (None keeps the input's size): its errors, its values.
    output_size = adaptive_max_pool_args(dims, input, output_size)
    op = getattr(torch.ops.fastpool, name + ("_with_indices" if return_indices else ""))
    return op(input, output_size)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Same as :func:`torch.nn.functional.adaptive_max_pool1d`, and bit-identical to it."""
    return _adaptive_max_pool(1, input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Same as :func:`torch.nn.functional.adaptive_max_pool2d`, and bit-identical to it.

    Sizes that divide evenly (global pooling among them) run the fixed-window
    kernels; the others read their varying windows from a table."""
    return _adaptive_max_pool(2, input, output_size, return_indices)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Same as :func:`torch.nn.functional.adaptive_max_pool3d`, and bit-identical to it."""
    return _adaptive_max_pool(3, input, output_size, return_indices)
