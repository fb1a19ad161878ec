#!/usr/bin/env bash
# Builds a wheel with `pip wheel --no-build-isolation .` and checks that it
# installs and works in a fresh venv holding only the same torch (nothing
# else from the build tree). Run from the repo root with the dev venv built.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
T0=$SECONDS

TORCH_VERSION="$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')"
# Build from a copy so the in-place build (fastpool/_C*.so, build/) is not reused.
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - ) | tar -C "$WORK" -xf - --one-top-level=src
(cd "$WORK/src" && "$PY" -m pip wheel -q --disable-pip-version-check --no-build-isolation --no-deps -w "$WORK/dist" .)
WHEEL="$(ls "$WORK"/dist/fastpool-*.whl)"
echo "wheel-check: built $(basename "$WHEEL") in $((SECONDS - T0))s"

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
echo "wheel-check: done in $((SECONDS - T0))s"
