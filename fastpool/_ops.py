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


# max_pool{1,2,3}d_with_indices: save the indices (the user asked for them anyway).
def _with_indices_setup(ctx, inputs, output):
    ctx.args = _pool_args(inputs)
    ctx.mark_non_differentiable(output[1])
    ctx.save_for_backward(inputs[0], output[1])


# max_pool{1,2,3}d (no indices): save only the input, which the layer before usually
# keeps alive anyway, and recompute the argmax in backward. This saves the
# int64 index tensor (2x the output's bytes in float32) per pooling layer.
def _no_indices_setup(ctx, inputs, output):
    ctx.args = _pool_args(inputs)
    ctx.save_for_backward(inputs[0])


# The backward is linear in grad_output: its own gradient gathers at indices,
# which are flattened over the op's spatial dims.
def _backward_backward_over(spatial):
    def backward_backward(ctx, grad_grad_input):
        (indices,) = ctx.saved_tensors
        flat_in = grad_grad_input.flatten(-spatial)
        flat_idx = indices.flatten(-spatial)
        grad_grad_output = torch.gather(flat_in, -1, flat_idx).view(indices.shape)
        return grad_grad_output, None, None, None, None, None, None, None
    return backward_backward


def _backward_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[7])


def _make_backward_ops(name):
    backward = getattr(_ops, name + "_with_indices_backward")

    def with_indices_backward(ctx, grad_output, _grad_indices):
        input, indices = ctx.saved_tensors
        return backward(grad_output, input, *ctx.args, indices), None, None, None, None, None

    def no_indices_backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        _, indices = getattr(_ops, name + "_with_indices")(input.detach(), *ctx.args)
        return backward(grad_output, input, *ctx.args, indices), None, None, None, None, None

    return with_indices_backward, no_indices_backward


for _dims in (1, 2, 3):
    _name = f"max_pool{_dims}d"
    _with_indices_backward, _no_indices_backward = _make_backward_ops(_name)
    torch.library.register_autograd(
        f"fastpool::{_name}_with_indices", _with_indices_backward, setup_context=_with_indices_setup)
    torch.library.register_autograd(f"fastpool::{_name}", _no_indices_backward, setup_context=_no_indices_setup)
    torch.library.register_autograd(
        f"fastpool::{_name}_with_indices_backward", _backward_backward_over(_dims), setup_context=_backward_setup)


# Adaptive pooling: the same two ways of training; the backward op needs only
# grad_output, the input (for its shape and layout) and the indices.
def _adaptive_with_indices_setup(ctx, inputs, output):
    ctx.output_size = inputs[1]
    ctx.mark_non_differentiable(output[1])
    ctx.save_for_backward(inputs[0], output[1])


def _adaptive_no_indices_setup(ctx, inputs, output):
    ctx.output_size = inputs[1]
    ctx.save_for_backward(inputs[0])


def _adaptive_backward_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[2])


def _make_adaptive_backward_ops(name, dims):
    op = getattr(_ops, name + "_backward")

    def backward(grad_output, input, indices):
        # An output_size with a 0 has no output, so no gradient: zeros (the
        # backward op, like torch's, refuses an empty grad_output).
        if any(s == 0 for s in grad_output.shape[-dims:]):
            return torch.zeros_like(input)
        return op(grad_output, input, indices)

    def with_indices_backward(ctx, grad_output, _grad_indices):
        input, indices = ctx.saved_tensors
        return backward(grad_output, input, indices), None

    def no_indices_backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        _, indices = getattr(_ops, name + "_with_indices")(input.detach(), ctx.output_size)
        return backward(grad_output, input, indices), None

    def backward_backward(ctx, grad_grad_input):
        (indices,) = ctx.saved_tensors
        flat = torch.gather(grad_grad_input.flatten(-dims), -1, indices.flatten(-dims))
        return flat.view(indices.shape), None, None

    return with_indices_backward, no_indices_backward, backward_backward


for _dims in (1, 2, 3):
    _name = f"adaptive_max_pool{_dims}d"
    _with, _without, _double = _make_adaptive_backward_ops(_name, _dims)
    torch.library.register_autograd(f"fastpool::{_name}_with_indices", _with,
                                    setup_context=_adaptive_with_indices_setup)
    torch.library.register_autograd(f"fastpool::{_name}", _without, setup_context=_adaptive_no_indices_setup)
    torch.library.register_autograd(f"fastpool::{_name}_backward", _double, setup_context=_adaptive_backward_setup)
