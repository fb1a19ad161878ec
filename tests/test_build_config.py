"""The build's refusal of a module linked with a static copy of libstdc++
(tools/build_config.py: such a module crashes Python at its first error; the
GPU machines' compiler wrapper made one on 2026-11-27)."""
import glob
import os
import shutil
import subprocess
import sys

import pytest

import fastpool

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import build_config  # noqa: E402

SOURCE = ('#include <string>\n'
          'extern "C" int size_of(const char* s) { return static_cast<int>(std::string(s).size()); }\n')


def shared_library(tmp_path, name, *flags):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("no g++ to link a test library with")
    src, lib = tmp_path / "lib.cpp", tmp_path / name
    src.write_text(SOURCE)
    subprocess.run([gxx, "-shared", "-fPIC", *flags, str(src), "-o", str(lib)], check=True, capture_output=True)
    return str(lib)


def test_the_built_module_needs_the_shared_libstdcxx():
    (module,) = glob.glob(os.path.join(os.path.dirname(fastpool.__file__), "_C*.so"))
    needed = build_config.elf_needed_libraries(module)
    assert "libstdc++.so.6" in needed and "libc10.so" in needed
    build_config.check_dynamic_libstdcxx(module)


def test_a_static_libstdcxx_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("FASTPOOL_ALLOW_STATIC_LIBSTDCXX", raising=False)
    dynamic = shared_library(tmp_path, "dynamic.so")
    assert "libstdc++.so.6" in build_config.elf_needed_libraries(dynamic)
    build_config.check_dynamic_libstdcxx(dynamic)
    static = shared_library(tmp_path, "static.so", "-static-libstdc++")
    assert not any(n.startswith("libstdc++") for n in build_config.elf_needed_libraries(static))
    with pytest.raises(RuntimeError, match="static copy of the C\\+\\+ library"):
        build_config.check_dynamic_libstdcxx(static)
    monkeypatch.setenv("FASTPOOL_ALLOW_STATIC_LIBSTDCXX", "1")
    build_config.check_dynamic_libstdcxx(static)


def test_not_an_elf_file_is_not_judged(tmp_path):
    path = tmp_path / "module.so"
    path.write_bytes(b"MZ not an ELF file")
    assert build_config.elf_needed_libraries(str(path)) is None
    build_config.check_dynamic_libstdcxx(str(path))
