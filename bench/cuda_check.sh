#!/bin/sh
# Everything the GPU machine checks, in one call (its image has torch, onnxruntime, pandas, pluggy;
# the rest comes as wheels in .devwheels/): install, the CUDA tests, the soundness suite on
# torch-cuda, then bench/cuda_check.py's latency comparison (SKIP_LATENCY=1 leaves it out). Results go to
# $OUT (or ./cuda-out).
set -u
OUT=${OUT:-cuda-out}; mkdir -p "$OUT"
export HARNESS_CACHE_DIR=/tmp/harness-cache
python3 -m pip install -q --no-deps --no-index .devwheels/*.whl 2>&1 | tail -2
python3 -m pip install -q --no-deps --no-build-isolation --no-index . ./plugins 2>&1 | tail -2
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
timeout 90 python3 -m pytest -q -p no:cacheprovider plugins/tests/test_plugins_cuda.py 2>&1 | tail -5 | tee "$OUT/pytest.txt"
timeout 200 python3 -m harness.cli run bench/cuda_soundness.toml --db "$OUT/soundness.db" -q 2>&1 | tail -20 | tee "$OUT/soundness-run.txt"
python3 -m harness.cli results --db "$OUT/soundness.db" --format csv > "$OUT/soundness.csv"
[ -n "${SKIP_LATENCY:-}" ] || timeout 240 python3 bench/cuda_check.py 2>&1 | tee "$OUT/cuda_check.txt"
