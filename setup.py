"""Builds fastpool._C with torch.utils.cpp_extension.

C++ always. The per-ISA CPU kernels (csrc/cpu/isa_*.cpp) are compiled once per
instruction set with that set's flags and linked into the same module; the
best one is picked at run time. CUDA kernels are added when torch has CUDA and
nvcc is found (FASTPOOL_CUDA=0/1 forces either way).
"""
import os
import sys

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import build_config  # noqa: E402  (tools/build_config.py: flags and CUDA discovery)

from torch.utils.cpp_extension import BuildExtension  # noqa: E402


class BuildWithISA(BuildExtension):
    """Compiles each csrc/cpu/isa_*.cpp with its own ISA flags, then links them in."""

    def finalize_options(self):
        super().finalize_options()
        # One object folder in the source tree: pip's editable and wheel builds
        # would compile into a fresh temporary folder each time. With a fixed
        # one, ninja and the ISA stamps rebuild only what changed.
        self.build_temp = os.path.join(ROOT, "build", "temp")

    def build_extensions(self):
        from concurrent.futures import ThreadPoolExecutor

        # An ISA object is up to date when it is newer than every file its last
        # compile read (the compiler's own dependency list, -MMD) and was
        # compiled with the same flags. (The other sources go through ninja,
        # which tracks its own dependencies.)
        def newer_than_its_inputs(obj):
            try:
                with open(obj + ".d") as f:
                    inputs = f.read().replace("\\\n", " ").split(":", 1)[1].split()
                return all(os.path.getmtime(obj) > os.path.getmtime(path) for path in inputs)
            except (OSError, IndexError):
                return False

        def compile_isa(entry):
            src, flags = entry
            rel = os.path.relpath(os.path.join(ROOT, src))
            (obj,) = self.compiler.object_filenames([rel], output_dir=self.build_temp)
            args = build_config.ISA_COMMON_FLAGS + flags
            stamp = obj + ".flags"
            up_to_date = (os.path.exists(obj) and os.path.exists(stamp) and newer_than_its_inputs(obj)
                          and open(stamp).read() == " ".join(args))
            if up_to_date:
                print(f"fastpool: {src} is up to date", flush=True)
                return [obj]
            print(f"fastpool: compiling {src} ({' '.join(flags) or 'portable'})", flush=True)
            objects = self.compiler.compile([rel], output_dir=self.build_temp,
                                            include_dirs=[os.path.join(ROOT, "csrc")],
                                            extra_postargs=args + ["-MMD", "-MF", obj + ".d"])
            with open(stamp, "w") as f:
                f.write(" ".join(args))
            return objects

        # One compiler process per ISA, side by side (each is a separate g++ run).
        jobs = int(os.environ.get("MAX_JOBS") or os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(build_config.ISA_SOURCES)))) as pool:
            objects = [o for objs in pool.map(compile_isa, build_config.ISA_SOURCES) for o in objs]
        for ext in self.extensions:
            ext.extra_objects = list(ext.extra_objects or []) + objects
        super().build_extensions()


# The extension links against this torch's C++ ABI and loads into no other:
# the wheel requires it, and fastpool/__init__.py checks it before loading _C
# (a clear ImportError instead of an undefined symbol).
import torch  # noqa: E402

TORCH_BASE_VERSION = torch.__version__.split("+")[0]
with open(os.path.join(ROOT, "fastpool", "_build.py"), "w") as f:
    f.write("# Written by setup.py: the torch this build of fastpool was compiled against.\n"
            f"TORCH_VERSION = {torch.__version__!r}\n")

setup(
    install_requires=[f"torch=={TORCH_BASE_VERSION}"],
    packages=find_packages(include=["fastpool", "fastpool.*"]),
    ext_modules=[build_config.make_extension(ROOT)],
    cmdclass={"build_ext": BuildWithISA.with_options(use_ninja=True)},
)
