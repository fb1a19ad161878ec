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
    """Compiles each csrc/cpu/isa_*.cpp with its own ISA flags, in parts, beside ninja; links them in."""

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
            src, flags, part = entry
            rel = os.path.relpath(os.path.join(ROOT, src))
            output_dir = os.path.join(self.build_temp, f"isa_part{part}")
            (obj,) = self.compiler.object_filenames([rel], output_dir=output_dir)
            args = build_config.ISA_COMMON_FLAGS + flags + [f"-DFASTPOOL_ISA_PART={part}"]
            stamp = obj + ".flags"
            name = f"{src} part {part}"
            up_to_date = (os.path.exists(obj) and os.path.exists(stamp) and newer_than_its_inputs(obj)
                          and open(stamp).read() == " ".join(args))
            if up_to_date:
                print(f"fastpool: {name} is up to date", flush=True)
                return obj
            print(f"fastpool: compiling {name} ({' '.join(flags) or 'portable'})", flush=True)
            (compiled,) = compile_one([rel], output_dir=output_dir, include_dirs=[os.path.join(ROOT, "csrc")],
                                      extra_postargs=args + ["-MMD", "-MF", obj + ".d"])
            with open(stamp, "w") as f:
                f.write(" ".join(args))
            print(f"fastpool: compiled {name}", flush=True)
            return compiled

        # The ISA objects compile beside ninja's (each a g++ run of its own,
        # the widest ISA's parts first); the link waits for them.
        entries = [(src, flags, part) for src, flags in build_config.ISA_SOURCES
                   for part in range(build_config.ISA_PARTS)]
        jobs = int(os.environ.get("MAX_JOBS") or os.cpu_count() or 1)
        # The compiler's own compile: BuildExtension swaps in its ninja one for
        # the other sources while these threads run.
        compile_one, link = self.compiler.compile, self.compiler.link
        pool = ThreadPoolExecutor(max_workers=max(1, min(jobs, len(entries))))
        isa_objects = [pool.submit(compile_isa, entry) for entry in entries]

        def link_after_isa(target_desc, objects, *args, **kwargs):
            isa = [f.result() for f in isa_objects]  # a failed compile raises here
            return link(target_desc, list(objects) + isa, *args, **kwargs)

        self.compiler.link = link_after_isa
        try:
            super().build_extensions()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self.compiler.link = link
        for ext in self.extensions:
            build_config.check_dynamic_libstdcxx(self.get_ext_fullpath(ext.name))


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
