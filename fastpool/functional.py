"""Functional API with torch.nn.functional's signatures."""
import torch

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
           "adaptive_max_pool3d"]

_INT_TYPES = (int, torch.SymInt)


def _check_types(fn, input, **int_args):
    # The dispatcher would report these as RuntimeError; torch's functions
    # raise TypeError, and so do we.
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"{fn}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    for name, value in int_args.items():
        items = value if isinstance(value, (tuple, list)) else (value,)
        if not all(isinstance(v, _INT_TYPES) and not isinstance(v, bool) for v in items):
            raise TypeError(f"{fn}(): argument '{name}' must be an int or a tuple of ints, not {value!r}")


def _max_pool(dims, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    name = f"max_pool{dims}d"
    if stride is None:
        stride = []  # aten's convention for "stride = kernel_size"
    _check_types(name, input, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
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
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    sizes = list(output_size) if isinstance(output_size, (tuple, list)) else [output_size] * dims
    if dims == 1 and len(sizes) != 1:
        raise RuntimeError(f"{name}() argument 'output_size' should contain one int (got {len(sizes)})")
    if dims > 1 and len(sizes) == dims:
        # None keeps the input's size along that dim (torch's rule).
        sizes = [input.shape[i - dims] if s is None else s for i, s in enumerate(sizes)]
    _check_types(name, input, output_size=sizes)
    op = getattr(torch.ops.fastpool, name + ("_with_indices" if return_indices else ""))
    return op(input, sizes)


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
