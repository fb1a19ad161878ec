"""Generic tests over op x device (ops.OPS x ops.DEVICES): forward values and
indices, layouts and views, special values, unbatched inputs and empty
batches, backward, dtypes; each device compares with its own reference and
the documented CUDA differences (see ops.py). Op- and device-specific tests
(errors, opcheck, gradcheck, compile/export, launch plans, streams, large
tensors) stay in test_max_pool.py, test_adaptive.py, test_cuda_host_executor.py,
test_cuda.py and the others.

    pytest tests/test_ops.py -k cpu:avx2          # one device
    pytest tests/test_ops.py -k "max_pool3d and cuda-host"
    pytest -m cuda tests/test_ops.py              # the GPU's (benchmarks/gpu_check.sh)
"""
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ops import DEVICES, OPS, Case, hypothesis_settings

OP_PARAMS = [pytest.param(op, id=op.name) for op in OPS]


def examples(op, device, which):
    forward, backward = op.examples[device.kind]
    return forward if which == "forward" else backward


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", OP_PARAMS)
def test_forward(op, device):
    """Values (NaN, ±inf, -0.0, ties), indices and output layout, with and
    without indices, every dtype the op takes on the device."""
    @hypothesis_settings(examples(op, device, "forward"))
    @given(case=op.cases(op.dtypes(device.kind), device.layouts), variant=device.variants())
    def check(case, variant):
        device.check_forward(op, case, variant)

    check()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", OP_PARAMS)
def test_backward(op, device):
    """Gradients through the device's backward (autograd where it has one,
    with and without indices), floating types."""
    floats = [t for t in op.dtypes(device.kind) if t.is_floating_point]

    @hypothesis_settings(examples(op, device, "backward"))
    @given(case=op.cases(floats, device.layouts), variant=device.variants(), return_indices=st.booleans(),
           grad_seed=st.integers(0, 2**31 - 1))
    def check(case, variant, return_indices, grad_seed):
        device.check_backward(op, case, variant, return_indices, grad_seed)

    check()


def fixed_cases(op, device):
    """Unbatched inputs, empty batches, a 1x1 plane and (adaptive) output sizes
    below, equal to and above the input's, in both layouts."""
    dims = op.dims
    if op.family == "window":
        arg_sets = [dict(kernel_size=2), dict(kernel_size=1),
                    dict(kernel_size=3, stride=None, padding=1, ceil_mode=True)]
        shapes = [(0, 3) + (8,) * dims, (3,) + (8,) * dims, (1, 1) + (1,) * dims]
    else:
        spatial = (5, 7, 6)[-dims:]
        arg_sets = [dict(output_size=o) for o in ((2, 3, 4)[-dims:], spatial, (7, 9, 8)[-dims:], (1,) * dims)]
        shapes = [(0, 3) + spatial, (3,) + spatial, (1, 1) + (1,) * dims]
    for shape in shapes:
        for args in arg_sets:
            args = dict(dict(stride=None, padding=0, dilation=1, ceil_mode=False), **args) \
                if op.family == "window" else dict(output_size=args["output_size"] if dims > 1
                                                   else args["output_size"][0])
            k = args.get("kernel_size", 1)
            if min(shape[-dims:]) < k:
                continue
            batch = shape[0] if len(shape) == dims + 2 else None
            for layout in ("contiguous", "channels_last"):
                if layout not in device.layouts[batch is not None]:
                    continue
                yield Case(op, batch, shape[-dims - 1], shape[-dims:], torch.float32, layout, "specials",
                           math.prod(shape), args)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", OP_PARAMS)
def test_unbatched_empty_batch_and_small_planes(op, device):
    for i, case in enumerate(fixed_cases(op, device)):
        device.check_forward(op, case, device_default_variant(device))
        device.check_backward(op, case, device_default_variant(device), bool(i % 2), i)


def device_default_variant(device):
    return 132 if device.kind == "cuda-host" else None


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", OP_PARAMS)
def test_values_where_lane_order_matters(op, device):
    """A vector reduction combines a window's lanes without their positions;
    these windows need them: -0.0 scanned before 0.0 (torch returns -0.0),
    NaN, and all-negative windows narrower than a vector (masked-off lanes)."""
    dims = op.dims
    sizes = {1: (49,), 2: (7, 7), 3: (4, 7, 7)}[dims]
    base = -torch.rand((4, 3) + sizes, dtype=torch.float64).add_(0.5)
    flat = base.view(4, 3, -1)
    flat[0, :, 0], flat[0, :, -1] = -0.0, 0.0
    flat[1, :, 10], flat[1, :, 17] = -0.0, 0.0  # a later position in an earlier lane
    flat[2, :, 17] = float("nan")
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        for output_size in (1, 2):
            if op.family == "window":  # the whole plane, or halves of it
                args = dict(kernel_size=tuple(n // output_size for n in sizes), stride=None, padding=0, dilation=1,
                            ceil_mode=False)
            else:
                args = dict(output_size=output_size)
            device.check_forward(op, FixedInput(op, base.to(dtype), args), device_default_variant(device))


class FixedInput(Case):
    """A Case whose input is given, not drawn."""

    def __init__(self, op, x, args):
        dims = op.dims
        super().__init__(op, x.shape[0], x.shape[1], tuple(x.shape[-dims:]), x.dtype, "contiguous", "specials", 0,
                         args)
        self.x = x

    def input(self, device="cpu"):
        return self.x if device == "cpu" else self.x.to(device)
