"""Shared inputs and the bit-equality helper of every op test (the op table
and device list of the generic tests are in ops.py).

The reference is always torch itself, run on the same input.
"""
import contextlib
import os

import torch

import fastpool

FLOAT_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
INT_DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]
ALL_DTYPES = FLOAT_DTYPES + INT_DTYPES
ISAS = fastpool.build_info()["cpu_isas_supported"]
LAYOUTS = ["contiguous", "channels_last", "sliced", "transposed"]
_BITS = {torch.float64: torch.int64, torch.float32: torch.int32, torch.float16: torch.int16,
         torch.bfloat16: torch.int16}


@contextlib.contextmanager
def cpu_isa(name):
    """Forces fastpool's CPU kernel build (read by the op on every call)."""
    old = os.environ.get("FASTPOOL_CPU_ISA")
    os.environ["FASTPOOL_CPU_ISA"] = name
    try:
        yield
    finally:
        if old is None:
            del os.environ["FASTPOOL_CPU_ISA"]
        else:
            os.environ["FASTPOOL_CPU_ISA"] = old


def out_size(n, k, s, p, d, ceil):
    span = n + 2 * p - d * (k - 1) - 1
    if span < 0:
        return 0
    o = (span + (s - 1 if ceil else 0)) // s + 1
    if ceil and (o - 1) * s >= n + p:
        o -= 1
    return o


def per_dim(value, dims):
    return (value,) * dims if isinstance(value, int) else tuple(value)


def has_empty_window(args, sizes):
    """True if some output's window has no in-bounds tap (torch's backward
    then writes outside the plane, so it cannot serve as a reference)."""
    dims = len(sizes)
    k, p, d = (per_dim(args[n], dims) for n in ("kernel_size", "padding", "dilation"))
    s = k if args["stride"] is None else per_dim(args["stride"], dims)
    for i in range(dims):
        for o in range(out_size(sizes[i], k[i], s[i], p[i], d[i], args["ceil_mode"])):
            if not any(0 <= o * s[i] - p[i] + j * d[i] < sizes[i] for j in range(k[i])):
                return True
    return False


def make_values(shape, dtype, seed, special):
    """Small integers (many ties) or normals, with NaN/±inf/-0.0 sprinkled in
    ('specials'), or small integers under mostly the lowest value ('lowest':
    -inf, or the type's minimum, in a third of the places, so whole windows of
    it are common, with a little NaN, +inf and -0.0), or zeros of either sign,
    ones and -inf ('signed': neither NaN nor +inf, which kernels that screen
    for NaN with a running sum must redo: +inf meeting -inf is NaN)."""
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        if special in ("ties", "specials", "lowest", "signed"):
            x = torch.randint(-3, 4, shape, generator=g).to(dtype)
        else:
            x = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
        if special == "lowest":
            pick = torch.rand(shape, generator=g)
            x[pick < 0.35] = float("-inf")
            x[(pick >= 0.35) & (pick < 0.40)] = float("nan")
            x[(pick >= 0.40) & (pick < 0.45)] = float("inf")
            x[(pick >= 0.45) & (pick < 0.50)] = -0.0
        if special == "signed":
            # Zeros of either sign, some ones: many windows' maximum is a zero.
            x = torch.randint(-3, 2, shape, generator=g).to(dtype)
            x[x < 0] = -0.0
            x[torch.rand(shape, generator=g) < 0.1] = float("-inf")
        if special == "specials":
            pick = torch.rand(shape, generator=g)
            x[pick < 0.05] = float("nan")
            x[(pick >= 0.05) & (pick < 0.10)] = float("inf")
            x[(pick >= 0.10) & (pick < 0.20)] = float("-inf")
            x[(pick >= 0.20) & (pick < 0.35)] = -0.0
            x[(pick >= 0.35) & (pick < 0.45)] = 0.0
        return x
    info = torch.iinfo(dtype)
    if special == "ties":
        return torch.randint(max(info.min, -3), min(info.max, 4), shape, generator=g).to(dtype)
    if special == "lowest":
        x = torch.randint(max(info.min, -4), min(info.max, 5), shape, generator=g).to(dtype)
        pick = torch.rand(shape, generator=g)
        x[pick < 0.35] = info.min
        x[pick > 0.95] = info.max
        return x
    x = torch.randint(max(info.min, -(2**31)), min(info.max, 2**31 - 1) + 1, shape, generator=g, dtype=torch.int64)
    x = x.to(dtype)
    if special == "specials":  # extremes play the part of ±inf
        pick = torch.rand(shape, generator=g)
        x[pick < 0.1] = info.min
        x[pick > 0.9] = info.max
    return x


def make_input(batch, channels, sizes, dtype, layout, seed, special, device=None):
    """An input with `sizes` spatial dims in the given memory layout:
    'channels_last' stores C innermost (torch's channels_last /
    channels_last_3d; N,L,C in 1-d; unbatched inputs too); 'sliced' and 'transposed'
    are views (every other element along the last dim and channels; the last
    two dims, or C and L in 1-d, swapped in memory). The values are drawn on
    the CPU; `device` ('cuda') moves them there before the view is taken."""
    shape = ((batch,) if batch is not None else ()) + (channels,) + tuple(sizes)

    def values(shape):
        x = make_values(shape, dtype, seed, special)
        return x if device is None else x.to(device)
    if layout == "sliced":
        big = values(shape[:-len(sizes) - 1] + (channels * 2,) + tuple(sizes[:-1]) + (sizes[-1] * 2,))
        return big[..., ::2, *([slice(None)] * (len(sizes) - 1)), ::2]
    if layout == "transposed":
        return values(shape[:-2] + (shape[-1], shape[-2])).transpose(-1, -2)
    x = values(shape)
    if layout == "channels_last":
        channel = 0 if batch is None else 1
        x = x.movedim(channel, -1).contiguous().movedim(-1, channel)
    return x


def assert_identical(actual, expected, strides=True):
    """Same values bit for bit (the sign of zero included), same shape, dtype,
    device and strides (strides=True: of non-empty tensors; "always": of
    empty ones too; "sized": of the dims longer than 1 where the tensor is
    not empty, their strides being the only ones that place an element, and
    of every dim where it is; False: values only). NaN is compared as NaN, not by
    payload: torch's own CPU kernels return different NaN bits for different
    layouts (bfloat16 channels_last gives 0xffff where the input held 0x7fc0)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.device == expected.device, (actual.device, expected.device)
    if strides == "sized" and actual.numel() and expected.numel():
        sized = [i for i, n in enumerate(actual.shape) if n > 1]
        assert [actual.stride(i) for i in sized] == [expected.stride(i) for i in sized], \
            (actual.stride(), expected.stride())
    elif strides in ("always", "sized") or (strides is True and actual.numel()):
        assert actual.stride() == expected.stride(), (actual.stride(), expected.stride())
    torch.testing.assert_close(actual, expected, rtol=0, atol=0, equal_nan=True)
    if expected.dtype in _BITS:
        bits = _BITS[expected.dtype]
        same = (actual.view(bits) == expected.view(bits)) | (actual.isnan() & expected.isnan())
        assert bool(same.all()), "values equal but bits differ (sign of zero)"


def torch_max_pool(dims, x, **args):
    """torch's max_pool{dims}d with indices. torch's channels_last CPU kernel
    keeps indices in an integer as wide as the dtype, so it raises for
    8/16-bit integer planes larger than that type holds; fastpool does not.
    There the reference is torch on the contiguous input, in channels-last
    layout."""
    fn = getattr(torch.nn.functional, f"max_pool{dims}d")
    try:
        return fn(x, return_indices=True, **args)
    except RuntimeError as e:
        if "numeric_limits<integer_t>" not in str(e) or x.dtype.is_floating_point:
            raise
        out, idx = fn(x.contiguous(), return_indices=True, **args)
        channels = x.dim() - dims - 1  # 0 for an unbatched input
        # clone, not contiguous(): that returns a tensor whose size-1 dims keep
        # whatever strides it had, where fastpool's output has the layout's.
        return tuple(t.movedim(channels, -1).clone(memory_format=torch.contiguous_format).movedim(-1, channels)
                     for t in (out, idx))


def first_line(fn):
    """The exception type and the first line of its message that fn raises (None if none)."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e), str(e).splitlines()[0]
    return None


@contextlib.contextmanager
def torch_threads(count):
    """torch's CPU thread count set to `count` for the block."""
    saved = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


@contextlib.contextmanager
def before_guard_page(x, guard="after"):
    """A copy of contiguous x beside a page that cannot be read, kept alive
    for the block: guard="after", its last byte is the last before that page
    (a read past the tensor's end faults); guard="before", its first byte is
    the first after it (a read before the tensor's start faults)."""
    import ctypes
    import mmap

    page = mmap.PAGESIZE
    nbytes = x.numel() * x.element_size()
    data_pages = (nbytes + page - 1) // page
    buf = mmap.mmap(-1, (data_pages + 1) * page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    prot_none = 0
    guard_page = base + (data_pages * page if guard == "after" else 0)
    assert libc.mprotect(guard_page, page, prot_none) == 0, os.strerror(ctypes.get_errno())
    offset = data_pages * page - nbytes if guard == "after" else page
    guarded = torch.frombuffer(buf, dtype=torch.uint8, count=nbytes, offset=offset).view(x.dtype).view(x.shape)
    guarded.copy_(x)
    try:
        yield guarded
    finally:
        del guarded
        libc.mprotect(guard_page, page, mmap.PROT_READ | mmap.PROT_WRITE)
