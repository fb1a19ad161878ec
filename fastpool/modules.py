"""Modules with torch.nn's constructors, attributes, repr and state_dict.

Each is a subclass of torch's module, so ``isinstance(m, torch.nn.MaxPool2d)``
holds and the constructor, attributes, ``extra_repr`` and (empty) state_dict
are torch's; only forward differs.
"""
import torch

from . import functional

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d"]


class _MaxPoolForward:
    _function = None

    def forward(self, input):
        return type(self)._function(
            input, self.kernel_size, self.stride, self.padding, self.dilation,
            ceil_mode=self.ceil_mode, return_indices=self.return_indices,
        )


class MaxPool1d(_MaxPoolForward, torch.nn.MaxPool1d):
    """:class:`torch.nn.MaxPool1d` computed by fastpool."""
    _function = staticmethod(functional.max_pool1d)


class MaxPool2d(_MaxPoolForward, torch.nn.MaxPool2d):
    """:class:`torch.nn.MaxPool2d` computed by fastpool."""
    _function = staticmethod(functional.max_pool2d)


class MaxPool3d(_MaxPoolForward, torch.nn.MaxPool3d):
    """:class:`torch.nn.MaxPool3d` computed by fastpool."""
    _function = staticmethod(functional.max_pool3d)


class _AdaptiveMaxPoolForward:
    _function = None

    def forward(self, input):
        return type(self)._function(input, self.output_size, self.return_indices)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolForward, torch.nn.AdaptiveMaxPool1d):
    """:class:`torch.nn.AdaptiveMaxPool1d` computed by fastpool."""
    _function = staticmethod(functional.adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptiveMaxPoolForward, torch.nn.AdaptiveMaxPool2d):
    """:class:`torch.nn.AdaptiveMaxPool2d` computed by fastpool."""
    _function = staticmethod(functional.adaptive_max_pool2d)


class AdaptiveMaxPool3d(_AdaptiveMaxPoolForward, torch.nn.AdaptiveMaxPool3d):
    """:class:`torch.nn.AdaptiveMaxPool3d` computed by fastpool."""
    _function = staticmethod(functional.adaptive_max_pool3d)
