"""Modules with torch.nn's constructors, attributes, repr and state_dict."""
import torch

from . import functional

__all__ = ["MaxPool2d"]


class MaxPool2d(torch.nn.MaxPool2d):
    """:class:`torch.nn.MaxPool2d` computed by fastpool.

    A subclass, so ``isinstance(m, torch.nn.MaxPool2d)`` holds and the
    constructor, attributes, ``extra_repr`` and (empty) state_dict are torch's.
    """

    def forward(self, input):
        return functional.max_pool2d(
            input, self.kernel_size, self.stride, self.padding, self.dilation,
            ceil_mode=self.ceil_mode, return_indices=self.return_indices,
        )
