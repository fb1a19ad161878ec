"""fastpool.max_pool{1,2,3}d on the CPU: what is specific to the op or the
CPU (the backward op, gradcheck, thread counts, ISA selection, out-of-plane
indices, large tensors, memory-format rules). Values, indices, layouts,
special values, batches and gradients against torch on every ISA path are
the generic tests of tests/test_ops.py (op table: tests/ops.py).

Beyond torch: fastpool's max_pool1d without indices takes integer dtypes
(torch's max_pool1d takes them only with return_indices), and keeps an input's
N,L,C storage in its output as torch does with indices or under autograd
(torch's no-grad values-only path returns a contiguous tensor)."""
import pytest
import torch
import torch.nn.functional as F

import fastpool
from pool_cases import (FLOAT_DTYPES, ISAS, assert_identical, before_guard_page, cpu_isa, make_input, per_dim,
                        torch_max_pool, torch_threads)

DIMS = [1, 2, 3]


def pool_fn(dims, lib=fastpool):
    return getattr(lib, f"max_pool{dims}d") if lib is fastpool else getattr(F, f"max_pool{dims}d")


SHAPES = {1: (23,), 2: (11, 13), 3: (5, 7, 6)}


def assert_matches_torch(dims, x, isa, threads, **kw):
    """Values, indices and the training path's gradient of fastpool's
    max_pool{dims}d on that ISA and thread count, against torch's."""
    ours_fn, torch_fn = pool_fn(dims), pool_fn(dims, F)
    grad = torch.randn(torch_fn(x, **kw).shape).to(x.dtype)
    with cpu_isa(isa), torch_threads(threads):
        got = [ours_fn(x, **kw), *ours_fn(x, **kw, return_indices=True)]
        ours = x.detach().clone().requires_grad_()
        ours_fn(ours, **kw).backward(grad)
    theirs = x.detach().clone().requires_grad_()
    torch_fn(theirs, **kw).backward(grad)
    expected = [torch_fn(x, **kw), *torch_fn(x, **kw, return_indices=True)]
    for a, b in zip(got + [ours.grad], expected + [theirs.grad]):
        assert_identical(a, b)


@pytest.mark.parametrize("dims", [2, 3])  # aten has no max_pool1d backward op
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("isa", ISAS)
def test_backward_op_with_indices(dims, layout, isa):
    x = make_input(2, 5, SHAPES[dims], torch.float32, layout, seed=3, special="ties")
    out, idx = pool_fn(dims, F)(x, 3, 2, 1, return_indices=True)
    grad = torch.randn_like(out)
    k, s, p, d = [3] * dims, [2] * dims, [1] * dims, [1] * dims
    expected = getattr(torch.ops.aten, f"max_pool{dims}d_with_indices_backward")(grad, x, k, s, p, d, False, idx)
    with cpu_isa(isa):
        got = getattr(torch.ops.fastpool, f"max_pool{dims}d_with_indices_backward")(grad, x, k, s, p, d, False, idx)
    assert_identical(got, expected)


@pytest.mark.parametrize("dims", DIMS)
def test_gradcheck_float64(dims):
    sizes = {1: (13,), 2: (7, 8), 3: (4, 5, 6)}[dims]
    for layout in ["contiguous", "channels_last"]:
        for args in [dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(2, 3, 2)[-dims:], stride=(1, 2, 1)[-dims:],
                                                                     dilation=2),
                     dict(kernel_size=2, ceil_mode=True)]:
            # Distinct values: max pooling is differentiable away from ties.
            x = make_input(2, 3, sizes, torch.float64, layout, seed=0, special="normal")
            x = x.detach().copy_(torch.randperm(x.numel(), dtype=torch.float64).view(x.shape) / 10)
            x.requires_grad_()
            fn = pool_fn(dims)
            assert torch.autograd.gradcheck(lambda t: fn(t, **args), (x,))
            assert torch.autograd.gradcheck(lambda t: fn(t, return_indices=True, **args)[0], (x,))
            assert torch.autograd.gradgradcheck(lambda t: fn(t, **args), (x,))
            assert torch.autograd.gradgradcheck(lambda t: fn(t, return_indices=True, **args)[0], (x,))


# Batch 1 on two threads splits each channels-last image into row bands.
@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int32])
def test_thread_count_does_not_change_results(dims, layout, dtype, batch):
    x = make_input(batch, 24, {2: (57, 61), 3: (9, 17, 19)}[dims], dtype, layout, seed=11, special="ties")
    k, s, p, d = [3] * dims, [2] * dims, [1] * dims, [1] * dims
    backward = getattr(torch.ops.fastpool, f"max_pool{dims}d_with_indices_backward")
    old = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out, idx = pool_fn(dims)(x, 3, 2, 1, return_indices=True)
            grad_in = None
            if dtype.is_floating_point:
                grad_in = backward(torch.ones_like(out), x, k, s, p, d, False, idx)
            results.append((out, idx, grad_in))
    finally:
        torch.set_num_threads(old)
    (o1, i1, g1), (o2, i2, g2) = results
    assert_identical(o1, o2)
    assert_identical(i1, i2)
    if g1 is not None:
        assert_identical(g1, g2)
    expected, expected_idx = torch_max_pool(dims, x, kernel_size=3, stride=2, padding=1)
    assert_identical(o1, expected)
    assert_identical(i1, expected_idx)
    if dtype == torch.float32:  # exact in float32: torch adds in the same order
        aten_backward = getattr(torch.ops.aten, f"max_pool{dims}d_with_indices_backward")
        assert_identical(g1, aten_backward(torch.ones_like(out), x, k, s, p, d, False, expected_idx))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_padded_rows(dtype, isa):
    # Stride 1 or 2 along W with border outputs: whole rows of vectors whose
    # taps outside the row read as -inf and whose lanes start at their first
    # in-bounds tap (narrow rows, rows of a few vectors, long rows with an
    # interior between bounded ends; windows of negative values or of -inf
    # alone at the borders): values, indices and the training path's gradient.
    rows = [(5, 3, 1, 1, False), (20, 3, 1, 1, True), (28, 3, 1, 1, True), (40, 5, 2, 1, False),
            (70, 3, 1, 1, False), (130, 7, 3, 1, True), (66, 2, 1, 1, False), (17, 4, 2, 1, True),
            (7, 3, 1, 2, False), (28, 3, 1, 2, True), (112, 3, 1, 2, False), (150, 3, 1, 2, True),
            (33, 4, 2, 2, False), (9, 2, 1, 2, True)]
    for seed, (width, k, p, s, ceil) in enumerate(rows):
        for special in ["normal", "specials", "lowest"]:
            x = make_input(2, 3, (4, width), dtype, "contiguous", seed, special)
            if special == "normal":
                x = -x.abs() - 1  # every window's maximum negative
            for dims, view in [(2, x), (1, x[:, :, 0])]:
                assert_matches_torch(dims, view, isa, 1, kernel_size=(k, k)[:dims], stride=(1, s)[2 - dims:],
                                     padding=(p, p)[:dims], ceil_mode=ceil)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_narrow_rows_in_pairs(dtype, isa):
    # Rows of at most 8 outputs with every tap inside the row go two to a
    # vector (AVX-512, float compute): row pairs that straddle two planes
    # (odd output heights), rows padded along H whose windows have fewer
    # kernel rows than their neighbour's (not paired), stride 1 and 2, NaN
    # (the exact rerun), ties and zeros of either sign: values, indices and
    # the training path's gradient.
    cases = [((7, 14), 2, 2, 0, False), ((5, 8), 3, 1, 0, False), ((9, 13), 3, 2, (1, 0), True),
             ((6, 15), 2, 2, 0, True), ((13, 7), 3, 1, (1, 0), False), ((3, 2), 2, 1, 0, False)]
    for seed, (sizes, k, s, p, ceil) in enumerate(cases):
        for special in ["normal", "specials", "ties"]:
            x = make_input(3, 5, sizes, dtype, "contiguous", seed, special)
            assert_matches_torch(2, x, isa, 1, kernel_size=k, stride=s, padding=p, ceil_mode=ceil)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_interior_row_runs(dtype, isa):
    # Consecutive output rows whose windows lie inside the plane along H run
    # together (interior rows, or rows with padded borders along W), their
    # window rows moved down a stride at a time: runs cut by padded or
    # ceil-mode rows at either end, by 3-d depth slices, by the threads' row
    # ranges (batch 1 on 2 and 3 threads), dilated rows, rows of up to 4
    # vectors and wider (no runs); NaN, ties and zeros of either sign; values,
    # indices and the training path's gradient.
    cases = [(2, (9, 40), 2, 2, 0, 1, False), (2, (12, 30), 3, 1, 0, 2, False), (2, (11, 21), 3, 2, (1, 0), 1, True),
             (2, (17, 70), 2, 2, 0, 1, True), (2, (10, 140), 2, 2, 0, 1, False), (3, (5, 9, 18), 2, 2, 0, 1, True),
             (3, (6, 7, 20), 3, 1, (1, 0, 0), 1, False), (2, (12, 26), 3, 1, 1, 1, False),
             (2, (13, 30), 3, 2, (0, 1), 1, True), (3, (4, 8, 9), 3, 2, 1, 1, False)]
    for seed, (dims, sizes, k, s, p, d, ceil) in enumerate(cases):
        for threads, special in [(1, "normal"), (2, "specials"), (3, "ties")]:
            x = make_input(1, 6, sizes, dtype, "contiguous", seed, special)
            assert_matches_torch(dims, x, isa, threads, kernel_size=k, stride=s, padding=p, dilation=d,
                                 ceil_mode=ceil)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_small_planes_in_channels_last_blocks(dtype, isa):
    # Planar planes of up to 1024 elements whose rows are padded and narrower
    # than a vector, 16 planes or more, go through channels-last blocks on
    # AVX-512 (float, bfloat16, float16): 16 x 16 tiles transposed both
    # ways, partial tiles in planes and positions, blocks of 64 planes and a
    # remainder, ranges that start and end mid-plane (2 and 3 threads), 1-d
    # to 3-d; adaptive windows (tests/test_adaptive.py) take them too. NaN,
    # ties, -inf windows and zeros of either sign; values, indices (through
    # 8-byte tiles) and the training path's gradient (through 1-byte taps).
    cases = [(2, (16, 16), 3, 2, 1, False), (2, (12, 12), 3, 1, 1, False), (2, (28, 28), 3, 2, 1, True),
             (2, (7, 9), (3, 2), 2, (1, 1), True), (1, (23,), 3, 2, 1, False), (3, (4, 6, 6), 3, 2, 1, False)]
    for seed, (dims, sizes, k, s, p, ceil) in enumerate(cases):
        for (batch, channels), threads, special in [((1, 16), 1, "normal"), ((3, 23), 2, "specials"),
                                                    ((2, 37), 3, "ties"), ((5, 32), 2, "lowest")]:
            x = make_input(batch, channels, sizes, dtype, "contiguous", seed, special)
            assert_matches_torch(dims, x, isa, threads, kernel_size=k, stride=s, padding=p, ceil_mode=ceil)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_separable_rows(dtype, isa):
    # Pools whose window rows overlap from one output row to the next (KH >
    # SH, stride 1 or 2 along W, rows of a vector or more) take each input
    # row's maxima once: in registers down small planes (3x3 and 5x5, SPPF's),
    # else through a ring of rows (planes over 16 KiB, other kernel heights,
    # kernel widths other than 2, 3 and 5 read at run time). Border chunks
    # (padding, ceil mode), interior chunks and an overlapping last chunk,
    # rows of 13 and 15 outputs (one partial vector on AVX-512, AVX2's 8-lane
    # chunks overlapping);
    # 3-d input of depth 1; ranges that start and end mid-plane (2 and 3
    # threads). Zeros of either sign, and -inf or +inf (the fast path),
    # NaN (redone exactly), and one NaN in one plane of many (only its range
    # redone). Values, indices (flat indices down strips only) and the
    # training path's taps, whose fast path redoes windows of nothing but
    # -inf ("-inf": most of the input, no NaN or +inf), where PyTorch's
    # argmax is the first in-bounds tap.
    cases = [(2, (28, 28), 3, 1, 1, True), (2, (17, 33), 3, 2, 0, False), (2, (20, 40), 3, 2, 1, True),
             (2, (9, 70), 3, 1, 1, False), (2, (60, 150), 3, 1, 1, False), (2, (19, 40), (4, 3), (1, 2), (2, 1), False),
             (2, (20, 20), 5, 1, 2, False), (2, (13, 17), 2, 1, 0, True), (2, (11, 31), (3, 2), (2, 1), (1, 0), False),
             (3, (1, 12, 34), (1, 3, 3), (1, 1, 2), (0, 1, 1), True), (2, (28, 28), 3, 2, 1, True),
             (2, (9, 13), 3, 1, 1, False), (2, (70, 70), 5, 1, 2, False), (2, (9, 40), (3, 5), 1, (1, 2), True)]
    for seed, (dims, sizes, k, s, p, ceil) in enumerate(cases):
        for threads, special in [(1, "signed"), (2, "specials"), (3, "signed"), (2, "normal"), (1, "+inf"),
                                 (2, "-inf")]:
            x = make_input(2, 3, sizes, dtype, "contiguous", seed, special.replace("+inf", "signed").replace(
                "-inf", "signed"))
            if special == "+inf":  # +inf without -inf: the fast path
                x[x == float("-inf")] = float("inf")
            if special == "-inf":
                x[torch.rand(x.shape, generator=torch.Generator().manual_seed(seed)) < 0.7] = float("-inf")
            assert_matches_torch(dims, x, isa, threads, kernel_size=k, stride=s, padding=p, ceil_mode=ceil)
        x = make_input(3, 5, sizes, dtype, "contiguous", seed, "signed")
        x.view(15, -1)[7, 5] = float("nan")
        with cpu_isa(isa), torch_threads(2):
            got = pool_fn(dims)(x, k, s, p, ceil_mode=ceil)
        assert_identical(got, pool_fn(dims, F)(x, k, s, p, ceil_mode=ceil))
    # Strips go down planes of up to 16 KiB, or any plane of an input of up
    # to 4 MiB: 3x3 windows through the ring of rows take a larger input.
    for special in ["signed", "specials"]:
        x = make_input(1, 2, (720, 760), dtype, "contiguous", 0, special)
        assert_matches_torch(2, x, isa, 2, kernel_size=3, stride=(1, 2), padding=1)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_rows_of_fewer_interior_outputs_than_lanes(dtype, isa):
    # Rows with 2 to 15 interior outputs (a ResNet-stem pool of a 16x16 map
    # has 7) take one partial vector. Without masked loads (AVX2) it loads
    # whole vectors, whose extra lanes read past the row: so the input ends
    # at a page that cannot be read, and the last plane's last rows must
    # avoid it. Strides 1, 2 and 4, padded and unpadded, row runs, 1-d and
    # 2-d, on 1 and 2 threads; NaN, ties and zeros of either sign; values,
    # indices and the training path's gradient. Row runs over whole planes
    # (VGG's pool5: 7 outputs a row) write whole vectors into the next rows'
    # outputs and go on across planes, from mid-plane where the second
    # thread starts (odd output heights), 1 to 7 outputs a row, 2-d and 3-d
    # with one output depth. Last, a 1-d row of whole stride-4 chunks (AVX2's
    # stride-4 loads) for comparison.
    cases = [(2, (16, 16), 3, 2, 1, False), (2, (9, 10), 3, 1, 0, False), (2, (12, 18), 2, 2, 0, True),
             (2, (7, 21), 3, 2, (0, 1), False), (1, (30,), 4, 4, 0, False), (1, (21,), 4, 4, 1, True),
             (2, (5, 33), (2, 4), (2, 4), 0, False), (1, (19,), 5, 1, 2, False), (2, (6, 20), 3, 1, 0, True),
             (2, (14, 14), 2, 2, 0, False), (2, (7, 6), 2, 2, 0, True), (2, (5, 3), (3, 2), 1, 0, False),
             (3, (2, 7, 5), 2, (2, 2, 1), 0, False), (1, (75,), 4, 4, 0, False)]
    for seed, (dims, sizes, k, s, p, ceil) in enumerate(cases):
        for threads, special in [(1, "normal"), (2, "specials"), (1, "ties")]:
            x = make_input(2, 3, sizes, dtype, "contiguous", seed, special)
            assert_matches_torch(dims, x, isa, threads, kernel_size=k, stride=s, padding=p, ceil_mode=ceil)
            with before_guard_page(x) as guarded, cpu_isa(isa), torch_threads(threads):
                got = [pool_fn(dims)(guarded, k, s, p, ceil_mode=ceil),
                       *pool_fn(dims)(guarded, k, s, p, ceil_mode=ceil, return_indices=True),
                       pool_fn(dims)(guarded.detach().requires_grad_(), k, s, p, ceil_mode=ceil).detach()]
            values = pool_fn(dims, F)(x, k, s, p, ceil_mode=ceil)
            expected = [values, *pool_fn(dims, F)(x, k, s, p, ceil_mode=ceil, return_indices=True), values]
            for a, b in zip(got, expected):
                assert_identical(a, b)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("guard", ["before", "after"])
def test_border_outputs_read_nothing_outside_the_input(guard, dtype, isa):
    # Rows with border outputs (padding along W, stride 1 or 2) are whole
    # rows of bounded chunks. Without masked loads (AVX2) those read whole
    # vectors, lanes left of column 0 or right of the row's end included, and
    # blend -inf into them: the first and last rows of the tensor must take
    # another path, so the input starts or ends at a page that cannot be read.
    # The stem's k3 s2 p1, k3 s1 p1 (GoogLeNet), rows narrower than a vector,
    # a wide left pad; NaN, ties and zeros of either sign; values, indices
    # and the training path's gradient.
    cases = [((2, 4, 20, 20), 3, 2, 1), ((1, 3, 9, 28), 3, 1, 1), ((2, 2, 6, 5), 3, 1, 1),
             ((1, 2, 7, 40), (3, 5), 2, (1, 2)), ((3, 1, 5, 19), 2, 1, (0, 1))]
    for seed, (shape, k, s, p) in enumerate(cases):
        for threads, special in [(1, "normal"), (2, "specials"), (1, "ties")]:
            x = make_input(shape[0], shape[1], shape[2:], dtype, "contiguous", seed, special)
            with before_guard_page(x, guard) as guarded, cpu_isa(isa), torch_threads(threads):
                got = [fastpool.max_pool2d(guarded, k, s, p),
                       *fastpool.max_pool2d(guarded, k, s, p, return_indices=True)]
                leaf = guarded.detach().requires_grad_()
                y = fastpool.max_pool2d(leaf, k, s, p)
                y.backward(torch.ones_like(y))
                got += [y.detach(), leaf.grad]
            leaf = x.detach().requires_grad_()
            values = F.max_pool2d(leaf, k, s, p)
            values.backward(torch.ones_like(values))
            expected = [values.detach(), *F.max_pool2d(x, k, s, p, return_indices=True), values.detach(), leaf.grad]
            for a, b in zip(got, expected):
                assert_identical(a, b)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_windows_of_over_255_taps(dtype, isa):
    # Training saves 4-byte taps for windows of over 255 taps, and their
    # planar forward takes the general paths only (stride and kernel width
    # read at run time): windows 3 wide (the width other windows specialize),
    # strides 1 and 2, padding along W (the border outputs), ceil mode,
    # dilation, 3-d; NaN, ties and zeros of either sign; values, indices and
    # the training path's gradient.
    cases = [(2, (90, 40), (86, 3), 1, 0, 1, False), (2, (95, 41), (86, 3), (1, 2), (0, 1), 1, True),
             (2, (20, 60), (16, 17), (2, 1), (8, 8), 1, False), (2, (40, 50), (15, 18), 2, 0, (2, 1), True),
             (3, (6, 45, 30), (3, 43, 2), (1, 1, 2), 0, 1, False), (3, (4, 20, 50), (2, 8, 17), 1, (1, 4, 8), 1, True)]
    for seed, (dims, sizes, k, s, p, d, ceil) in enumerate(cases):
        for special in ["normal", "specials", "ties"]:
            x = make_input(2, 3, sizes, dtype, "contiguous", seed, special)
            assert_matches_torch(dims, x, isa, 1, kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)


def test_every_isa_path_is_available_here():
    info = fastpool.build_info()
    assert info["cpu_isas_compiled"] == ["avx512", "avx2", "portable"]
    assert info["cpu_isa_active"] == info["cpu_isas_supported"][0]
    for isa in info["cpu_isas_supported"]:
        with cpu_isa(isa):
            assert fastpool.build_info()["cpu_isa_active"] == isa


def test_unknown_isa_is_rejected():
    x = torch.randn(1, 1, 4, 4)
    with cpu_isa("sse9"), pytest.raises(ValueError, match="FASTPOOL_CPU_ISA"):
        fastpool.max_pool2d(x, 2)


def _scatter_reference(grad, indices, input):
    """grad_input from torch's scatter_add, in float64, over in-plane indices only."""
    plane = input.shape[-2] * input.shape[-1]
    g = grad.double().flatten(-2)
    i = indices.flatten(-2)
    valid = (i >= 0) & (i < plane)
    out = torch.zeros(input.shape[:-2] + (plane,), dtype=torch.float64)
    out.scatter_add_(-1, torch.where(valid, i, 0), torch.where(valid, g, 0))
    return out.view(input.shape)


def test_backward_ignores_out_of_plane_indices():
    # Never written out of bounds: an index outside the plane adds nothing.
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    out, idx = fastpool.max_pool2d(x, 2, return_indices=True)
    for bad in (36, -1, -2, 10**12):
        broken = idx.clone()
        broken[0, 1, 2, 0] = bad
        grad = torch.randn_like(out)
        got = torch.ops.fastpool.max_pool2d_with_indices_backward(
            grad, x, [2, 2], [2, 2], [0, 0], [1, 1], False, broken)
        assert_identical(got, _scatter_reference(grad, broken, x))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_tiling_windows_backward(dtype, layout, isa):
    # Windows that tile the input (stride = kernel, no padding): the backward
    # writes each tap's gradient once instead of adding into zeros (channels
    # last: 16 channels of a tap; planar with kernel 2 along W, rows of 48 or
    # more: 8 windows' columns), zeroes what no window covers, stores 0 + grad (-0.0 becomes
    # 0.0), and redoes a task by adds when an index is no tap of its window
    # (which may point into another task's rows). Batch 1 on two threads
    # splits a channels-last image into bands; the largest case (over 16 MiB
    # touched) takes non-temporal stores where a vector is a whole cache line
    # (AVX-512 float32). AVX2's float32 tiles only from the training taps.
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cases = [(1, 24, (9, 11), 2, False), (3, 16, (8, 8), 2, False), (2, 5, (7, 9), 3, True),
                 (1, 40, (10, 7), (2, 3), True), (2, 6, (9, 67), (3, 2), True), (1, 4, (7, 65), 2, False),
                 (2, 3, (4, 50), 2, True), (2, 4, (5, 6, 7), 2, True), (1, 3, (2, 4, 66), 2, False),
                 (2, 13, (9, 10), 2, True), (2, 64, (222, 224), 2, False)]
        for batch, channels, sizes, k, ceil in cases:
            dims = len(sizes)
            x = make_input(batch, channels, sizes, dtype, layout, seed=7, special="ties")
            args = dict(kernel_size=k, stride=k, ceil_mode=ceil)
            out, idx = pool_fn(dims, F)(x, return_indices=True, **args)
            grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
            grad.view(-1)[::5] = -0.0
            grad.view(-1)[3::17] = float("nan")
            grad = grad if layout == "contiguous" else \
                grad.movedim(1, -1).contiguous().movedim(-1, 1)
            ks, zeros, ones = list(per_dim(k, dims)), [0] * dims, [1] * dims
            foreign = idx.clone()
            # Into the window below (another band at batch 1), and onto a tap
            # another output's argmax also takes.
            foreign[0, 1].view(-1)[0] = idx[0, 1].reshape(-1)[-1]
            foreign[0, 2].view(-1)[1] = idx[0, 2].reshape(-1)[0]
            name = f"max_pool{dims}d_with_indices_backward"
            for indices in (idx, foreign):
                expected = getattr(torch.ops.aten, name)(grad, x, ks, ks, zeros, ones, ceil, indices)
                with cpu_isa(isa):
                    got = getattr(torch.ops.fastpool, name)(grad, x, ks, ks, zeros, ones, ceil, indices)
                assert_identical(got, expected)
            # The training path (window taps instead of flat indices).
            xr = x.detach().requires_grad_()
            with cpu_isa(isa):
                pool_fn(dims)(xr, **args).backward(grad)
            xt = x.detach().requires_grad_()
            pool_fn(dims, F)(xt, **args).backward(grad)
            assert_identical(xr.grad, xt.grad)
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_channels_last_backward_by_lanes(dtype, isa):
    # Small windows that do not overlap but do not tile (stride past the
    # kernel, padding): the channels-last backward adds a vector of channels
    # per tap where the argmax is that tap (16 on AVX-512, 8 on AVX2, whose
    # remainder channels take the scalar step), then the scalar step for
    # argmaxes that are no tap of their window. Channel counts around the
    # vector widths; gradients with -0.0 and NaN; a foreign index; 2 threads
    # on batch 1 (bands); flat indices and the training path's taps.
    cases = [(1, 8, (9, 11), 2, 3, 0), (2, 13, (8, 10), 3, 3, 1), (1, 21, (10, 7), 2, 3, 1), (2, 16, (7, 9), 1, 2, 0),
             (1, 37, (5, 6, 7), 2, 3, 0), (2, 3, (9, 9), 2, 3, 1)]
    with torch_threads(2):
        for seed, (batch, channels, sizes, k, s, p) in enumerate(cases):
            dims = len(sizes)
            x = make_input(batch, channels, sizes, dtype, "channels_last", seed, "ties")
            args = dict(kernel_size=k, stride=s, padding=p)
            out, idx = pool_fn(dims, F)(x, return_indices=True, **args)
            grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed)).to(dtype)
            grad.view(-1)[::5] = -0.0
            grad.view(-1)[3::17] = float("nan")
            grad = grad.movedim(1, -1).contiguous().movedim(-1, 1)
            foreign = idx.clone()
            foreign[0, 1].view(-1)[0] = idx[0, 1].reshape(-1)[-1]
            name = f"max_pool{dims}d_with_indices_backward"
            ks, ss, ps = (list(per_dim(v, dims)) for v in (k, s, p))
            for indices in (idx, foreign):
                expected = getattr(torch.ops.aten, name)(grad, x, ks, ss, ps, [1] * dims, False, indices)
                with cpu_isa(isa):
                    got = getattr(torch.ops.fastpool, name)(grad, x, ks, ss, ps, [1] * dims, False, indices)
                assert_identical(got, expected)
            xr, xt = x.detach().requires_grad_(), x.detach().requires_grad_()
            with cpu_isa(isa):
                pool_fn(dims)(xr, **args).backward(grad)
            pool_fn(dims, F)(xt, **args).backward(grad)
            assert_identical(xr.grad, xt.grad)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_overlapping_windows_channels_last_training_backward(dtype, isa):
    # Fixed windows that overlap (the stem's k3 s2 p1, k3 s1 p1, dilation,
    # ceil_mode, 1-d and 3-d): the training backward of a channels-last input
    # gathers, for each input position, the gradients of the covering outputs
    # whose tap it is, in output raster order, rounded to the dtype after
    # every add as torch's scatter does. Channel counts around the vector
    # widths (AVX2's remainder channels one at a time; fewer than a vector
    # take the scatter); ties in the input; -0.0 and NaN gradients; 2 threads
    # on batch 1 split an image into bands.
    cases = [(1, 21, (9, 11), dict(kernel_size=3, stride=2, padding=1)),
             (2, 16, (8, 10), dict(kernel_size=3, stride=1, padding=1)),
             (1, 37, (10, 7), dict(kernel_size=3, stride=1, dilation=2)),
             (2, 8, (12,), dict(kernel_size=5, stride=2, padding=2)),
             (1, 24, (5, 6, 7), dict(kernel_size=3, stride=2, padding=1)),
             (2, 64, (15, 15), dict(kernel_size=3, stride=2, ceil_mode=True)),
             (1, 16, (9, 9), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0), dilation=(2, 1))),
             (2, 7, (9, 9), dict(kernel_size=3, stride=1, padding=1))]
    with torch_threads(2):
        for seed, (batch, channels, sizes, args) in enumerate(cases):
            dims = len(sizes)
            x = make_input(batch, channels, sizes, dtype, "channels_last", seed, "ties")
            out = pool_fn(dims, F)(x, **args)
            grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed)).to(dtype)
            grad.view(-1)[::5] = -0.0
            grad.view(-1)[3::17] = float("nan")
            grad = grad.movedim(1, -1).contiguous().movedim(-1, 1)
            xr, xt = x.detach().requires_grad_(), x.detach().requires_grad_()
            with cpu_isa(isa):
                pool_fn(dims)(xr, **args).backward(grad)
            pool_fn(dims, F)(xt, **args).backward(grad)
            assert_identical(xr.grad, xt.grad)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_windows_without_in_bounds_taps(layout):
    # H=2, kernel 2, dilation 3, padding 1: the first output row's taps are
    # rows -1 and 2, both outside. torch returns -inf and an out-of-plane
    # index there; its gradient goes nowhere.
    x = make_input(2, 3, (2, 7), torch.float64, layout, seed=5, special="normal").requires_grad_()
    args = dict(kernel_size=(2, 2), stride=1, padding=1, dilation=3)
    expected, expected_idx = F.max_pool2d(x.detach(), return_indices=True, **args)
    out, idx = fastpool.max_pool2d(x, return_indices=True, **args)
    assert_identical(out.detach(), expected)
    assert_identical(idx, expected_idx)
    assert bool((idx >= 14).any())
    grad = torch.randn_like(out)
    out.backward(grad)
    torch.testing.assert_close(x.grad, _scatter_reference(grad, expected_idx, x), rtol=0, atol=0)


@pytest.mark.slow
def test_tensors_over_2_pow_31_elements():
    # A plane over 2^31 elements (int64 flat indices, the scalar path) and a
    # batch over 2^31 elements with small planes (64-bit offsets, vector path).
    for shape, kernel in [((1, 1, 2**16 + 3, 2**15 + 1), (1, 256)), ((2**14 + 1, 2, 257, 256), (2, 256))]:
        x = torch.zeros(shape, dtype=torch.uint8)
        x.view(-1)[:: 2**20 + 7] = 200  # sparse maxima far into the tensor
        x.view(-1)[-1] = 255
        expected = F.max_pool2d(x, kernel, return_indices=True)
        got = fastpool.max_pool2d(x, kernel, return_indices=True)
        assert_identical(got[0], expected[0])
        assert_identical(got[1], expected[1])
        del x, expected, got


def test_memory_format_rule_knows_the_number_of_dims():
    # A 4-D tensor that is channels_last in the 2-d sense, given to 3-d
    # pooling: torch refuses it (its 3-d kernels take only channels_last_3d or
    # contiguous); read as D,H,W,C it would give wrong values.
    x = torch.randn(3, 4, 5, 6).contiguous(memory_format=torch.channels_last)
    with pytest.raises(RuntimeError) as theirs:
        F.max_pool3d(x, 2)
    for return_indices in (False, True):
        with pytest.raises(RuntimeError, match=str(theirs.value).splitlines()[0]):
            fastpool.max_pool3d(x, 2, return_indices=return_indices)
    # An unbatched 3-d input stored D,H,W,C is read as what it is.
    x = torch.randn(4, 5, 6, 3).permute(3, 0, 1, 2)
    for got, expected in zip(fastpool.max_pool3d(x, 2, return_indices=True), F.max_pool3d(x, 2, return_indices=True)):
        assert_identical(got, expected)
    # 1-d: N,L,C storage stays N,L,C, as in torch's path with indices.
    x = torch.randn(2, 9, 5).transpose(1, 2)
    for got, expected in zip(fastpool.max_pool1d(x, 3, return_indices=True), F.max_pool1d(x, 3, return_indices=True)):
        assert_identical(got, expected)
    assert fastpool.max_pool1d(x, 3).stride() == (15, 1, 5)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.float32])
def test_channels_last_3d_remainder_channels_where_torch_refuses(dtype):
    # torch's channels-last 3-d kernel starts the argmax of its remainder
    # channels without the depth term, which shows where no tap beats the
    # type's lowest value; fastpool reproduces that where torch gives a
    # result. For 8-bit integers on a plane of 140 elements torch raises
    # (it numbers the plane in int8): fastpool computes it, by the planar rule.
    lowest = torch.finfo(dtype).min if dtype.is_floating_point else torch.iinfo(dtype).min
    x = torch.full((1, 2, 4, 5, 7), lowest, dtype=dtype).contiguous(memory_format=torch.channels_last_3d)
    out, idx = fastpool.max_pool3d(x, 1, return_indices=True)
    try:
        expected = F.max_pool3d(x, 1, return_indices=True)
    except RuntimeError as e:
        assert "numeric_limits<integer_t>" in str(e) and dtype.itemsize == 1
        expected = (x, torch.arange(140).view(4, 5, 7).expand(1, 2, 4, 5, 7))
    assert torch.equal(out, expected[0])
    assert torch.equal(idx, expected[1])
    assert idx.is_contiguous(memory_format=torch.channels_last_3d)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("input_layout", ["contiguous", "channels_last"])
def test_backward_inputs_stored_in_the_other_layout(dtype, input_layout):
    # The training backward reads grad_output and the offsets in the input's
    # layout; stored in the other one they are transposed on the way in
    # (layout_copy.cpp: blocks of 16 bytes, the remainder rows and channels
    # word by word). 37 channels and 9x11 outputs leave remainders for every
    # word size met: 1-byte offsets, 2-, 4- and 8-byte gradients.
    x = make_input(2, 37, (17, 21), dtype, input_layout, 5, "ties")
    cl = input_layout == "channels_last"
    args = ([3, 3], [2, 2], [1, 1], [1, 1], False)
    out, offsets = torch.ops.fastpool.max_pool2d_with_offsets(x, *args)
    grad = torch.randn(out.shape, dtype=torch.float64).to(dtype)
    other = torch.contiguous_format if cl else torch.channels_last
    assert offsets.dtype == torch.uint8 and not offsets.is_contiguous(memory_format=other)
    theirs = x.detach().clone().requires_grad_()
    F.max_pool2d(theirs, *args[:3]).backward(grad)
    backward = torch.ops.fastpool.max_pool2d_offsets_backward
    for g, o in [(grad.contiguous(memory_format=other), offsets), (grad, offsets.contiguous(memory_format=other)),
                 (grad.contiguous(memory_format=other), offsets.contiguous(memory_format=other))]:
        assert_identical(backward(g, o, list(x.shape), *args, cl), theirs.grad)
