#!/usr/bin/env bash
# The main job: set up (Debian packages), build, run the paper's experiments
# into HDF5 and draw every figure into results/figures/.
#
# Usage: scripts/reproduce_paper.sh [--quick|--full]
#   --quick (default)  reduced grids, about 6 minutes on 2 cores:
#       cost figures (paper Figs. 1, 3, 4, 5) from `satalab info --json`;
#       paper_error_quick.toml (the appendix A3/A4 grid at 4,096 tokens, P = 3..6);
#       scale_sweep.toml at d_key = 8, 2,048 tokens, fp16-acc32;
#       context_sweep.toml at d_key = 8 up to 65,536 tokens;
#       needle.toml (whole);
#       taylor_vs_quantized.toml at d_key = 16, 16,384 tokens;
#       one `satalab run` with its full error table.
#   --full  the configs as written (paper_error.toml at 102,400 tokens alone is
#       about 2.5 hours on 2 cores, the rest another 3; `satalab sweep CFG
#       --dry-run` prints the estimate per point). Interrupted sweeps continue
#       where they stopped when the script is run again.
# Results go to results/ (override with RESULTS_DIR): one .h5 per sweep and
# the figures in results/figures/. Rerunning reuses finished sweeps.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=quick
case "${1:-}" in
  ""|--quick) ;;
  --full) mode=full ;;
  -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
  *) echo "reproduce_paper.sh: unknown option '$1' (allowed: --quick, --full)" >&2; exit 2 ;;
esac

results="${RESULTS_DIR:-results}"
figures="$results/figures"
python="${PYTHON:-/usr/bin/python3}"
configs=experiments/configs

scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release
satalab=build/release/experiments/satalab
mkdir -p "$figures"
start=$SECONDS

# sweep NAME CONFIG [--set KEY=VALUE ...]: run a sweep into $results/NAME.h5,
# continuing it (--resume) when the file is already there.
sweep() {
  local name="$1" config="$2"
  shift 2
  local out="$results/$name.h5"
  local how=(--force)
  if [ -f "$out" ]; then how=(--resume); fi
  echo
  echo "== satalab sweep $config $* -> $out"
  "$satalab" sweep "$configs/$config" "$@" --out "$out" "${how[@]}" | tee "$results/$name.txt"
}

plot() {
  "$python" scripts/plot.py "$@"
}

echo "== cost figures (paper Figs. 1, 3, 4, 5): satalab info --json"
"$satalab" info --d-key 8 16 32 64 -P 1 2 3 4 5 6 7 8 --n-tokens 100000 --json > "$results/cost.json"
plot cost-vs-context "$results/cost.json" --out "$figures/fig1_cost_vs_context.png"
plot cost-packing "$results/cost.json" --out "$figures/fig3_cost_packing.png"
plot cost-heads "$results/cost.json" --out "$figures/fig4_cost_heads.png"
plot cost-alpha "$results/cost.json" --out "$figures/fig5_cost_alpha.png"

if [ "$mode" = quick ]; then
  sweep paper_error_quick paper_error_quick.toml
  sweep scale_quick scale_sweep.toml --set d_key=8 --set method=sata --set precision=fp16-acc32
  sweep context_quick context_sweep.toml --set d_key=8 --set 'n_tokens=[1024,4096,16384,65536]'
  sweep needle needle.toml
  sweep taylor_vs_quantized_quick taylor_vs_quantized.toml --set d_key=16 --set n_tokens=16384
  grid=paper_error_quick scale=scale_quick context=context_quick tvq=taylor_vs_quantized_quick
  decomposition_n=16384
else
  sweep paper_error paper_error.toml
  sweep scale scale_sweep.toml --skip-unfit
  sweep context context_sweep.toml
  sweep needle needle.toml
  sweep taylor_vs_quantized taylor_vs_quantized.toml
  grid=paper_error scale=scale context=context tvq=taylor_vs_quantized
  decomposition_n=65536
fi

echo
echo "== satalab run: one detailed error table (SATA P = 4 at fp16-acc32, 8 heads of d = 8, 4,096 tokens)"
"$satalab" run --method sata --taylor-terms 4 --precision fp16-acc32 --heads 8 --n-tokens 4096 \
  --d-key 8 --d-value 8 --seed 1 --save "$results/run_sata_p4_d8_fp16acc32.h5" --force \
  | tee "$results/run_sata_p4_d8_fp16acc32.txt"

echo
echo "== figures"
for error in abs rel; do
  plot hist-grid "$results/$grid.h5" --error "$error" --out "$figures/a3_hist_$error.png"
  plot position-grid "$results/$grid.h5" --error "$error" --out "$figures/a4_position_$error.png"
done
plot hist-grid "$results/$grid.h5" --component rounding --out "$figures/a3_hist_rounding.png"
plot scale "$results/$scale.h5" --where method=sata --where precision=fp16-acc32 \
  --out "$figures/error_vs_scale.png"
plot normalisers "$results/$scale.h5" --where method=sata --where precision=fp16-acc32 \
  --out "$figures/normalisers.png"
plot context "$results/$context.h5" --out "$figures/error_vs_context.png"
plot decomposition "$results/$context.h5" --where "n_tokens=$decomposition_n" --where d_key=8 \
  --out "$figures/decomposition.png"
plot needle "$results/needle.h5" --out "$figures/needle.png"
for precision in fp32 fp16-acc32; do
  plot pareto "$results/$tvq.h5" --where "precision=$precision" --where d_key=16 --where n_tokens=16384 \
    --out "$figures/pareto_$precision.png"
done

echo
echo "reproduce_paper.sh --$mode: done in $(( (SECONDS - start) / 60 ))m$(( (SECONDS - start) % 60 ))s"
echo "results (HDF5, one per sweep): $results/"
echo "figures ($(ls "$figures"/*.png | wc -l) PNG): $figures/"
