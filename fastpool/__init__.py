"""fastpool: hand-written max-pooling kernels for PyTorch.

Drop-in replacements for torch's max pooling (``torch.nn.functional.max_pool1d``,
``max_pool2d``, ``max_pool3d``, ``adaptive_max_pool{1,2,3}d`` and the
``torch.nn`` modules; ``convert(model)`` swaps them into a model) with bit-identical
results, backed by the operators
``torch.ops.fastpool.*`` (CPU: AVX-512 / AVX2 / portable, chosen at run time).
"""
import torch  # noqa: F401  (loads libtorch before our extension)

from ._build import TORCH_VERSION as _BUILT_FOR

if torch.__version__.split("+")[0] != _BUILT_FOR.split("+")[0]:
    # The extension uses torch's C++ ABI, which changes between releases: it
    # would fail to load with an undefined symbol, or worse.
    raise ImportError(
        f"fastpool was compiled against torch {_BUILT_FOR}, but torch {torch.__version__} is installed. Install "
        f"torch=={_BUILT_FOR.split('+')[0]}, or rebuild fastpool against this torch "
        "(pip install --no-build-isolation --no-deps <fastpool source>).")

from . import _C  # noqa: F401,E402  (registers torch.ops.fastpool.*)
from . import onnx  # noqa: F401  (legacy ONNX exporter's symbolics; onnx, onnxscript imported only on use)
from .functional import (adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d, max_pool1d, max_pool2d,
                         max_pool3d)
from .functional import fractional_max_pool2d, fractional_max_pool3d
from .modules import FractionalMaxPool2d, FractionalMaxPool3d
from .functional import max_unpool1d, max_unpool2d, max_unpool3d
from .convert import convert, unconvert
from .modules import (AdaptiveMaxPool1d, AdaptiveMaxPool2d, AdaptiveMaxPool3d, MaxPool1d, MaxPool2d, MaxPool3d)
from .modules import MaxUnpool1d, MaxUnpool2d, MaxUnpool3d

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
           "adaptive_max_pool3d", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
           "AdaptiveMaxPool3d", "convert", "unconvert", "build_info"]
__all__ += ["fractional_max_pool2d", "fractional_max_pool3d", "FractionalMaxPool2d", "FractionalMaxPool3d"]
__all__ += ["max_unpool1d", "max_unpool2d", "max_unpool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d"]
__version__ = "0.1.0"


def build_info():
    """The CPU ISA paths compiled in, the one in use, and the CUDA build."""
    return _C.build_info()
