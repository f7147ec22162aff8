#!/usr/bin/env bash
# Verify the CuPy backend on a GPU machine, offline, and print its figures.
#
#   benchmarks/gpu.sh [MNIST_FOLDER]        (default: $NNSCRATCH_DATA)
#
# 1. installs nnscratch and nnscratch-cupy from this working tree without the network (editable,
#    no dependencies, no build isolation); if pip cannot, runs them from source via PYTHONPATH;
# 2. prints the GPU and the library versions;
# 3. runs the agreement suite with numpy and cupy required (a skip is a failure), both dtypes,
#    plus tests/test_cupy_backend.py;
# 4. runs benchmarks/gpu_bench.py: a Markdown table, also written to $OUT/gpu.md if OUT is set.
# Needs numpy, cupy, pytest and hypothesis installed (torch is optional). Well under 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

export NNSCRATCH_DATA="${1:-${NNSCRATCH_DATA:-}}"
if [ -z "$NNSCRATCH_DATA" ]; then
    echo "gpu.sh: give the MNIST folder as an argument or set NNSCRATCH_DATA" >&2
    exit 2
fi
export CUPY_TF32=0          # CuPy's default, made explicit: float32 products without TF32
unset NNSCRATCH_BACKEND

if python -m pip install -q --no-deps --no-build-isolation -e . -e backends/cupy; then
    echo "installed nnscratch and nnscratch-cupy from $(pwd) (editable)"
else
    echo "pip could not install them: running from source instead"
    export PYTHONPATH="$(pwd)/src:$(pwd)/backends/cupy/src${PYTHONPATH:+:$PYTHONPATH}"
fi

# The agreement suite's property tests need hypothesis, which a GPU machine without network may
# lack: a folder of wheels made beforehand where there is network
# (pip download hypothesis -d .gpu-wheels) is installed from, offline.
if ! python -c "import hypothesis" 2>/dev/null && [ -d .gpu-wheels ]; then
    python -m pip install -q --no-index --find-links .gpu-wheels hypothesis
fi

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python - <<'PY'
import importlib
for name in ("numpy", "cupy", "torch", "pytest", "hypothesis"):
    try:
        print(f"{name} {importlib.import_module(name).__version__}")
    except ImportError as exc:
        print(f"{name}: not installed ({exc})")
import nnscratch
print("cupy backend:", nnscratch.available_backends()["cupy"].detail)
PY

echo "== agreement suite (numpy and cupy required, float32 and float64)"
status=0
NNSCRATCH_REQUIRE_BACKENDS=numpy,cupy python -m pytest -q -p no:cacheprovider \
    tests/test_agreement.py tests/test_cupy_backend.py || status=$?

echo "== benchmarks"
python benchmarks/gpu_bench.py --data "$NNSCRATCH_DATA" || status=$?
exit $status
