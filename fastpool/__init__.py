"""fastpool: hand-written max-pooling kernels for PyTorch.

Drop-in replacements for torch's max pooling (``torch.nn.functional.max_pool1d``,
``max_pool2d``, ``max_pool3d`` and the ``torch.nn`` modules) with bit-identical
results, backed by the operators
``torch.ops.fastpool.*`` (CPU: AVX-512 / AVX2 / portable, chosen at run time).
"""
import torch  # noqa: F401  (loads libtorch before our extension)

from . import _C  # noqa: F401  (registers torch.ops.fastpool.*)
from . import _ops  # noqa: F401  (autograd formulas)
from .functional import max_pool1d, max_pool2d, max_pool3d
from .modules import MaxPool1d, MaxPool2d, MaxPool3d

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "MaxPool1d", "MaxPool2d", "MaxPool3d", "build_info"]
__version__ = "0.1.0"


def build_info():
    """The CPU ISA paths compiled in, the one in use, and the CUDA build."""
    return _C.build_info()
