#!/usr/bin/env bash
# Checks the wheel tools/build_wheel.sh makes: a manylinux tag, a stripped
# module of a few MB, the torch it was built for as its requirement; that it
# installs and works in a fresh venv holding only that torch (nothing else
# from the build tree); and that with another torch its import fails with a
# clear error. Run from the repo root with the dev venv built;
# FASTPOOL_WHEEL=path checks that wheel instead of building one.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
T0=$SECONDS
MAX_WHEEL_BYTES=$((8 * 1024 * 1024))

if [ -n "${FASTPOOL_WHEEL:-}" ]; then  # check a wheel built before
  WHEEL="$FASTPOOL_WHEEL"
else
  bash "$ROOT/tools/build_wheel.sh" "$WORK/wheelhouse"
  WHEEL="$(ls "$WORK"/wheelhouse/fastpool-*.whl)"
fi
TORCH_VERSION="$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')"

fail() { echo "wheel-check: FAIL: $*" >&2; exit 1; }
case "$(basename "$WHEEL")" in
  *-manylinux_2_*_x86_64.whl) ;;
  *) fail "not a manylinux wheel: $(basename "$WHEEL")" ;;
esac
SIZE=$(stat -c %s "$WHEEL")
[ "$SIZE" -le "$MAX_WHEEL_BYTES" ] || fail "wheel is $SIZE bytes (over $MAX_WHEEL_BYTES: debug info left in?)"
"$PY" - "$WHEEL" "$TORCH_VERSION" <<'PYCODE'
import sys, zipfile
wheel, torch_version = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    grafted = [n for n in names if ".libs/" in n]
requires = [l for l in meta.splitlines() if l.startswith("Requires-Dist:")]
assert f"Requires-Dist: torch=={torch_version}" in requires, requires
assert not any(("torch" in n or "c10" in n or "gomp" in n) for n in grafted), grafted
print("wheel-check: requires", requires, "grafted libraries:", grafted or "none")
PYCODE
echo "wheel-check: $(basename "$WHEEL"), $((SIZE / 1024)) KiB"

"$(command -v python3)" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check "torch==$TORCH_VERSION"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check --no-deps "$WHEEL"
cd "$WORK"  # not the source tree: import the installed package
"$WORK/venv/bin/python" - <<'PYCODE'
import torch, torch.nn.functional as F
import fastpool
assert "site-packages" in fastpool.__file__, fastpool.__file__
x = torch.randn(2, 3, 9, 9, requires_grad=True)
out, idx = fastpool.max_pool2d(x, 3, 2, 1, return_indices=True)
ref, ref_idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
assert torch.equal(out, ref) and torch.equal(idx, ref_idx)
out.sum().backward()
print("wheel-check: installed wheel works:", fastpool.build_info())
PYCODE

# Another torch: the import must say which torch fastpool needs. A real one
# where the CUDA build check left its venv (torch 2.14.1), and always the same
# check against the installed wheel told it was built for another version.
expect_clear_error() {  # what the mismatch is, then the command that imports fastpool
  local what="$1" out
  shift
  if out="$("$@" -c 'import fastpool' 2>&1)"; then fail "import succeeded with another torch ($what)"; fi
  echo "$out" | grep -q "fastpool was compiled against torch" || fail "unclear error with another torch ($what): $out"
  echo "wheel-check: with another torch ($what): $(echo "$out" | tail -1)"
}
if [ -x "$ROOT/.venv-cuda/bin/python" ]; then
  "$ROOT/.venv-cuda/bin/python" -m pip install -q --disable-pip-version-check --no-deps --target "$WORK/other" "$WHEEL"
  expect_clear_error "torch $("$ROOT/.venv-cuda/bin/python" -c 'import torch; print(torch.__version__)')" \
    env PYTHONPATH="$WORK/other" "$ROOT/.venv-cuda/bin/python"
fi
BUILD_PY="$("$WORK/venv/bin/python" -c 'import importlib.util as u; print(u.find_spec("fastpool").submodule_search_locations[0])')/_build.py"
sed -i 's/^TORCH_VERSION = .*/TORCH_VERSION = "0.0.1"/' "$BUILD_PY"
expect_clear_error "the installed wheel marked as built for torch 0.0.1" "$WORK/venv/bin/python"
echo "wheel-check: done in $((SECONDS - T0))s"
