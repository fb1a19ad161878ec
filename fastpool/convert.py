"""fastpool.convert(model): put fastpool's pooling into an existing model, and
fastpool.unconvert(model) to take it out again.

Each fastpool module is a subclass of torch's that changes only forward, so
the swap changes the class of each pooling module in place: the module
object, its arguments, hooks and position in the model stay as they are.
Only modules whose type is exactly torch's are swapped (a user's subclass may
have its own forward).
"""
import torch

from . import modules

__all__ = ["convert", "unconvert"]

_TORCH_TO_FASTPOOL = {
    torch.nn.MaxPool1d: modules.MaxPool1d,
    torch.nn.MaxPool2d: modules.MaxPool2d,
    torch.nn.MaxPool3d: modules.MaxPool3d,
    torch.nn.AdaptiveMaxPool1d: modules.AdaptiveMaxPool1d,
    torch.nn.AdaptiveMaxPool2d: modules.AdaptiveMaxPool2d,
    torch.nn.AdaptiveMaxPool3d: modules.AdaptiveMaxPool3d,
    torch.nn.FractionalMaxPool2d: modules.FractionalMaxPool2d,
    torch.nn.FractionalMaxPool3d: modules.FractionalMaxPool3d,
    torch.nn.MaxUnpool1d: modules.MaxUnpool1d,
    torch.nn.MaxUnpool2d: modules.MaxUnpool2d,
    torch.nn.MaxUnpool3d: modules.MaxUnpool3d,
}
_FASTPOOL_TO_TORCH = {ours: theirs for theirs, ours in _TORCH_TO_FASTPOOL.items()}


def _swap(model, table):
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    count = 0
    for module in model.modules():
        new_class = table.get(type(module))
        if new_class is not None:
            module.__class__ = new_class
            count += 1
    return count


def convert(model):
    """Swaps every torch max-pooling module in ``model`` (``model`` itself
    included) for fastpool's, in place, keeping its arguments; returns
    ``model``. Outputs and gradients stay bit-identical."""
    _swap(model, _TORCH_TO_FASTPOOL)
    return model


def unconvert(model):
    """The opposite of :func:`convert`: fastpool's pooling modules back to
    torch's, in place; returns ``model``."""
    _swap(model, _FASTPOOL_TO_TORCH)
    return model
