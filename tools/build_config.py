"""Build configuration shared by setup.py and the CI/GPU scripts.

Kept out of setup.py so the flags and the CUDA discovery can be read (and
tested) without running a build.
"""
import glob
import os
import shutil

# Each ISA translation unit includes the same kernel source and is compiled with
# its own flags; none of them is ever -march=native.
# -Wno-maybe-uninitialized: GCC 12 flags its own intrinsics (__Y) and the
# running-max registers that first() sets before any use.
# FASTPOOL_DEBUG_INFO=1 keeps debug info (gdb, sanitizers). Without it nothing
# is generated only to be stripped at link time: -g0 overrides the -g of
# Python's own CFLAGS, which setuptools puts on every compile (-g costs ~40%
# of the compile time of a TU that includes torch).
DEBUG_INFO = os.environ.get("FASTPOOL_DEBUG_INFO") == "1"
NO_DEBUG_INFO = [] if DEBUG_INFO else ["-g0"]
ISA_COMMON_FLAGS = ["-O3", "-std=c++17", "-fPIC", "-fno-math-errno", "-Wall", "-Wno-maybe-uninitialized"] + NO_DEBUG_INFO
ISA_SOURCES = [
    ("csrc/cpu/isa_avx512.cpp", ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mf16c", "-mfma"]),
    ("csrc/cpu/isa_avx2.cpp", ["-mavx2", "-mfma", "-mf16c"]),
    ("csrc/cpu/isa_portable.cpp", []),
]
# Each ISA source is compiled in this many parts (-DFASTPOOL_ISA_PART=0..N-1,
# max_pool_kernels.h: make_table), each its own object: one whole AVX-512
# object took 160 s, most of it the planar forwards.
ISA_PARTS = 3

# -fopenmp: at::parallel_for is an inline `#pragma omp parallel` in torch's
# headers; without the flag it silently runs on one thread. The extension then
# links the libgomp.so.1 torch already loaded (same SONAME), not a second runtime.
CXX_FLAGS = ["-O3", "-std=c++17", "-fopenmp"] + NO_DEBUG_INFO
# -s: no debug info or symbol table in the module (68 MB -> a few MB); the
# dynamic symbols stay. FASTPOOL_DEBUG_INFO=1 keeps them (gdb, sanitizers).
LINK_FLAGS = ["-fopenmp"] + ([] if DEBUG_INFO else ["-s"])


def _cpu_sources(root):
    srcs = [os.path.join("csrc", "fastpool.cpp"), os.path.join("csrc", "pool_shape.cpp")]
    srcs += [os.path.join("csrc", f)
             for f in ("max_pool_meta.cpp", "autograd.cpp", "eager_calls.cpp", "build_info.cpp",
                       "fractional_shape.cpp", "fractional_meta.cpp",
                       "max_unpool_meta.cpp", "max_unpool_autograd.cpp", "double_backward.cpp")]
    # The CUDA ops' host side (job preparation) and the host executor that runs
    # them, kernel bodies included, on the CPU: in every build, so tests run them.
    srcs += [os.path.join("csrc", "cuda", f) for f in ("max_pool_jobs.cpp", "host_executor.cpp")]
    isa = {os.path.normpath(s) for s, _ in ISA_SOURCES}
    for path in sorted(glob.glob(os.path.join(root, "csrc", "cpu", "*.cpp"))):
        rel = os.path.relpath(path, root)
        if os.path.normpath(rel) not in isa:
            srcs.append(rel)
    return srcs


# CUDA: sm_75 (T4) to sm_90 (H100) as machine code, plus compute_90 PTX that
# the driver JIT-compiles for newer GPUs (Blackwell). 8.6 code also runs on 8.9.
DEFAULT_CUDA_ARCH_LIST = "7.5;8.0;8.6;9.0+PTX"
NVCC_FLAGS = ["-O3", "-std=c++17", "-lineinfo", "--expt-relaxed-constexpr"]


def _is_cuda_root(path):
    return bool(path) and os.path.isfile(os.path.join(path, "bin", "nvcc")) and os.path.isfile(
        os.path.join(path, "include", "cuda_runtime.h")
    )


def _nvcc_reported_root(nvcc):
    """The toolkit root nvcc itself uses (its TOP), which sees through wrapper scripts."""
    import subprocess

    try:
        out = subprocess.run(
            [nvcc, "--dryrun", "-c", "-x", "cu", os.devnull, "-o", os.devnull],
            capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    for line in (out.stdout + out.stderr).splitlines():
        line = line.strip()
        if line.startswith("#$ TOP="):
            return os.path.normpath(line[len("#$ TOP="):].strip())
    return None


def find_cuda_home():
    """The CUDA toolkit's own root directory, or None.

    $CUDA_HOME/$CUDA_PATH when they hold a toolkit; else the root of the nvcc on
    PATH, resolved through symlinks and, for wrapper scripts (where torch's guess
    of dirname(dirname(nvcc)) is wrong), by asking nvcc; else /usr/local/cuda.
    """
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if _is_cuda_root(os.environ.get(var)):
            return os.path.normpath(os.environ[var])
    nvcc = shutil.which("nvcc")
    if nvcc:
        guess = os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))
        if _is_cuda_root(guess):
            return guess
        reported = _nvcc_reported_root(nvcc)
        if _is_cuda_root(reported):
            return reported
    for guess in ["/usr/local/cuda"] + sorted(glob.glob("/usr/local/cuda-*"), reverse=True):
        if _is_cuda_root(guess):
            return os.path.realpath(guess)
    return None


def pip_cuda_include_dirs(cuda_version=None):
    """Header folders of the pip-installed NVIDIA wheels torch depends on.

    A bare toolkit may lack library headers that ATen/cuda/CUDAContext.h pulls in
    (cusparse.h, cublas_v2.h, ...). They are added with -isystem, which is
    searched after the toolkit's own -I folder, so the toolkit's headers win.
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return []
    major = (cuda_version or "").split(".")[0]
    dirs = []
    for base in spec.submodule_search_locations:
        merged = os.path.join(base, f"cu{major}", "include") if major else ""
        if merged and os.path.isdir(merged):
            dirs.append(merged)  # CUDA 13 wheels: one merged folder
        else:
            dirs += sorted(glob.glob(os.path.join(base, "*", "include")))  # CUDA 12: one per library
    return dirs


def cuda_arch_list():
    """TORCH_CUDA_ARCH_LIST if set (';' or ' ' separated, optional +PTX), else the default."""
    raw = os.environ.get("TORCH_CUDA_ARCH_LIST", "").strip() or DEFAULT_CUDA_ARCH_LIST
    return [a for a in raw.replace(" ", ";").split(";") if a]


def cuda_gencode_flags(archs):
    flags = []
    for arch in archs:
        ptx = arch.endswith("+PTX")
        num = arch[: -len("+PTX")] if ptx else arch
        major, _, minor = num.partition(".")
        if not (major.isdigit() and minor[:1].isdigit()):
            raise ValueError(f"TORCH_CUDA_ARCH_LIST: bad CUDA arch {arch!r} (expected e.g. 9.0 or 9.0+PTX)")
        code = major + minor  # e.g. 90, 90a
        flags.append(f"-gencode=arch=compute_{code},code=sm_{code}")
        if ptx:
            flags.append(f"-gencode=arch=compute_{code},code=compute_{code}")
    return flags


def torch_cxx_std():
    """The C++ standard torch's headers require: c++20 from torch 2.14 on, else c++17.

    Read from ATen.h's own #error line, so no torch import is needed.
    """
    import importlib.util
    import re

    spec = importlib.util.find_spec("torch")
    for base in (spec.submodule_search_locations or []) if spec else []:
        try:
            with open(os.path.join(base, "include", "ATen", "ATen.h")) as f:
                m = re.search(r"C\+\+(\d+) or later", f.read())
        except OSError:
            continue
        if m:
            return "c++" + m.group(1)
    return "c++17"


def torch_cxx_flags():
    """CXX_FLAGS with the -std torch needs (only sources that include torch use these)."""
    std = torch_cxx_std()
    return [f"-std={std}" if f.startswith("-std=") else f for f in CXX_FLAGS]


def want_cuda():
    """FASTPOOL_CUDA=0/1 forces; default: CUDA when torch has CUDA and nvcc is found."""
    flag = os.environ.get("FASTPOOL_CUDA", "").strip()
    if flag in ("0", "1"):
        return flag == "1"
    if flag:
        raise ValueError(f"FASTPOOL_CUDA must be 0 or 1, got {flag!r}")
    import torch

    return torch.version.cuda is not None and find_cuda_home() is not None


def _cuda_extension(root):
    import torch
    import torch.utils.cpp_extension as cpp_extension

    if torch.version.cuda is None:
        raise RuntimeError(f"FASTPOOL_CUDA=1 needs a CUDA build of PyTorch; this one is {torch.__version__}")
    cuda_home = find_cuda_home()
    if cuda_home is None:
        raise RuntimeError("FASTPOOL_CUDA=1 but no CUDA toolkit found (set CUDA_HOME or put nvcc on PATH)")
    # torch guessed CUDA_HOME when cpp_extension was imported; correct both.
    os.environ["CUDA_HOME"] = cuda_home
    cpp_extension.CUDA_HOME = cuda_home

    archs = cuda_arch_list()
    std = torch_cxx_std()
    nvcc_flags = [f"-std={std}" if f.startswith("-std=") else f for f in NVCC_FLAGS] + cuda_gencode_flags(archs)
    for d in pip_cuda_include_dirs(torch.version.cuda):
        nvcc_flags += ["-isystem", d]
    sources = _cpu_sources(root) + sorted(
        os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "csrc", "cuda", "*.cu"))
    )
    return cpp_extension.CUDAExtension(
        "fastpool._C",
        sources,
        include_dirs=[os.path.join(root, "csrc")],
        define_macros=[("FASTPOOL_CUDA_BUILD", "1"), ("FASTPOOL_CUDA_ARCH_LIST", '"' + ";".join(archs) + '"')],
        extra_compile_args={"cxx": torch_cxx_flags(), "nvcc": nvcc_flags},
        extra_link_args=LINK_FLAGS,
    )


def make_extension(root):
    if want_cuda():
        return _cuda_extension(root)

    from torch.utils.cpp_extension import CppExtension

    define_macros = [("FASTPOOL_CUDA_BUILD", "0")]
    return CppExtension(
        "fastpool._C",
        _cpu_sources(root),
        include_dirs=[os.path.join(root, "csrc")],
        define_macros=define_macros,
        extra_compile_args={"cxx": torch_cxx_flags()},
        extra_link_args=LINK_FLAGS,
    )


# ---- the built module's C++ runtime --------------------------------------
# torch's errors are C++ exceptions whose messages fastpool's code formats with
# the C++ library it was linked with. A module that carries a private static
# copy of libstdc++ (a -static-libstdc++ link, or a compiler wrapper that links
# one: the GPU machines' CXX=/opt/gcc/bin/g++ did, 2026-11-27) mixes two C++
# runtimes in one process; that one crashed the interpreter with a segmentation
# fault at its first error, in every op. Such a module lists no libstdc++.so.6
# among the libraries it needs: the build refuses it rather than install a
# module that may crash.

def elf_needed_libraries(path):
    """The DT_NEEDED names of a 64-bit little-endian ELF file, or None for any other file."""
    import struct

    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:  # ELFCLASS64, ELFDATA2LSB
        return None
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    # (p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align)
    segments = [struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize) for i in range(phnum)]
    dynamic = [s for s in segments if s[0] == 2]  # PT_DYNAMIC
    if not dynamic:
        return []
    offset, size = dynamic[0][2], dynamic[0][5]
    entries = [struct.unpack_from("<qQ", data, offset + i * 16) for i in range(size // 16)]
    strtab = next(value for tag, value in entries if tag == 5)  # DT_STRTAB, a virtual address
    # The string table's file offset: through the PT_LOAD segment that maps it.
    base = next(s[2] + strtab - s[3] for s in segments if s[0] == 1 and s[3] <= strtab < s[3] + s[5])
    names = []
    for tag, value in entries:
        if tag == 0:  # DT_NULL
            break
        if tag == 1:  # DT_NEEDED: an offset into the string table
            start = base + value
            names.append(data[start:data.index(b"\0", start)].decode())
    return names


def check_dynamic_libstdcxx(module_path):
    """Raises where the module was linked with a static copy of libstdc++ (see above).
    FASTPOOL_ALLOW_STATIC_LIBSTDCXX=1 skips the check."""
    if os.environ.get("FASTPOOL_ALLOW_STATIC_LIBSTDCXX") == "1":
        return
    needed = elf_needed_libraries(module_path)
    if needed is None or any(name.startswith("libstdc++.so") for name in needed):
        return
    raise RuntimeError(
        f"{module_path} was linked with a static copy of the C++ library (no libstdc++.so.6 among the "
        f"libraries it needs: {', '.join(needed)}). Such a module can crash Python at its first error. "
        f"The compiler was {os.environ.get('CXX', 'c++')!r}: rebuild with one that links libstdc++ "
        "dynamically, e.g. CXX=/usr/bin/g++ CC=/usr/bin/gcc (FASTPOOL_ALLOW_STATIC_LIBSTDCXX=1 skips this check).")
