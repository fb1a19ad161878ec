"""The argument parsing of torch's functions, for fastpool's functional API.

torch.nn.functional's pooling functions hand their arguments to torch's C++
argument parser (``torch.max_pool2d(input, kernel_size, ...)``), which raises
TypeError, with messages of its own, for an argument of the wrong type and
converts what it takes (numpy integers, integer tensors of one element, ...)
to ints. fastpool's ops would parse them differently, so the functional API
parses them here as torch does: the same errors (type and message), and the
values as torch would take them.
"""
import operator

import torch
from torch.nn.modules.utils import _list_with_default  # torch's handling of None in output_size

_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE


def _type_name(obj):
    """The name the parser prints for obj's type (its C tp_name): numpy.float64
    for a type of a C extension, the bare name for builtins and Python classes."""
    cls = type(obj)
    if cls.__module__ == "builtins" or cls.__flags__ & _HEAP_TYPE:
        return cls.__name__
    return f"{cls.__module__}.{cls.__name__}"


def _is_index(obj):
    # An int, or what has __index__ (numpy integers), never a bool.
    if isinstance(obj, bool):
        return False
    if isinstance(obj, (int, torch.SymInt)):
        return True
    try:
        operator.index(obj)
    except Exception:  # noqa: BLE001 - the parser takes any failure as "no"
        return False
    return True


def _is_int(obj):
    # What the parser takes as an int: also an integer (or bool) tensor of one element.
    if isinstance(obj, torch.Tensor):
        return obj.numel() == 1 and not (obj.is_floating_point() or obj.is_complex())
    return _is_index(obj)


_OVERFLOW = "Overflow when unpacking long long"


def _unpack_int(obj):
    # Raises ValueError with the text the parser gives after "failed to unpack
    # the object at pos N with error" (an overflow's is a C++ error's, whose
    # backtrace follows on lines of its own).
    if isinstance(obj, torch.SymInt):
        return obj
    try:
        value = operator.index(obj)
    except Exception:  # noqa: BLE001
        raise ValueError(f"type must be tuple of ints,but got {_type_name(obj)}") from None
    if not -(2**63) <= value < 2**63:
        raise ValueError(_OVERFLOW + "\n")
    return value


class Parser:
    """One of torch's function signatures: ``Parser("max_pool2d")`` parses
    ``max_pool2d(Tensor input, int[2] kernel_size, ...)``'s arguments, in the
    order of the signature (types first, then the values of int lists)."""

    def __init__(self, name):
        self.name = name
        self._unpack = []  # (position, name, value) of the int lists, unpacked after every type check

    def _fail(self, position, arg, expected, value):
        raise TypeError(f"{self.name}(): argument '{arg}' (position {position}) must be {expected}, "
                        f"not {_type_name(value)}")

    def tensor(self, position, arg, value):
        if not isinstance(value, torch.Tensor):
            self._fail(position, arg, "Tensor", value)
        return self

    def boolean(self, position, arg, value):
        if not isinstance(value, (bool, torch.SymBool)):
            self._fail(position, arg, "bool", value)
        return self

    def int_list(self, position, arg, value):
        """int[N], N > 0: a tuple or list of ints, or one int."""
        if isinstance(value, (tuple, list)):
            if len(value) and not _is_int(value[0]):
                raise TypeError(f"{self.name}(): argument '{arg}' (position {position}) must be tuple of ints, "
                                f"but found element of type {_type_name(value[0])} at pos 0")
        elif not _is_int(value):
            self._fail(position, arg, "tuple of ints", value)
        self._unpack.append((arg, value))
        return self

    def values(self):
        """The int lists as torch takes them (ints, or lists of ints), in order.
        torch's bindings unpack them last to first (the order in which GCC
        evaluates a call's arguments), so an error names the last bad one."""
        out = []
        for arg, value in reversed(self._unpack):
            if not isinstance(value, (tuple, list)):
                if isinstance(value, torch.SymInt):
                    out.append(value)
                    continue
                value = operator.index(value)
                if not -(2**63) <= value < 2**63:
                    raise ValueError(_OVERFLOW)
                out.append(value)
                continue
            items = []
            for pos, item in enumerate(value, 1):
                try:
                    items.append(_unpack_int(item))
                except ValueError as e:
                    raise TypeError(f"{self.name}(): argument '{arg}' failed to unpack the object at pos {pos} "
                                    f"with error \"{e}\"") from None
            out.append(items)
        return out[::-1]


_INT64 = range(-(2**63), 2**63)  # `v in range` is O(1) for an int


def _plain_ints(value, dims, may_be_empty=False):
    """An int, or a tuple or list of 1 or dims ints (0 when may_be_empty), all
    in int64's range: what torch's parser takes as it is."""
    if type(value) is int:
        return value in _INT64
    if type(value) is not tuple and type(value) is not list:
        return False
    if len(value) not in (1, dims) and not (may_be_empty and not value):
        return False
    for v in value:
        if type(v) is not int or v not in _INT64:
            return False
    return True


def plain_max_pool_args(dims, input, kernel_size, stride, padding, dilation, ceil_mode):
    """Whether torch's parser would take these arguments as they are (what
    models pass: a tensor, plain ints, a bool), so that they need no parsing."""
    return (type(ceil_mode) is bool and isinstance(input, torch.Tensor) and _plain_ints(kernel_size, dims)
            and _plain_ints(stride, dims, may_be_empty=True) and _plain_ints(padding, dims)
            and _plain_ints(dilation, dims))


def plain_output_size(dims, input, output_size):
    """Whether adaptive pooling's arguments need no parsing: a tensor and an
    int or ints (no None entries), for which torch's _list_with_default (2-d,
    3-d) would raise nothing (it checks the input's rank against a list)."""
    return (isinstance(input, torch.Tensor) and _plain_ints(output_size, dims)
            and (dims == 1 or type(output_size) is int or input.dim() > len(output_size)))


def max_pool_args(dims, return_indices, input, kernel_size, stride, padding, dilation, ceil_mode):
    """torch.nn.functional.max_pool{dims}d's parsing (stride None already []):
    the values of kernel_size, stride, padding, dilation and ceil_mode."""
    if dims == 3 and return_indices:
        input.is_cuda  # noqa: B018 - torch's max_pool3d with indices reads it first (AttributeError if no tensor)
    name = f"max_pool{dims}d" + ("_with_indices" if return_indices else "")
    parser = Parser(name).tensor(1, "input", input)
    for position, (arg, value) in enumerate(
            [("kernel_size", kernel_size), ("stride", stride), ("padding", padding), ("dilation", dilation)], 2):
        parser.int_list(position, arg, value)
    parser.boolean(6, "ceil_mode", ceil_mode)
    return (*parser.values(), bool(ceil_mode))


def adaptive_max_pool_args(dims, input, output_size):
    """torch.nn.functional.adaptive_max_pool{dims}d's parsing: output_size's
    value (2-d, 3-d: None entries replaced by the input's sizes there)."""
    if dims > 1:
        output_size = _list_with_default(output_size, input.size())
    parser = Parser(f"adaptive_max_pool{dims}d").tensor(1, "input", input).int_list(2, "output_size", output_size)
    return parser.values()[0]
