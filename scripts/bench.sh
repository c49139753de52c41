#!/usr/bin/env bash
# The performance measurements of the README's "Performance" section: machine
# bounds, decode per token (SATA vs exact, 1K..100M tokens of context), the
# paper's toy model (1,024 heads of d = 8, P = 8), causal prefill; then the
# target table (scripts/bench_report.py) and the paper's Figure 6
# (scripts/plot.py bench). About 15 minutes on 2 cores; needs about 14 GB of
# RAM for exact attention's KV cache at 100M tokens (d = 8), larger caches are
# recorded as skipped. Results in results/ (override with RESULTS_DIR).
# Usage: scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
results="${RESULTS_DIR:-results}"
python="${PYTHON:-/usr/bin/python3}"

scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release
satalab=build/release/experiments/satalab
mkdir -p "$results/figures"

"$satalab" bench --sections bounds decode -d 8 16 32 64 -P 4 --precision fp32 fp16-acc32 \
  --context 1K 10K 100K 1M 10M 100M --process-budget 40 --out "$results/bench_main.h5" --force
"$satalab" bench --sections bounds decode --methods sata -H 1024 -d 8 -P 8 \
  --precision fp32 fp16-acc32 --context 1K --out "$results/bench_toy.h5" --force
"$satalab" bench --sections bounds prefill -d 8 16 32 64 -P 4 --prefill-tokens 16384 \
  --prefill-precision fp32 fp16-acc32 fp64 --out "$results/bench_prefill.h5" --force
echo
"$python" scripts/bench_report.py "$results/bench_main.h5" "$results/bench_toy.h5" "$results/bench_prefill.h5" \
  | tee "$results/bench_report.md"
"$python" scripts/plot.py bench "$results/bench_main.h5" --out "$results/figures/fig6_decode_vs_context.png"
