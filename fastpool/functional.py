"""Functional API with torch.nn.functional's signatures."""
import torch

__all__ = ["max_pool2d"]


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Same as :func:`torch.nn.functional.max_pool2d`, and bit-identical to it.

    Without ``return_indices`` this runs the op that writes no indices; under
    autograd it saves the input only and recomputes the argmax in backward,
    so training keeps no int64 index tensor alive.
    """
    if stride is None:
        stride = []  # aten's convention for "stride = kernel_size"
    if return_indices:
        return torch.ops.fastpool.max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    return torch.ops.fastpool.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode)
