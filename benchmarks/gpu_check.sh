#!/usr/bin/env bash
# Everything fastpool checks on a GPU, in one visit of about 8 minutes on a bare
# 16-core H100/H200 machine that has PyTorch (CUDA build) and nvcc:
#   build      FASTPOOL_CUDA=1, this GPU's arch only
#   probe      benchmarks/gpu_probe.py: edge cases one by one (unbatched, empty,
#              errors, ...); if it dies, the last case is rerun under gdb
#   test       pytest -m "cuda and not slow" (parity with torch CUDA)
#   host       the host executor's tests (what CI runs) on this machine too
#   sanitizer  compute-sanitizer memcheck on the probe and the smoke test,
#              racecheck on the smoke test
#   bench      stem and VGG pools, fp32/bf16, both layouts, fwd/fwd_idx/bwd/train
#              vs torch (NCHW, channels_last), % of stream roofline and of copy bandwidth
#   bodies     benchmarks/gpu_bodies.cu: the NCHW kernel bodies side by side, bit-checked
#   profile    ncu on one call of each kernel far from the memory limit
#              (benchmarks/gpu_profile.py)
#   family     the other ops' network cases (adaptive, 3-d, 1-d, fractional, unpool) vs torch
#   inductor   the bench cases' fwd and bwd vs torch.compile
#
#   bash benchmarks/gpu_check.sh OUT_DIR            # all steps
#   STEPS="build probe" bash benchmarks/gpu_check.sh OUT_DIR
#   # through the device tool, whose $OUT returns at most 8 files:
#   bash benchmarks/gpu_check.sh /tmp/gc; tar czf "$OUT/gpu_check.tgz" -C /tmp gc
#
# Every step runs under its own time limit and a shared deadline (DEADLINE_S,
# default 470 s from the start); a step that fails, hangs or crashes is recorded
# and the next one runs. All output goes to OUT_DIR: one log per step, the
# benchmark JSON/Markdown, and summary.md (also printed at the end).
# Env: PYTHON (python3), STEPS, TORCH_CUDA_ARCH_LIST (default: this GPU's),
# BUILD_LIMIT_S (200; a 16-core GPU machine builds in about a minute),
# ALLOW_NO_GPU=1 for a trial run without a GPU (build, host tests).
set -uo pipefail

OUT="${1:?usage: bash benchmarks/gpu_check.sh OUT_DIR}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
PY="${PYTHON:-python3}"
STEPS="${STEPS:-build probe test host sanitizer bench bodies profile family inductor}"
DEADLINE_S="${DEADLINE_S:-470}"
T0=$SECONDS
SUMMARY="$OUT/summary.md"
printf '| step | result | seconds | limit | log |\n|---|---|---:|---:|---|\n' >"$SUMMARY"
FAILED=0

want() { [[ " $STEPS " == *" $1 "* ]]; }

# run_step NAME LIMIT_S COMMAND...: the command under `timeout`, output to
# OUT/NAME.log, one summary row. The limit shrinks to what the deadline leaves.
run_step() {
  local name="$1" limit="$2"
  shift 2
  local left=$((DEADLINE_S - (SECONDS - T0)))
  ((limit > left)) && limit=$left
  if ((limit < 5)); then
    printf '| %s | skipped (deadline) | 0 | 0 | - |\n' "$name" >>"$SUMMARY"
    echo "== $name: skipped, deadline reached"
    FAILED=1
    return 1
  fi
  echo "== [$((SECONDS - T0))s] $name (limit ${limit}s)"
  local t=$SECONDS rc
  timeout -k 5 "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  local result="ok"
  if ((rc == 124 || rc == 137)); then
    result="**timed out**"
  elif ((rc > 128)); then
    result="**killed by signal $((rc - 128))**"
  elif ((rc != 0)); then
    result="**failed (rc $rc)**"
  fi
  ((rc != 0)) && FAILED=1
  printf '| %s | %s | %d | %d | %s.log |\n' "$name" "$result" $((SECONDS - t)) "$limit" "$name" >>"$SUMMARY"
  tail -n 3 "$OUT/$name.log"
  return $rc
}

HAVE_GPU=1
run_step env 30 "$PY" - <<'EOF'
import subprocess, sys
import torch
try:
    print(subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=20).stdout.strip())
except Exception as e:
    print("nvidia-smi:", e)
print("torch", torch.__version__, "CUDA", torch.version.cuda, "python", sys.version.split()[0])
if not torch.cuda.is_available():
    sys.exit("no usable GPU: torch.cuda.is_available() is False")
print("GPU", torch.cuda.get_device_name(0), "sm_%d%d" % torch.cuda.get_device_capability(0))
EOF
if (($? != 0)); then
  [ "${ALLOW_NO_GPU:-0}" = "1" ] || { echo "no GPU (set ALLOW_NO_GPU=1 for a trial run)"; cat "$SUMMARY"; exit 1; }
  HAVE_GPU=0
  FAILED=0
  sed -i 's/^| env | \*\*failed (rc 1)\*\* |/| env | no GPU (trial run) |/' "$SUMMARY"
  STEPS="${STEPS//probe/}"; STEPS="${STEPS//test/}"; STEPS="${STEPS//sanitizer/}"
  STEPS="${STEPS//inductor/}"; STEPS="${STEPS//bench/}"; STEPS="${STEPS//profile/}"; STEPS="${STEPS//family/}"
  STEPS="${STEPS//bodies/}"
  echo "no GPU: running only: $STEPS"
fi
for mod in pytest hypothesis ninja numpy; do
  "$PY" -c "import $mod" 2>/dev/null || "$PY" -m pip install -q "$mod" >/dev/null 2>&1 || echo "warning: $mod missing"
done

if want build; then
  if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ] && [ "$HAVE_GPU" = "1" ]; then
    # This GPU's arch only: the default list (several archs + PTX) takes longer.
    TORCH_CUDA_ARCH_LIST="$("$PY" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability(0))')"
    export TORCH_CUDA_ARCH_LIST
  fi
  # The compiler: BUILD_CXX, else the system's g++. The GPU image sets
  # CXX=/opt/gcc/bin/g++, a wrapper whose links put a private static copy of
  # libstdc++ into the module (no libstdc++.so.6 among its NEEDED libraries).
  # That copy's stream code segfaults when an error message formats a number
  # (c10::str -> ostream::operator<<(long)), so every error fastpool raised
  # crashed the interpreter (2026-11-26 and 2026-11-27 runs; a three-line
  # extension built by the wrapper crashes the same way). /usr/bin/g++ on the
  # same machine links libstdc++.so.6 and its modules raise as they should.
  BUILD_CXX="${BUILD_CXX:-$(command -v /usr/bin/g++ || echo "${CXX:-g++}")}"
  BUILD_CC="${BUILD_CC:-$(dirname "$BUILD_CXX")/gcc}"
  [ -x "$BUILD_CC" ] || BUILD_CC="${CC:-gcc}"
  # After the build: the module imports, has CUDA, and a bad call raises
  # RuntimeError (a toolchain whose exceptions crash fails here, by name).
  run_step build "${BUILD_LIMIT_S:-200}" env FASTPOOL_CUDA=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    CXX="$BUILD_CXX" CC="$BUILD_CC" bash -c \
    "echo TORCH_CUDA_ARCH_LIST=\${TORCH_CUDA_ARCH_LIST:-default} CXX=\$CXX; \$CXX --version | head -n 1; \
     '$PY' -m pip install --no-build-isolation --no-deps -e . && \
     '$PY' -c 'import fastpool; i = fastpool.build_info(); print(i); assert i[\"cuda\"]' && \
     '$PY' -X faulthandler -c 'import torch, fastpool
try:
    fastpool.max_pool2d(torch.zeros(1, 1, 2, 2), 3)
except RuntimeError as e:
    print(\"an error raises:\", str(e).splitlines()[0])
else:
    raise SystemExit(\"a bad call did not raise\")'"
fi

if want probe; then
  # CUDA_LAUNCH_BLOCKING=1: a kernel's fault surfaces in its own case, not in a later call.
  if ! run_step probe 60 env CUDA_LAUNCH_BLOCKING=1 "$PY" -X faulthandler benchmarks/gpu_probe.py; then
    last="$(grep '^RUN ' "$OUT/probe.log" | tail -n 1 | cut -c5-)"
    if [ -n "$last" ] && ! grep -q "^\(OK\|FAIL\) $last" "$OUT/probe.log" && command -v gdb >/dev/null; then
      # The process died in $last: a native backtrace of that case alone.
      run_step probe_gdb 60 env CUDA_LAUNCH_BLOCKING=1 gdb -q -batch -ex run -ex bt -ex "info sharedlibrary" \
        --args "$PY" benchmarks/gpu_probe.py --only "$last"
    fi
  fi
fi

if want test; then
  run_step test 110 env CUDA_LAUNCH_BLOCKING=1 FASTPOOL_EXAMPLES="${FASTPOOL_EXAMPLES:-100}" \
    "$PY" -X faulthandler -m pytest -q \
    -p no:cacheprovider --durations=15 -m "cuda and not slow" tests/test_cuda.py tests/test_ops.py --junitxml="$OUT/pytest_cuda.xml"
fi

if want host; then
  run_step host 60 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda_host_executor.py \
    tests/test_cuda_host_fractional.py tests/test_cuda_host_unpool.py tests/test_ops.py -k "cuda-host or not test_ops"
fi

if want sanitizer; then
  SAN="$(command -v compute-sanitizer || true)"
  if [ -z "$SAN" ]; then
    CUDA_HOME_FOUND="$("$PY" -c 'import sys; sys.path.insert(0, "tools"); import build_config; print(build_config.find_cuda_home() or "")')"
    [ -x "$CUDA_HOME_FOUND/bin/compute-sanitizer" ] && SAN="$CUDA_HOME_FOUND/bin/compute-sanitizer"
  fi
  if [ -z "$SAN" ]; then
    printf '| sanitizer | **compute-sanitizer not found** | 0 | 0 | - |\n' >>"$SUMMARY"
    FAILED=1
  else
    # No caching allocator, so memcheck sees each tensor's own bounds.
    # Three runs side by side (one after another they took 150 s on an H200
    # on 2026-11-28, the smoke test's memcheck 85 s of it), each with its own
    # log, each whatever the others gave (a probe case that fails its
    # comparison must not hide the smoke test's memcheck); the step fails if
    # any of them does.
    run_step sanitizer 150 env PYTORCH_NO_CUDA_MEMORY_CACHING=1 bash -c \
      "'$SAN' --tool memcheck --error-exitcode 99 '$PY' benchmarks/gpu_probe.py > '$OUT/sanitizer_probe.log' 2>&1 & p1=\$!; \
       '$SAN' --tool memcheck --error-exitcode 99 '$PY' -m pytest -q -p no:cacheprovider tests/test_cuda.py \
         -k sanitizer_smoke > '$OUT/sanitizer_smoke.log' 2>&1 & p2=\$!; \
       '$SAN' --tool racecheck --error-exitcode 99 '$PY' -m pytest -q -p no:cacheprovider tests/test_cuda.py \
         -k 'sanitizer_smoke and float32' > '$OUT/sanitizer_race.log' 2>&1 & p3=\$!; \
       rc=0; for p in \$p1 \$p2 \$p3; do wait \$p || rc=\$?; done; \
       for f in probe smoke race; do echo \"== \$f\"; tail -n 4 '$OUT'/sanitizer_\$f.log; done; exit \$rc"
  fi
fi

BENCH=(--device cuda --suite default --ops max_pool2d --cases resnet50.stem,vgg16.pool2@112px
       --dtypes float32,bfloat16 --layouts nchw,nhwc --no-sweep --no-e2e --no-progress --out "$OUT")
if want bench; then
  run_step bench 110 "$PY" -m fastpool.bench "${BENCH[@]}" --name bench-cuda \
    --directions fwd,fwd_idx,bwd,train --peers torch,torch_cl --repeats 1
fi
if want bodies; then
  # The NCHW kernel bodies side by side (benchmarks/gpu_bodies.cu: torch-free, compiled here in ~15 s),
  # each pair checked bit for bit: a kernel change's effect without the op around it.
  NVCC="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
  ARCH="$("$PY" -c 'import torch; print("%d%d" % torch.cuda.get_device_capability(0))' 2>/dev/null || echo 90)"
  run_step bodies 60 bash -c "'$NVCC' -O3 -std=c++17 --expt-relaxed-constexpr -arch=sm_$ARCH -Icsrc/cuda \
    benchmarks/gpu_bodies.cu -o '$OUT/gpu_bodies' && '$OUT/gpu_bodies' | tee '$OUT/gpu_bodies.md'; \
    rc=\${PIPESTATUS[0]}; rm -f '$OUT/gpu_bodies'; exit \$rc"
fi
if want profile; then
  # Nsight Compute on one call of each slow kernel (benchmarks/gpu_profile.py):
  # memory-, instruction- or occupancy-bound. --clock-control none: the clocks
  # the benchmark ran at.
  NCU="$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1)"
  if [ -z "$NCU" ]; then
    printf '| profile | **ncu not found** | 0 | 0 | - |\n' >>"$SUMMARY"
    FAILED=1
  else
    run_step profile 90 "$NCU" --clock-control none --kernel-name regex:grid_stride_kernel \
      --section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats \
      "$PY" benchmarks/gpu_profile.py
  fi
fi
if want family; then
  # The rest of the family, never timed on a GPU before: adaptive (global, SPP), 3-d, 1-d,
  # fractional 2-d/3-d and SegNet's unpool, fp32, both layouts, one round.
  run_step family 80 "$PY" -m fastpool.bench --device cuda --suite default --no-sweep --no-e2e --no-progress \
    --ops adaptive_max_pool2d,max_pool3d,max_pool1d,fractional_max_pool2d,fractional_max_pool3d,max_unpool2d \
    --cases global.resnet50,spp.conv5.bins4,unet3d.pool2,audio.m5.pool2,fmp.layer4,fmp3d.layer1,segnet.unpool4.b1 \
    --dtypes float32 --layouts nchw,nhwc --directions fwd,bwd,train --peers torch,torch_cl --repeats 1 \
    --out "$OUT" --name bench-cuda-family
fi
if want inductor; then
  run_step inductor 100 "$PY" -m fastpool.bench "${BENCH[@]}" --name bench-cuda-inductor \
    --directions fwd,bwd --peers torch,inductor --repeats 1
fi


echo
echo "== finished in $((SECONDS - T0))s (deadline ${DEADLINE_S}s); summary: $SUMMARY"
printf '\nTotal: %ds; GPU: %s\n' $((SECONDS - T0)) "$([ "$HAVE_GPU" = 1 ] && echo yes || echo 'no (trial run)')" \
  >>"$SUMMARY"
cat "$SUMMARY"
exit $FAILED
