"""Build configuration shared by setup.py and the CI/GPU scripts.

Kept out of setup.py so the flags and the CUDA discovery can be read (and
tested) without running a build.
"""
import glob
import os
import shutil

# Each ISA translation unit includes the same kernel source and is compiled with
# its own flags; none of them is ever -march=native.
ISA_COMMON_FLAGS = ["-O3", "-std=c++17", "-fPIC", "-fno-math-errno", "-Wall"]
ISA_SOURCES = [
    ("csrc/cpu/isa_avx512.cpp", ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mf16c", "-mfma"]),
    ("csrc/cpu/isa_avx2.cpp", ["-mavx2", "-mfma", "-mf16c"]),
    ("csrc/cpu/isa_portable.cpp", []),
]

CXX_FLAGS = ["-O3", "-std=c++17"]


def _cpu_sources(root):
    srcs = [os.path.join("csrc", "fastpool.cpp"), os.path.join("csrc", "pool_shape.cpp")]
    srcs += [os.path.join("csrc", f) for f in ("max_pool_meta.cpp", "build_info.cpp")]
    isa = {os.path.normpath(s) for s, _ in ISA_SOURCES}
    for path in sorted(glob.glob(os.path.join(root, "csrc", "cpu", "*.cpp"))):
        rel = os.path.relpath(path, root)
        if os.path.normpath(rel) not in isa:
            srcs.append(rel)
    return srcs


def want_cuda():
    """FASTPOOL_CUDA=0/1 forces; default: CUDA when torch has CUDA and nvcc is found."""
    flag = os.environ.get("FASTPOOL_CUDA", "").strip()
    if flag in ("0", "1"):
        return flag == "1"
    if flag:
        raise ValueError(f"FASTPOOL_CUDA must be 0 or 1, got {flag!r}")
    import torch

    return torch.version.cuda is not None and shutil.which("nvcc") is not None


def make_extension(root):
    from torch.utils.cpp_extension import CppExtension

    define_macros = [("FASTPOOL_CUDA_BUILD", "0")]
    return CppExtension(
        "fastpool._C",
        _cpu_sources(root),
        include_dirs=[os.path.join(root, "csrc")],
        define_macros=define_macros,
        extra_compile_args={"cxx": CXX_FLAGS},
    )
