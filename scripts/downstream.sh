#!/usr/bin/env bash
# Downstream tests (issue 16): SATA and quantized KV caches on the attention of
# a small byte-level language model trained here, from the Python standard
# library's sources (satalab-lm; PyTorch from Debian).
#
# Usage: scripts/downstream.sh
#   1. trains the default model into data/lm/default.pt (4 layers x 8 heads x
#      d 16, context 512; about 15 minutes on 2 idle cores) -- or reuses it when
#      it is there (an interrupted training is continued with --resume);
#   2. captures q, k, v of every layer on a held-out sequence (data/lm/capture/);
#   3. sweeps experiments/configs/lm_heads.toml over each layer (SATA P = 2..10 at
#      fp32, 2..8 at fp16-acc32, KV caches; results/lm/heads_layer<L>_<precision>.h5);
#   4. per-head logit statistics, per-head errors and the smallest P per head
#      (results/lm/heads.csv, heads_errors.csv, figures);
#   5. validation bits per byte with attention replaced (every layer, and one
#      layer at a time): SATA P = 2..8 at fp32 and fp16-acc32, exact attention
#      over 7 KV-cache schemes and at 5 low-precision policies
#      (results/lm/evaluate.csv); at 4x the context too when the model
#      extrapolates there (its own loss within 0.1 bits/byte of the loss at its
#      training context);
#   6. prints the Markdown tables (results/lm/report.md) and draws the figures
#      into results/lm/figures/.
# Environment: LM_DATA_DIR (default data/lm), RESULTS_DIR (default results),
# LM_SEQUENCES (validation windows of the evaluation, default 8), LM_EACH_MAX_P
# (SATA with larger P replaces all layers only, not each one; default 6),
# LM_PRESET (default "default"; "tiny" runs the whole pipeline in a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  "") ;;
  -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
  *) echo "downstream.sh: unknown option '$1' (allowed: none, -h)" >&2; exit 2 ;;
esac

data="${LM_DATA_DIR:-data/lm}"
results="${RESULTS_DIR:-results}/lm"
figures="$results/figures"
sequences="${LM_SEQUENCES:-8}"
preset="${LM_PRESET:-default}"
each_max_p="${LM_EACH_MAX_P:-6}"
python=/usr/bin/python3
lm=scripts/satalab-lm
checkpoint="$data/default.pt"
capture="$data/capture"

scripts/setup.sh --with-python --with-lm
cmake --preset release -DSATALAB_PYTHON=ON >/dev/null
cmake --build --preset release --target satalab satalab_python
satalab=build/release/experiments/satalab
mkdir -p "$data" "$results" "$figures"
start=$SECONDS

echo "== 1. the model: $checkpoint"
if [ -f "$checkpoint" ]; then
  "$lm" train --preset "$preset" --out "$checkpoint" --resume    # returns at once when it is finished
else
  "$lm" train --preset "$preset" --out "$checkpoint"
fi
hash=$("$python" -c "import torch, sys; print(torch.load(sys.argv[1])['model_hash'])" "$checkpoint")

echo "== 2. capture q, k, v of every layer (model $hash)"
captured=$("$python" -c "
import h5py, sys
try:
    print(h5py.File(sys.argv[1], 'r').attrs['model_hash'])
except Exception:
    print('none')" "$capture/layer0.h5")
if [ "$captured" = "$hash" ]; then
  echo "captures of model $hash are there: reused"
else
  "$lm" capture --checkpoint "$checkpoint" --out-dir "$capture" --force
fi
read -r layers heads n_tokens head_dim < <("$python" -c "
import h5py, sys
a = h5py.File(sys.argv[1], 'r').attrs
print(a['layers'], a['heads'], a['n_tokens'], a['head_dim'])" "$capture/layer0.h5")
denominator=$("$python" -c "import math, sys; print(repr(math.sqrt(int(sys.argv[1]))))" "$head_dim")

echo "== 3. per-head sweeps: experiments/configs/lm_heads.toml over $layers layers"
# SATA at fp32 for P = 2..10, at fp16-acc32 for P = 2..8 (P = 9, 10 at d = 16
# cost ~10x P = 8; fp16 features of sharp heads overflow well before).
sweeps=()
for ((layer = 0; layer < layers; layer++)); do
  for precision in fp32 fp16-acc32; do
    out="$results/heads_layer${layer}_$precision.h5"
    terms="[2, 3, 4, 5, 6, 7, 8, 9, 10]"
    if [ "$precision" != fp32 ]; then terms="[2, 3, 4, 5, 6, 7, 8]"; fi
    how=(--force)
    # A results file newer than its capture continues (--resume: only missing points run).
    if [ -f "$out" ] && [ "$out" -nt "$capture/layer$layer.h5" ]; then how=(--resume); fi
    "$satalab" sweep experiments/configs/lm_heads.toml --save-outputs --out "$out" "${how[@]}" \
      --set "input_file=$capture/layer$layer.h5" --set "heads=$heads" --set "n_tokens=$n_tokens" \
      --set "d_key=$head_dim" --set "softmax_denominator=$denominator" --set "precision=$precision" \
      --set "taylor_terms=$terms" | tail -n 1
    sweeps+=("$out")
  done
done

echo "== 4. per-head statistics and smallest P"
"$lm" heads --checkpoint "$checkpoint" --capture-dir "$capture" --sweeps "${sweeps[@]}" \
  --out "$results/heads.csv" --figures "$figures" --force

echo "== 5. validation loss with attention replaced ($sequences windows)"
# evaluate NAME ARGS...: results/lm/NAME.csv, reused when newer than the checkpoint.
evaluate() {
  local name="$1"
  shift
  if [ -f "$results/$name.csv" ] && [ "$results/$name.csv" -nt "$checkpoint" ]; then
    echo "$results/$name.csv is newer than the checkpoint: reused (delete it to evaluate again)"
  else
    "$lm" evaluate --checkpoint "$checkpoint" --out "$results/$name.csv" --sequences "$sequences" --force "$@"
  fi
}
evaluations=("$results/evaluate.csv")
evaluate evaluate --each-max-p "$each_max_p" --figures "$figures"
long=$((4 * n_tokens))
evaluate "evaluate_model_${long}" --methods model --replace all --context "$long" --no-progress
if "$python" -c "
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
sys.exit(0 if b['model_bits_per_byte'] <= a['model_bits_per_byte'] + 0.1 else 1)" \
    "$results/evaluate.json" "$results/evaluate_model_${long}.json"; then
  echo "the model extrapolates to $long tokens: evaluating there too (SATA up to P = 6, every layer replaced)"
  evaluate "evaluate_${long}" --context "$long" --replace all --sata-max-p 6
  evaluations+=("$results/evaluate_${long}.csv")
else
  echo "the model does not extrapolate to $long tokens (its own loss there: $("$python" -c "
import json, sys; print(round(json.load(open(sys.argv[1]))['model_bits_per_byte'], 3))" \
    "$results/evaluate_model_${long}.json") bits/byte): no evaluation at $long"
fi

echo "== 6. tables: $results/report.md"
"$lm" report --heads "$results/heads.csv" --evaluate "${evaluations[@]}" | tee "$results/report.md"
echo "downstream.sh: done in $((SECONDS - start)) s; figures in $figures/"
