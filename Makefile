# The two quick-start commands (see README):
#   make bench   set up, build, run the default benchmark suite
#   make test    set up, build, run the test suite (+ the CUDA build check where nvcc exists)
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BENCH_ARGS ?=
PY := $(VENV)/bin/python

.PHONY: setup build bench test test-cpu cuda-check wheel wheel-check clean

setup: $(VENV)/.ready
$(VENV)/.ready: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH)"
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The editable install compiles in build/ (ninja and the per-ISA objects are
# incremental: nothing changed, nothing compiled) and shows one line per
# compiled file; the full log is build/build.log.
build: setup
	@mkdir -p build
	@echo "build: compiling fastpool where sources changed (full log: build/build.log)"
	@$(PY) -m pip install -v --disable-pip-version-check --no-build-isolation --no-deps -e . > build/build.log 2>&1 & \
	  pid=$$!; tail -n +1 -F --pid=$$pid build/build.log | grep --line-buffered -E '^ *fastpool: |^ *\[[0-9]+/[0-9]+\] ' \
	  | sed -u -E 's#^ *##; s#^(\[[0-9]+/[0-9]+\]) .* -c (\S+) .*#\1 \2#'; \
	  wait $$pid || { tail -40 build/build.log; echo "build failed (build/build.log)"; exit 1; }

bench: build
	$(PY) -m fastpool.bench $(BENCH_ARGS)

test-cpu: build
	$(PY) -m pytest -q

# CUDA kernels: compiled, linked and imported against a CUDA build of torch,
# and their per-element logic run on the host (no GPU needed).
cuda-check:
	@if command -v nvcc >/dev/null 2>&1; then bash tools/cuda_build_check.sh; \
	else echo "cuda-check: nvcc not found, CUDA build not checked"; fi

# A wheel and nothing else: wheelhouse/fastpool-*-manylinux_*.whl (tools/build_wheel.sh).
wheel: setup
	bash tools/build_wheel.sh

# The wheel's tag, size and requirement; it installs and works in a fresh venv
# holding only torch, and fails clearly with another torch (the CUDA check's).
wheel-check: build
	bash tools/wheel_check.sh

test: test-cpu cuda-check wheel-check

clean:
	rm -rf build dist *.egg-info fastpool/_C*.so
