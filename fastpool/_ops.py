"""Autograd formulas for double backward.

The forward ops have their autograd in C++ (csrc/autograd.cpp): under
autograd, those without indices save each output's argmax as a 1-byte tap
within its window. The schemas and the CPU, CUDA and Meta kernels are
registered from C++ too. Every backward is itself a registered op, so
torch.compile, torch.export and double backward see ops, not Python code.
"""
import torch

_ops = torch.ops.fastpool


# The backward ops with indices are linear in grad_output: their own gradient
# gathers at the indices, which are flattened over the op's spatial dims.
def _gather_at_indices(dims, num_args, indices_position):
    """register_autograd's (setup_context, backward) for a backward op with
    `num_args` arguments, its indices at `indices_position`."""
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[indices_position])

    def backward(ctx, grad_grad_input):
        (indices,) = ctx.saved_tensors
        flat = torch.gather(grad_grad_input.flatten(-dims), -1, indices.flatten(-dims))
        return (flat.view(indices.shape),) + (None,) * (num_args - 1)

    return setup_context, backward


for _dims in (1, 2, 3):
    # max_pool{k}d_with_indices_backward(grad_output, self, kernel_size, stride, padding, dilation, ceil_mode, indices)
    _setup, _backward = _gather_at_indices(_dims, 8, 7)
    torch.library.register_autograd(f"fastpool::max_pool{_dims}d_with_indices_backward", _backward,
                                    setup_context=_setup)
    # adaptive_max_pool{k}d_backward(grad_output, self, indices)
    _setup, _backward = _gather_at_indices(_dims, 3, 2)
    torch.library.register_autograd(f"fastpool::adaptive_max_pool{_dims}d_backward", _backward, setup_context=_setup)


# The training ops' backward (csrc/autograd.cpp calls it) is linear in
# grad_output too: its own gradient gathers at each output's argmax, which is
# decoded here from its tap: window start + tap digits (radix: the kernel, or
# for adaptive windows the largest window) times the dilation.
def _window_starts(out, in_size, kernel, stride, pad, adaptive, device):
    o = torch.arange(out, device=device)
    if adaptive:
        return torch.div(o * in_size, out, rounding_mode="floor")
    return o * stride - pad


def _argmax_positions(offsets, input_size, dims, windows):
    """Each output's argmax flattened over its input plane (torch's indices),
    and where there is one. windows: (start per output, radix, dilation) per
    spatial dim."""
    if offsets.dtype == torch.int64:  # windows over 2^31-1 taps save the flat index itself
        return offsets, torch.ones_like(offsets, dtype=torch.bool)
    taps = offsets.long()
    radix = 1
    for _, k, _ in windows:
        radix *= k
    valid = (taps >= 0) & (taps < radix)
    taps = torch.where(valid, taps, 0)
    position = torch.zeros_like(taps)
    rest = taps
    digits = []
    for _, k, _ in reversed(windows):
        digits.append(rest % k)
        rest = rest // k
    digits.reverse()
    for d, ((start, _, dil), digit) in enumerate(zip(windows, digits)):
        shape = [1] * offsets.dim()
        shape[offsets.dim() - dims + d] = -1
        coordinate = start.view(shape) + digit * dil
        position = position * input_size[len(input_size) - dims + d] + coordinate
    return torch.where(valid, position, 0), valid


def _gather_at_argmax(grad_grad_input, offsets, dims, windows, input_size):
    position, valid = _argmax_positions(offsets, input_size, dims, windows)
    flat = torch.gather(grad_grad_input.flatten(-dims), -1, position.flatten(-dims)).view(offsets.shape)
    return torch.where(valid, flat, 0)


def _window_offsets_backward_setup(ctx, inputs, output):
    ctx.input_size = list(inputs[2])
    ctx.args = tuple(inputs[3:8])
    ctx.save_for_backward(inputs[1])


def _make_window_offsets_double_backward(dims):
    def backward(ctx, grad_grad_input):
        (offsets,) = ctx.saved_tensors
        kernel, stride, padding, dilation, _ = ctx.args
        stride = stride if len(stride) else kernel
        at = lambda v, i: v[i] if len(v) > 1 else v[0]  # noqa: E731
        windows = [(_window_starts(offsets.shape[offsets.dim() - dims + i], None, None, at(stride, i),
                                   at(padding, i), False, offsets.device), at(kernel, i), at(dilation, i))
                   for i in range(dims)]
        grad = _gather_at_argmax(grad_grad_input, offsets, dims, windows, ctx.input_size)
        return (grad,) + (None,) * 8
    return backward


def _adaptive_offsets_backward_setup(ctx, inputs, output):
    ctx.input_size = list(inputs[2])
    ctx.save_for_backward(inputs[1])


def _make_adaptive_offsets_double_backward(dims):
    def backward(ctx, grad_grad_input):
        (offsets,) = ctx.saved_tensors
        windows = []
        for i in range(dims):
            in_size, out = ctx.input_size[len(ctx.input_size) - dims + i], offsets.shape[offsets.dim() - dims + i]
            # The radix the kernels number taps in (make_adaptive_geometry).
            radix = in_size // out if in_size % out == 0 else -(-in_size // out) + 1
            windows.append((_window_starts(out, in_size, None, None, None, True, offsets.device), radix, 1))
        grad = _gather_at_argmax(grad_grad_input, offsets, dims, windows, ctx.input_size)
        return grad, None, None, None
    return backward


for _dims in (1, 2, 3):
    torch.library.register_autograd(f"fastpool::max_pool{_dims}d_offsets_backward",
                                    _make_window_offsets_double_backward(_dims),
                                    setup_context=_window_offsets_backward_setup)
    torch.library.register_autograd(f"fastpool::adaptive_max_pool{_dims}d_offsets_backward",
                                    _make_adaptive_offsets_double_backward(_dims),
                                    setup_context=_adaptive_offsets_backward_setup)


# Fractional pooling: the forward ops' autograd is in C++ (csrc/autograd.cpp,
# torch's formula: the backward op scatters per plane in output order,
# deterministic); here the backward ops' own gradient (double backward).
def _fractional_backward_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[4])


def _make_fractional_double_backward(dims):
    def backward_backward(ctx, grad_grad_input):
        (indices,) = ctx.saved_tensors
        flat = torch.gather(grad_grad_input.flatten(-dims), -1, indices.flatten(-dims))
        return flat.view(indices.shape), None, None, None, None

    return backward_backward


for _dims in (2, 3):
    torch.library.register_autograd(f"fastpool::fractional_max_pool{_dims}d_backward",
                                    _make_fractional_double_backward(_dims),
                                    setup_context=_fractional_backward_setup)


# max_unpool{2,3}d: the forward's autograd is in C++ (csrc/max_unpool_autograd.cpp);
# its backward op, a gather, is linear in grad_output: its own gradient is the
# adjoint of that gather, a scatter-add into the forward output's shape (what
# PyTorch's autograd derives for its gather-based formula, duplicates summed).
def _unpool_backward_setup(ctx, inputs, output):
    ctx.output_shape = inputs[0].shape
    ctx.save_for_backward(inputs[1])


def _make_unpool_double_backward(dims):
    def backward(ctx, grad_grad_input):
        (indices,) = ctx.saved_tensors
        flat = grad_grad_input.new_zeros(ctx.output_shape).flatten(-dims)
        flat = flat.scatter_add(-1, indices.flatten(-dims), grad_grad_input.flatten(-dims))
        return flat.view(ctx.output_shape), None
    return backward


for _dims in (2, 3):
    torch.library.register_autograd(f"fastpool::max_unpool{_dims}d_backward", _make_unpool_double_backward(_dims),
                                    setup_context=_unpool_backward_setup)
