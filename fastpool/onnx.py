"""ONNX export of the fastpool ops, with both of torch's exporters.

Each op maps to standard ONNX, as torch's exporters map aten's max pooling:

* ``max_pool{1,2,3}d``: ``MaxPool`` (kernel_shape, strides, pads, dilations,
  ceil_mode); ``..._with_indices`` also returns MaxPool's Indices, which ONNX
  flattens over the whole N,C,spatial tensor: a second MaxPool (kernel 1)
  gives each plane's first flat index, subtracted to get torch's per-plane
  indices.
* ``adaptive_max_pool{1,2,3}d``: output size 1 everywhere without indices is
  ``GlobalMaxPool``; output sizes that divide the input size (global pooling
  with indices among them) are a ``MaxPool`` with kernel = stride = input //
  output. Other sizes have windows of varying sizes, which no ONNX op
  expresses: export raises, as torch's exporters do for aten's adaptive max
  pooling.
* ``max_unpool{2,3}d`` (1-d runs the 2-d op): ``MaxUnpool`` with its
  output_shape input (N, C and the op's output size). Its indices count over
  the whole N,C,spatial output, so each (n, c) plane's offset
  ``(n * C + c) * prod(output size)`` is added to torch's per-plane indices.
  The ops do not carry the pooling's kernel (and only 3-d its stride and
  padding), and output_shape sets the size anyway; but onnxruntime requires
  output_shape to hold at least as many elements as the attributes' own size,
  ``(in - 1) * stride - pad_begin - pad_end + kernel``. kernel_shape 1 (that
  size is the input's) serves the usual output at least as large as the
  input; a static dim that shrinks (a stride-1 pooling with padding) gets
  kernel ``in - out + 1`` and pads one less, for a size of ``out``.
  The legacy exporter traces the output size as constants (a dynamic batch
  size works); the dynamo exporter keeps torch.export's dynamic sizes.
* Unbatched inputs (C, *spatial) are unsqueezed to N=1 and squeezed back.

Legacy exporter (``torch.onnx.export(..., dynamo=False)``): the symbolics are
registered when fastpool is imported (this needs only torch). Dynamo exporter
(``dynamo=True``, torch's default): torch has no public global registry for
it, so pass ``custom_translation_table=fastpool.onnx.custom_translation_table()``
or call :func:`export`, which does that. onnx and onnxscript are imported only
then.
"""
import math
from typing import Sequence

import torch
import torch.onnx  # cheap: the exporters' registries, not the onnx package

__all__ = ["custom_translation_table", "export"]

# MaxPool's ceil_mode and dilations attributes came in opset 10; a
# registration serves that opset and every later one.
_LEGACY_MIN_OPSET = 10
_DIMS = (1, 2, 3)
_UNPOOL_DIMS = (2, 3)  # max_unpool1d runs the 2-d op


def _expand(values, dims):
    # torch's int-or-list convention: one value stands for every dim.
    values = list(values)
    return values * dims if len(values) == 1 else values


def _window_attributes(dims, kernel_size, stride, padding, dilation):
    kernel = _expand(kernel_size, dims)
    strides = _expand(stride, dims) if len(stride) else kernel  # stride=[] means kernel_size
    pads = _expand(padding, dims)
    return kernel, strides, pads + pads, _expand(dilation, dims)  # ONNX pads: all begins, then all ends


def _unpool_window(input_sizes, output_size):
    """MaxUnpool's kernel_shape and pads for spatial input and output sizes (not ints: dynamic)."""
    kernel = [i - o + 1 if isinstance(i, int) and isinstance(o, int) and i > o else 1
              for i, o in zip(input_sizes, output_size)]
    pads = [k - 1 for k in kernel]
    return kernel, pads + pads


def _adaptive_kernel(name, dims, input_sizes, output_size):
    """kernel = stride for an adaptive pooling that is a fixed-window one; raises otherwise."""
    spatial = list(input_sizes[-dims:])
    output_size = _expand(output_size, dims)
    if not all(isinstance(i, int) for i in spatial):
        raise torch.onnx.errors.OnnxExporterError(
            f"Unsupported: ONNX export of fastpool::{name} with output size {output_size} needs static spatial "
            f"input sizes (got {spatial}); only global pooling without indices (GlobalMaxPool) works with "
            "dynamic ones.")
    if not all(o > 0 and i % o == 0 for i, o in zip(spatial, output_size)):
        raise torch.onnx.errors.OnnxExporterError(
            f"Unsupported: ONNX export of fastpool::{name} with output size {output_size} for input size "
            f"{spatial}: the output size does not divide the input size, so the pooling windows vary in size, "
            "and ONNX cannot express that exactly (MaxPool has one kernel and stride per dim). torch's exporters "
            "refuse aten's adaptive max pooling here too. Output sizes that divide the input size (or are 1) "
            "export as MaxPool.")
    return [i // o for i, o in zip(spatial, output_size)]


# ---------------------------------------------------------------------------
# Legacy (TorchScript) exporter. torch's own aten::max_pool symbolic for
# opset >= 10 is private (symbolic_opset10._max_pool) and ignores unbatched
# inputs with indices (it compares a graph value to an int), and the public
# opset-9 one refuses dilation, so this mirrors the former in a few lines.

def _legacy_pool(g, input, dims, with_indices, kernel, strides, pads, dilations, ceil_mode):
    from torch.onnx import symbolic_helper as sh

    unbatched = sh._get_tensor_rank(input) == dims + 1
    if unbatched:
        input = sh._unsqueeze_helper(g, input, [0])
    attrs = dict(kernel_shape_i=kernel, strides_i=strides, pads_i=pads, dilations_i=dilations,
                 ceil_mode_i=int(ceil_mode))
    if with_indices:
        values, indices = g.op("MaxPool", input, outputs=2, **attrs)
        # ONNX indices count over N,C,spatial; a kernel-1 MaxPool's indices are
        # each element's own flat index, so its first one per plane is the
        # offset to subtract (torch's exporter does the same).
        ones = [1] * dims
        _, flat = g.op("MaxPool", input, outputs=2, kernel_shape_i=ones, strides_i=ones)
        offsets = sh._slice_helper(g, flat, axes=list(range(2, 2 + dims)), starts=[0] * dims, ends=ones)
        outputs = [values, g.op("Sub", indices, offsets)]
    else:
        outputs = [g.op("MaxPool", input, outputs=1, **attrs)]
    if unbatched:
        outputs = [sh._squeeze_helper(g, out, [0]) for out in outputs]
    return tuple(outputs) if with_indices else outputs[0]


def _legacy_max_pool(dims, with_indices):
    from torch.onnx import symbolic_helper as sh

    @sh.parse_args("v", "is", "is", "is", "is", "i")
    def symbolic(g, input, kernel_size, stride, padding, dilation, ceil_mode):
        kernel, strides, pads, dilations = _window_attributes(dims, kernel_size, stride, padding, dilation)
        return _legacy_pool(g, input, dims, with_indices, kernel, strides, pads, dilations, ceil_mode)

    return symbolic


def _legacy_adaptive_max_pool(dims, with_indices):
    from torch.onnx import symbolic_helper as sh

    name = f"adaptive_max_pool{dims}d" + ("_with_indices" if with_indices else "")

    @sh.parse_args("v", "is")
    def symbolic(g, input, output_size):
        if _expand(output_size, dims) == [1] * dims and not with_indices:
            unbatched = sh._get_tensor_rank(input) == dims + 1
            if unbatched:
                input = sh._unsqueeze_helper(g, input, [0])
            out = g.op("GlobalMaxPool", input)
            return sh._squeeze_helper(g, out, [0]) if unbatched else out
        sizes = sh._get_tensor_sizes(input) or [None] * dims
        try:
            kernel = _adaptive_kernel(name, dims, sizes, output_size)
        except torch.onnx.errors.OnnxExporterError as e:
            raise torch.onnx.errors.SymbolicValueError(str(e), input) from None  # points at the graph node
        return _legacy_pool(g, input, dims, with_indices, kernel, kernel, [0] * (2 * dims), [1] * dims, False)

    return symbolic


def _legacy_max_unpool(dims):
    from torch.onnx import symbolic_helper as sh

    def unpool(g, input, indices, output_size):
        output_size = _expand(output_size, dims)
        kernel, pads = _unpool_window((sh._get_tensor_sizes(input) or [None] * dims)[-dims:], output_size)
        unbatched = sh._get_tensor_rank(input) == dims + 1
        if unbatched:
            input, indices = (sh._unsqueeze_helper(g, t, [0]) for t in (input, indices))
        ones = [1] * dims
        n_c = sh._slice_helper(g, g.op("Shape", input), axes=[0], starts=[0], ends=[2])
        # Each plane's n * C + c, without Range (opset 11): a kernel-1
        # MaxPool's flat indices over an (N, C, 1...) tensor.
        planes = g.op("ConstantOfShape", g.op("Concat", n_c, g.op("Constant", value_t=torch.tensor(ones)), axis_i=0))
        _, plane = g.op("MaxPool", planes, outputs=2, kernel_shape_i=ones, strides_i=ones)
        plane_size = g.op("Constant", value_t=torch.tensor(math.prod(output_size), dtype=torch.int64))
        flat = g.op("Add", indices, g.op("Mul", plane, plane_size))
        shape = g.op("Concat", n_c, g.op("Constant", value_t=torch.tensor(output_size, dtype=torch.int64)), axis_i=0)
        out = g.op("MaxUnpool", input, flat, shape, kernel_shape_i=kernel, pads_i=pads)
        return sh._squeeze_helper(g, out, [0]) if unbatched else out

    if dims == 2:
        return sh.parse_args("v", "v", "is")(unpool)
    # stride and padding only enter aten's size checks, done at trace time.
    return sh.parse_args("v", "v", "is", "is", "is")(
        lambda g, input, indices, output_size, stride, padding: unpool(g, input, indices, output_size))


def _register_symbolics(opset_version=_LEGACY_MIN_OPSET):
    for dims in _UNPOOL_DIMS:
        torch.onnx.register_custom_op_symbolic(f"fastpool::max_unpool{dims}d", _legacy_max_unpool(dims),
                                               opset_version)
    for dims in _DIMS:
        for suffix, with_indices in (("", False), ("_with_indices", True)):
            torch.onnx.register_custom_op_symbolic(
                f"fastpool::max_pool{dims}d{suffix}", _legacy_max_pool(dims, with_indices), opset_version)
            torch.onnx.register_custom_op_symbolic(
                f"fastpool::adaptive_max_pool{dims}d{suffix}", _legacy_adaptive_max_pool(dims, with_indices),
                opset_version)


# ---------------------------------------------------------------------------
# Dynamo exporter: onnxscript functions. The window ops have aten's schemas,
# so onnxscript's torch_lib functions for aten's max pooling serve them as is.

def _torchlib_nn():
    try:
        from onnxscript.function_libs.torch_lib.ops import nn
    except ImportError as e:
        raise ImportError("ONNX export with dynamo=True needs onnxscript and onnx: pip install onnxscript onnx") from e
    return nn


def _dynamo_adaptive_max_pool(dims, with_indices):
    nn = _torchlib_nn()
    from onnxscript.onnx_opset import opset18 as op  # torch_lib's opset

    name = f"adaptive_max_pool{dims}d" + ("_with_indices" if with_indices else "")
    max_pool = getattr(nn, f"aten_max_pool{dims}d" + ("_with_indices" if with_indices else ""))

    def translation(self, output_size: Sequence[int]):
        if _expand(output_size, dims) == [1] * dims and not with_indices:
            unbatched = len(self.shape) == dims + 1
            out = op.GlobalMaxPool(op.Unsqueeze(self, [0]) if unbatched else self)
            return op.Squeeze(out, [0]) if unbatched else out
        sizes = [d if isinstance(d, int) else None for d in self.shape]
        kernel = _adaptive_kernel(name, dims, sizes, output_size)
        return max_pool(self, kernel, kernel)

    translation.__name__ = translation.__qualname__ = f"fastpool_{name}"
    return translation


def _dynamo_max_unpool(dims):
    _torchlib_nn()  # its error when onnxscript is missing
    from onnxscript.onnx_opset import opset18 as op

    def unpool(self, indices, output_size: Sequence[int]):
        output_size = _expand(output_size, dims)
        kernel, pads = _unpool_window([d if isinstance(d, int) else None for d in self.shape[-dims:]], output_size)
        unbatched = len(self.shape) == dims + 1
        if unbatched:
            self, indices = op.Unsqueeze(self, [0]), op.Unsqueeze(indices, [0])
        n_c = op.Shape(self, start=0, end=2)
        # torch.export's dynamic sizes arrive as 0-d int64 values, static ones as ints.
        sizes = op.Concat(*(op.Constant(value_ints=[o]) if isinstance(o, int) else op.Unsqueeze(o, [0])
                            for o in output_size), axis=0)
        plane = op.Range(0, op.ReduceProd(n_c, keepdims=0), 1)  # n * C + c
        offsets = op.Reshape(op.Mul(plane, op.ReduceProd(sizes, keepdims=0)),
                             op.Concat(n_c, op.Constant(value_ints=[1] * dims), axis=0))
        shape = op.Concat(n_c, sizes, axis=0)
        out = op.MaxUnpool(self, op.Add(indices, offsets), shape, kernel_shape=kernel, pads=pads)
        return op.Squeeze(out, [0]) if unbatched else out

    if dims == 2:
        translation = unpool
    else:
        def translation(self, indices, output_size: Sequence[int], stride: Sequence[int], padding: Sequence[int]):
            return unpool(self, indices, output_size)  # stride and padding: aten's size checks only
    translation.__name__ = translation.__qualname__ = f"fastpool_max_unpool{dims}d"
    return translation


def custom_translation_table():
    """``{fastpool op: onnxscript function}`` for ``torch.onnx.export(..., dynamo=True,
    custom_translation_table=...)``. Imports onnxscript."""
    from onnxscript.function_libs.torch_lib.ops import nn

    ops = torch.ops.fastpool
    table = {}
    for dims in _DIMS:
        for suffix, with_indices in (("", False), ("_with_indices", True)):
            table[getattr(ops, f"max_pool{dims}d{suffix}").default] = getattr(nn, f"aten_max_pool{dims}d{suffix}")
            table[getattr(ops, f"adaptive_max_pool{dims}d{suffix}").default] = _dynamo_adaptive_max_pool(
                dims, with_indices)
    for dims in _UNPOOL_DIMS:
        table[getattr(ops, f"max_unpool{dims}d").default] = _dynamo_max_unpool(dims)
    table.update(_dynamo_fractional_refusals())
    return table


def export(model, args=(), f=None, **kwargs):
    """``torch.onnx.export`` with fastpool's translations added to ``custom_translation_table``
    when exporting with dynamo (torch's default); any table given is merged in (its entries win)."""
    if kwargs.get("dynamo", True):
        kwargs["custom_translation_table"] = {**custom_translation_table(),
                                              **(kwargs.get("custom_translation_table") or {})}
    return torch.onnx.export(model, args, f, **kwargs)


# ---------------------------------------------------------------------------
# Fractional max pooling: its windows start at pseudorandom positions drawn per
# (n, c) plane from the random samples (an input), with a fixed kernel size;
# no ONNX op pools over windows given as data, so both exporters refuse it
# (as torch's exporters refuse aten's fractional_max_pool2d/3d).

_FRACTIONAL_DIMS = (2, 3)


def _fractional_refusal(dims):
    return (f"Unsupported: ONNX export of fastpool::fractional_max_pool{dims}d: ONNX cannot express fractional max "
            "pooling (its windows start at pseudorandom positions drawn per plane from the random samples, and "
            "ONNX's MaxPool has one stride per dim). Export the model with the pooling replaced, or keep it in "
            "PyTorch (torch.export, TorchScript).")


def _legacy_fractional_refusal(dims):
    def symbolic(g, input, *args):
        raise torch.onnx.errors.SymbolicValueError(_fractional_refusal(dims), input)
    return symbolic


def _dynamo_fractional_refusals():
    def refusal(dims, suffix):
        def translation(self, kernel_size: Sequence[int], output_size: Sequence[int], random_samples):
            raise torch.onnx.errors.OnnxExporterError(_fractional_refusal(dims))
        translation.__name__ = translation.__qualname__ = f"fastpool_fractional_max_pool{dims}d{suffix}"
        return translation
    return {getattr(torch.ops.fastpool, f"fractional_max_pool{dims}d{suffix}").default: refusal(dims, suffix)
            for dims in _FRACTIONAL_DIMS for suffix in ("", "_values")}


# A torch without the (deprecated) legacy exporter still imports fastpool.
if hasattr(torch.onnx, "register_custom_op_symbolic"):
    _register_symbolics()
    for _dims in _FRACTIONAL_DIMS:
        for _suffix in ("", "_values"):
            torch.onnx.register_custom_op_symbolic(f"fastpool::fractional_max_pool{_dims}d{_suffix}",
                                                   _legacy_fractional_refusal(_dims), _LEGACY_MIN_OPSET)
