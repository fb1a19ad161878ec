#!/usr/bin/env bash
# Builds a fastpool wheel and nothing else (no dependency wheels): compiled
# against the torch of the build environment (no build isolation: the
# extension loads only into that torch, which the wheel requires), debug info
# stripped (FASTPOOL_DEBUG_INFO=1 keeps it), then repaired by auditwheel to the
# best manylinux tag this toolchain allows. torch's own libraries and the
# OpenMP runtime torch loads are left out of the wheel: they come with torch.
#   bash tools/build_wheel.sh [OUT_DIR]     # default OUT_DIR: wheelhouse/
# PY selects the Python whose torch to build against (default: .venv's);
# FASTPOOL_CUDA=1 builds the CUDA kernels too (see README, "Build options").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
OUT="$(mkdir -p "${1:-$ROOT/wheelhouse}" && cd "${1:-$ROOT/wheelhouse}" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
T0=$SECONDS

# From the source tree itself, through the same object folder as the in-place
# build (build/temp, setup.py): what `make build` compiled is reused, so a wheel
# after a build compiles nothing; ninja and the ISA objects' flag stamps
# recompile whatever was built with other flags or another torch. The packaged
# files are collected afresh (build/lib*, build/bdist* removed first), so a
# file deleted from the tree never reaches the wheel.
rm -rf "$ROOT"/build/lib.* "$ROOT"/build/bdist.* "$ROOT"/build/wheel-src
echo "build-wheel: compiling what changed (log: $OUT/build-wheel.log)"
(cd "$ROOT" && "$PY" -m pip wheel -v --disable-pip-version-check --no-build-isolation --no-deps \
  -w "$WORK/dist" . > "$OUT/build-wheel.log" 2>&1) || { tail -30 "$OUT/build-wheel.log"; exit 1; }
grep -E "^ *fastpool: " "$OUT/build-wheel.log" | sed -E 's/^ *//' || true
RAW="$(ls "$WORK"/dist/fastpool-*.whl)"
echo "build-wheel: built $(basename "$RAW") in $((SECONDS - T0))s"

WHEEL="$(bash "$ROOT/tools/repair_wheel.sh" "$PY" "$RAW" "$OUT")"
echo "build-wheel: $WHEEL ($(du -h "$WHEEL" | cut -f1)) in $((SECONDS - T0))s"
