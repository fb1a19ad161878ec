"""Modules with torch.nn's constructors, attributes, repr and state_dict.

Each is a subclass of torch's module, so ``isinstance(m, torch.nn.MaxPool2d)``
holds and the constructor, attributes, ``extra_repr`` and (empty) state_dict
are torch's; only forward differs (``fastpool.convert`` relies on that).
"""
from typing import List, Optional

import torch
from torch import Tensor

from . import functional

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d"]
__all__ += ["MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d"]


# TorchScript compiles self._function like a call to the functional: the
# typed function for return_indices, one of the __constants__ of torch's class.
def _max_pool_forward(self, input):
    return self._function(input, self.kernel_size, self.stride, self.padding, self.dilation,
                          ceil_mode=self.ceil_mode, return_indices=self.return_indices)


def _adaptive_max_pool_forward(self, input):
    return self._function(input, self.output_size, self.return_indices)


def _fastpool_module(torch_module, function, forward):
    """torch_module's subclass named like it, computing with `function`."""
    name = torch_module.__name__
    return type(name, (torch_module,), {
        "__doc__": f":class:`torch.nn.{name}` computed by fastpool.",
        "__module__": __name__,
        "_function": staticmethod(function),
        "forward": forward,
    })


MaxPool1d = _fastpool_module(torch.nn.MaxPool1d, functional.max_pool1d, _max_pool_forward)
MaxPool2d = _fastpool_module(torch.nn.MaxPool2d, functional.max_pool2d, _max_pool_forward)
MaxPool3d = _fastpool_module(torch.nn.MaxPool3d, functional.max_pool3d, _max_pool_forward)
AdaptiveMaxPool1d = _fastpool_module(torch.nn.AdaptiveMaxPool1d, functional.adaptive_max_pool1d,
                                     _adaptive_max_pool_forward)
AdaptiveMaxPool2d = _fastpool_module(torch.nn.AdaptiveMaxPool2d, functional.adaptive_max_pool2d,
                                     _adaptive_max_pool_forward)
AdaptiveMaxPool3d = _fastpool_module(torch.nn.AdaptiveMaxPool3d, functional.adaptive_max_pool3d,
                                     _adaptive_max_pool_forward)


# Fractional pooling: torch's constructors (output_size or output_ratio, and
# the optional fixed _random_samples buffer).
def _fractional_max_pool_forward(self, input):
    return self._function(input, self.kernel_size, self.output_size, self.output_ratio, self.return_indices,
                          _random_samples=self._random_samples)


FractionalMaxPool2d = _fastpool_module(torch.nn.FractionalMaxPool2d, functional.fractional_max_pool2d,
                                       _fractional_max_pool_forward)
FractionalMaxPool3d = _fastpool_module(torch.nn.FractionalMaxPool3d, functional.fractional_max_pool3d,
                                       _fractional_max_pool_forward)
__all__ += ["FractionalMaxPool2d", "FractionalMaxPool3d"]


def _max_unpool_forward(self, input: Tensor, indices: Tensor, output_size: Optional[List[int]] = None) -> Tensor:
    return self._function(input, indices, self.kernel_size, self.stride, self.padding, output_size)


MaxUnpool1d = _fastpool_module(torch.nn.MaxUnpool1d, functional.max_unpool1d, _max_unpool_forward)
MaxUnpool2d = _fastpool_module(torch.nn.MaxUnpool2d, functional.max_unpool2d, _max_unpool_forward)
MaxUnpool3d = _fastpool_module(torch.nn.MaxUnpool3d, functional.max_unpool3d, _max_unpool_forward)
