#!/usr/bin/env bash
# The main job: set up, build, then
#   1. satalab info for the paper's head sizes (8, 16, 32, 64) at P = 4:
#      state size and FLOPs per token against a KV cache (paper Fig. 1 numbers);
#   2. the quick paper sweep (experiments/configs/paper_error_quick.toml, the
#      paper's appendix grid at 4,096 tokens) restricted to P = 3, 4 (P = 5, 6
#      at d_key = 64 take hours at current kernel speed) -> results/quick.h5;
#   3. one satalab run: SATA, P = 4, fp16 storage with fp32 sums, 8 heads of
#      d = 8 over 4,096 causal tokens, against exact fp64 attention, with the
#      error table (absolute and relative, truncation vs rounding).
# Outputs go to results/ (override with RESULTS_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
results="${RESULTS_DIR:-results}"

scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release
satalab=build/release/experiments/satalab
mkdir -p "$results"

echo
echo "== satalab info: cost of SATA at P = 4 vs a KV cache of 100,000 tokens =="
"$satalab" info --d-key 8 16 32 64 --taylor-terms 4 --n-tokens 100000 | tee "$results/info_p4.txt"

echo "== satalab sweep: the paper's appendix grid at 4,096 tokens, P = 3, 4 =="
"$satalab" sweep experiments/configs/paper_error_quick.toml --set 'taylor_terms=[3,4]' \
  --out "$results/quick.h5" --force | tee "$results/quick.txt"

echo "== satalab run: SATA P = 4 at fp16-acc32 vs exact fp64 =="
"$satalab" run --method sata --taylor-terms 4 --precision fp16-acc32 --heads 8 --n-tokens 4096 \
  --d-key 8 --d-value 8 --seed 1 --save "$results/run_sata_p4_d8_fp16acc32.h5" --force \
  | tee "$results/run_sata_p4_d8_fp16acc32.txt"

echo
echo "results written to $results/ (info_p4.txt, quick.{h5,txt}, run_sata_p4_d8_fp16acc32.{txt,h5})"
