"""Autograd formulas for torch.ops.fastpool.* (the schemas and the CPU, CUDA
and Meta kernels are registered from C++).

Every backward is itself a registered op, so torch.compile, torch.export and
double backward see ops, not Python code.
"""
import torch

_ops = torch.ops.fastpool


def _pool_args(inputs):
    # (self, kernel_size, stride, padding, dilation, ceil_mode)
    return tuple(inputs[1:6])


# max_pool2d_with_indices: save the indices (the user asked for them anyway).
def _with_indices_setup(ctx, inputs, output):
    ctx.args = _pool_args(inputs)
    ctx.mark_non_differentiable(output[1])
    ctx.save_for_backward(inputs[0], output[1])


def _with_indices_backward(ctx, grad_output, _grad_indices):
    input, indices = ctx.saved_tensors
    grad = _ops.max_pool2d_with_indices_backward(grad_output, input, *ctx.args, indices)
    return grad, None, None, None, None, None


# max_pool2d (no indices): save only the input, which the layer before usually
# keeps alive anyway, and recompute the argmax in backward. This saves the
# int64 index tensor (2x the output's bytes in float32) per pooling layer.
def _no_indices_setup(ctx, inputs, output):
    ctx.args = _pool_args(inputs)
    ctx.save_for_backward(inputs[0])


def _no_indices_backward(ctx, grad_output):
    (input,) = ctx.saved_tensors
    _, indices = _ops.max_pool2d_with_indices(input.detach(), *ctx.args)
    grad = _ops.max_pool2d_with_indices_backward(grad_output, input, *ctx.args, indices)
    return grad, None, None, None, None, None


# The backward is linear in grad_output: its own gradient gathers at indices.
def _backward_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[7])
    ctx.input_shape = inputs[1].shape


def _backward_backward(ctx, grad_grad_input):
    (indices,) = ctx.saved_tensors
    spatial = 2  # max_pool2d: indices are flattened over the last two dims
    flat_in = grad_grad_input.flatten(-spatial)
    flat_idx = indices.flatten(-spatial)
    grad_grad_output = torch.gather(flat_in, -1, flat_idx).view(indices.shape)
    return grad_grad_output, None, None, None, None, None, None, None


torch.library.register_autograd(
    "fastpool::max_pool2d_with_indices", _with_indices_backward, setup_context=_with_indices_setup)
torch.library.register_autograd("fastpool::max_pool2d", _no_indices_backward, setup_context=_no_indices_setup)
torch.library.register_autograd(
    "fastpool::max_pool2d_with_indices_backward", _backward_backward, setup_context=_backward_setup)
