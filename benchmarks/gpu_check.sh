#!/usr/bin/env bash
# Everything fastpool checks on a GPU, in one script for a bare GPU machine that
# has PyTorch (CUDA build) and nvcc: build with CUDA, run the CUDA tests
# (parity with torch CUDA), compute-sanitizer memcheck + racecheck on a short
# test, then the GPU benchmark (ResNet stem and VGG pooling, both layouts,
# fp32 and bf16, forward and backward, % of stream roofline).
#
#   bash benchmarks/gpu_check.sh              # all steps
#   STEPS="build test" bash benchmarks/gpu_check.sh
#
# Env: PYTHON (default python3), STEPS (build test sanitizer bench),
# TORCH_CUDA_ARCH_LIST (default: this GPU's arch, for a quick build),
# BENCH_OUT (default benchmarks/results), SLOW=1 to add the >2^31-element tests,
# ALLOW_NO_GPU=1 for a trial run without a GPU (build and host-logic tests only).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
STEPS="${STEPS:-build test sanitizer bench}"
BENCH_OUT="${BENCH_OUT:-$ROOT/benchmarks/results}"
T0=$SECONDS
FAILED=()
step() { echo; echo "== [$((SECONDS - T0))s] $*"; }
want() { [[ " $STEPS " == *" $1 "* ]]; }

step "environment"
if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true; fi
HAVE_GPU=1
if ! "$PY" - <<'EOF'
import sys
import torch
print("torch", torch.__version__, "CUDA", torch.version.cuda)
if not torch.cuda.is_available():
    sys.exit("no usable GPU: torch.cuda.is_available() is False")
print("GPU", torch.cuda.get_device_name(0), "sm_%d%d" % torch.cuda.get_device_capability(0))
EOF
then
  # A trial run on a machine without a GPU: build and host-logic tests only.
  [ "${ALLOW_NO_GPU:-0}" = "1" ] || { echo "set ALLOW_NO_GPU=1 for a build-only trial run"; exit 1; }
  HAVE_GPU=0
  STEPS="${STEPS//sanitizer/}"
  STEPS="${STEPS//bench/}"
  echo "no GPU: running only: $STEPS"
fi
for mod in pytest hypothesis ninja numpy; do
  "$PY" -c "import $mod" 2>/dev/null || "$PY" -m pip install -q "$mod" || echo "warning: $mod missing and not installable"
done

if want build; then
  step "build (FASTPOOL_CUDA=1)"
  if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ] && [ "$HAVE_GPU" = "1" ]; then
    # Only this GPU's arch: the default list (several archs + PTX) takes longer.
    TORCH_CUDA_ARCH_LIST="$("$PY" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability(0))')"
    export TORCH_CUDA_ARCH_LIST
  fi
  echo "TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-default}"
  TB=$SECONDS
  FASTPOOL_CUDA=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$PY" -m pip install -q --no-build-isolation --no-deps -e . 2>&1 \
    | tail -n 30
  echo "build took $((SECONDS - TB))s"
  "$PY" -c "import fastpool; print(fastpool.build_info()); assert fastpool.build_info()['cuda']"
fi

if want test; then
  step "CUDA parity tests (pytest -m cuda) and the host build of the kernels' logic"
  MARK="cuda and not slow"
  [ "${SLOW:-0}" = "1" ] && MARK="cuda"
  "$PY" -m pytest -q -p no:cacheprovider -m "$MARK" tests/ || FAILED+=("pytest -m cuda")
  "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda_host_logic.py || FAILED+=("host logic tests")
fi

if want sanitizer; then
  step "compute-sanitizer (memcheck, racecheck) on the smoke test"
  SAN="$(command -v compute-sanitizer || true)"
  if [ -z "$SAN" ]; then
    CUDA_HOME_FOUND="$("$PY" -c 'import sys; sys.path.insert(0, "tools"); import build_config; print(build_config.find_cuda_home() or "")')"
    [ -x "$CUDA_HOME_FOUND/bin/compute-sanitizer" ] && SAN="$CUDA_HOME_FOUND/bin/compute-sanitizer"
  fi
  if [ -z "$SAN" ]; then
    echo "compute-sanitizer not found"
    FAILED+=("compute-sanitizer missing")
  else
    for tool in memcheck racecheck; do
      echo "-- $tool"
      # No caching allocator, so memcheck sees each tensor's own bounds.
      PYTORCH_NO_CUDA_MEMORY_CACHING=1 "$SAN" --tool "$tool" --error-exitcode 99 --target-processes all \
        "$PY" -m pytest -q -p no:cacheprovider -x tests/test_cuda.py -k sanitizer_smoke \
        || FAILED+=("compute-sanitizer $tool")
    done
  fi
fi

if want bench; then
  step "GPU benchmark: ResNet stem [32,64,112,112] k3 s2 p1 and VGG [32,128,56,56] k2 s2"
  mkdir -p "$BENCH_OUT"
  "$PY" -m fastpool.bench --device cuda --suite default --ops max_pool2d \
    --cases resnet50.stem,vgg16.pool2@112px --dtypes float32,bfloat16 --layouts nchw,nhwc \
    --directions fwd,fwd_idx,bwd,train --peers torch,torch_cl --no-sweep --no-e2e --no-progress \
    --out "$BENCH_OUT" || FAILED+=("benchmark")
fi

step "finished in $((SECONDS - T0))s"
if [ ${#FAILED[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${FAILED[@]}"
  exit 1
fi
if [ "$HAVE_GPU" = "1" ]; then echo "all GPU checks passed"; else echo "trial run without a GPU passed (GPU steps not run)"; fi
