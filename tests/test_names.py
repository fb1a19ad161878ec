"""Every name a test module's functions read from module scope is defined there.

test_cuda.py runs only on a GPU machine (a few minutes a visit, not every
session): elsewhere its tests skip, so a name left undefined by a refactor
(SETTINGS, assert_bits_equal: 13 tests on the 2026-11-27 GPU run) shows only
there. This reads each module's symbol tables (the standard library's symtable,
no import, no GPU) and fails on a global that nothing binds.
"""
import builtins
import pathlib
import symtable

import pytest

TESTS = pathlib.Path(__file__).parent
MODULES = sorted(p.name for p in TESTS.glob("*.py"))


def unbound_globals(source, filename):
    """(function, name) for each global a function reads that the module never binds."""
    top = symtable.symtable(source, filename, "exec")
    bound = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()}
    known = bound | set(dir(builtins)) | {"__file__", "__name__", "__doc__"}
    missing = []

    def walk(table):
        for child in table.get_children():
            if child.get_type() == "function":
                for sym in child.get_symbols():
                    if sym.is_global() and sym.is_referenced() and sym.get_name() not in known:
                        missing.append((child.get_name(), sym.get_name()))
            walk(child)

    walk(top)
    return missing


@pytest.mark.parametrize("module", MODULES)
def test_every_global_is_bound(module):
    path = TESTS / module
    assert unbound_globals(path.read_text(), str(path)) == []


def test_the_check_finds_an_unbound_name():
    source = "import torch\nSETTINGS = 1\ndef f():\n    return torch, SETTINGS, assert_bits_equal, len\n"
    assert unbound_globals(source, "example.py") == [("f", "assert_bits_equal")]
