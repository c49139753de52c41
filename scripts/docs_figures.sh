#!/usr/bin/env bash
# Regenerate the small PNGs the README shows (docs/figures/) from the results
# of `scripts/reproduce_paper.sh` (quick), at low resolution to keep the
# repository small. Usage: scripts/docs_figures.sh [RESULTS_DIR [FULL_A3.h5]]
# RESULTS_DIR defaults to results; FULL_A3.h5, when given, is a run of
# paper_error.toml (the README uses d_key = 8 and 16) for the A3 figure at
# 102,400 tokens.
set -euo pipefail
cd "$(dirname "$0")/.."
results="${1:-${RESULTS_DIR:-results}}"
python="${PYTHON:-/usr/bin/python3}"
full="${2:-}"
out=docs/figures
mkdir -p "$out"
for f in paper_error_quick context_quick taylor_vs_quantized_quick; do
  if [ ! -f "$results/$f.h5" ]; then
    echo "docs_figures.sh: $results/$f.h5 is missing (run scripts/reproduce_paper.sh first)" >&2
    exit 2
  fi
done
"$python" scripts/plot.py hist-grid "$results/paper_error_quick.h5" --error rel --dpi 60 --out "$out/a3_hist_rel.png"
"$python" scripts/plot.py context "$results/context_quick.h5" --dpi 75 --out "$out/error_vs_context.png"
"$python" scripts/plot.py pareto "$results/taylor_vs_quantized_quick.h5" --where precision=fp32 --where d_key=16 \
  --where n_tokens=16384 --dpi 75 --out "$out/pareto_fp32.png"
if [ -n "$full" ]; then
  "$python" scripts/plot.py hist-grid "$full" --dpi 60 --out "$out/a3_hist_abs_full_d8_16.png"
fi
