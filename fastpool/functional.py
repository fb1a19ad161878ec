"""Functional API with torch.nn.functional's signatures."""
import torch

__all__ = ["max_pool2d"]

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


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Same as :func:`torch.nn.functional.max_pool2d`, and bit-identical to it.

    Without ``return_indices`` this runs the op that writes no indices; under
    autograd it saves the input only and recomputes the argmax in backward,
    so training keeps no int64 index tensor alive.
    """
    if stride is None:
        stride = []  # aten's convention for "stride = kernel_size"
    _check_types("max_pool2d", input, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
    if return_indices:
        return torch.ops.fastpool.max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    return torch.ops.fastpool.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode)
