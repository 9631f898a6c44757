#!/bin/sh
# What the checks on every cell cost, and what they catch (issue 16, parts 1, 2 and 5).
#
#   sh bench/checks_cost.sh BEFORE_CHECKOUT AFTER_CHECKOUT [ROUNDS]
#
# Runs suites/quickstart.toml with each checkout's harness, alternately (ROUNDS times each, default 2),
# into fresh databases with a warm cache (one warm-up run each first), and prints the wall times; then
# lenet5/dense's onnx_bytes from each, and the leaderboard of tests/fixtures/nowork (three backends whose
# timed call does no work, beside onnxruntime-cpu) under a suite file of only accuracy and latency.
# Run it on a quiet machine: figures taken while other jobs share the cores are not the checks' cost.
set -eu
BEFORE=$(cd "$1" && pwd); AFTER=$(cd "$2" && pwd); ROUNDS=${3:-2}
PY=${PYTHON:-python}
OUT=${OUT:-$(mktemp -d /tmp/checks-cost.XXXXXX)}; mkdir -p "$OUT"
NOWORK="$AFTER/tests/fixtures/nowork"
cat > "$OUT/nowork.toml" <<'TOML'
name = "nowork"
seeds = [0]
[[matrix]]
models = ["lenet5"]
datasets = ["digits"]
methods = [{ name = "dense" }]
backends = ["stale", "constant", "identity-cache", "onnxruntime-cpu"]
suites = ["accuracy", "latency"]
[settings.latency]
batch_sizes = [1, 32]
profile = "smoke"
TOML
harness() {  # harness CHECKOUT ARGS...: that checkout's CLI, its own cache, run from $OUT (not the checkout)
  tree=$1; shift
  (cd "$OUT" && PYTHONPATH="$tree:$tree/plugins" HARNESS_CACHE_DIR="$OUT/cache-$(basename "$tree")" "$PY" -m harness.cli "$@")
}
for tree in "$BEFORE" "$AFTER"; do
  harness "$tree" run "$tree/suites/quickstart.toml" --db "$OUT/warm-$(basename "$tree").db" -q > /dev/null || true
done
i=1
while [ "$i" -le "$ROUNDS" ]; do
  for tree in "$BEFORE" "$AFTER"; do
    db="$OUT/quickstart-$(basename "$tree")-$i.db"
    t0=$(date +%s.%N)
    harness "$tree" run "$tree/suites/quickstart.toml" --db "$db" -q > /dev/null || true
    t1=$(date +%s.%N)
    echo "quickstart $(basename "$tree") round $i: $(echo "$t1 - $t0" | bc) s"
  done
  i=$((i + 1))
done
for tree in "$BEFORE" "$AFTER"; do
  echo "lenet5/dense onnx_bytes, $(basename "$tree"): $(sqlite3 "$OUT/quickstart-$(basename "$tree")-1.db" \
    "SELECT m.value FROM measurements m JOIN cells c ON c.id = m.cell_id WHERE m.metric = 'onnx_bytes' AND c.model = 'lenet5' AND c.method = 'dense'")"
  echo "extra checks recorded, $(basename "$tree"): $(sqlite3 "$OUT/quickstart-$(basename "$tree")-1.db" \
    "SELECT group_concat(metric || '=' || n, ', ') FROM (SELECT metric, count(*) AS n FROM measurements WHERE metric LIKE 'check_%' GROUP BY metric)")"
  harness "$tree" --plugins-dir "$NOWORK" run "$OUT/nowork.toml" --db "$OUT/nowork-$(basename "$tree").db" -q > /dev/null || true
  echo "no-work backends, $(basename "$tree"):"
  harness "$tree" leaderboard --db "$OUT/nowork-$(basename "$tree").db" --sort p90_ms --columns p90_ms,top1 --format markdown
  echo "check-plugin of the no-work backends, $(basename "$tree"):"
  harness "$tree" check-plugin "$NOWORK/nowork.py" | grep -E "^backend|FAIL|passed" || true
done
echo "databases and caches in $OUT"
