#!/usr/bin/env bash
# AddressSanitizer run of the CPU kernels and of the CUDA kernel bodies run by
# the host executor: builds the sources (tracked and untracked-but-not-ignored
# files) into build-asan/ with -fsanitize=address and runs pytest there with
# libasan preloaded (libstdc++ too, so that C++ exceptions still work).
# Not part of CI (a few minutes); it found an out-of-bounds write in the CUDA
# band backward that the ordinary runs only showed as a rare abort.
#   bash tools/asan_check.sh                        # the host-executor tests, 1000 examples
#   bash tools/asan_check.sh tests/test_max_pool.py # any pytest arguments
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
WORK=${ASAN_DIR:-$ROOT/build-asan}
mkdir -p "$WORK"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -C "$WORK" -xpf -
cd "$WORK"
echo "== build with AddressSanitizer in $WORK (log: $WORK/asan-build.log)"
FASTPOOL_DEBUG_INFO=1 CFLAGS="-fsanitize=address -fno-omit-frame-pointer" LDFLAGS="-fsanitize=address" \
  "$PY" setup.py build_ext --inplace > asan-build.log 2>&1 || { tail -20 asan-build.log; exit 1; }
ARGS=("$@")
((${#ARGS[@]})) || ARGS=(tests/test_cuda_host_executor.py tests/test_ops.py -k "cuda-host or not test_ops")
echo "== pytest under AddressSanitizer"
LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)" \
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:halt_on_error=1} PYTHONPATH="$WORK" \
  FASTPOOL_EXAMPLES=${FASTPOOL_EXAMPLES:-1000} "$PY" -X faulthandler -m pytest -q -p no:cacheprovider \
  "${ARGS[@]}"
