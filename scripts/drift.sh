#!/usr/bin/env bash
# Long-context drift runs (README "Long-context drift"): `satalab drift` to N
# tokens, killed with SIGKILL once after its first checkpoint and resumed;
# with --compare also run straight through and compared bit for bit (h5py).
#
#   scripts/drift.sh SATALAB OUT_DIR [N] [--compare] [-- extra satalab drift options]
#
# The acceptance run: scripts/drift.sh build/release/experiments/satalab runs 100000000
# (d_key 8, P = 4, 2 heads, fp32, all four accumulation modes, 13 truth positions).
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: scripts/drift.sh SATALAB OUT_DIR [N] [--compare] [-- options]" >&2
  exit 2
fi
satalab=$1
out_dir=$2
shift 2
tokens=100000000
compare=0
if [[ $# -gt 0 && $1 != --* ]]; then tokens=$1; shift; fi
if [[ $# -gt 0 && $1 == --compare ]]; then compare=1; shift; fi
if [[ $# -gt 0 && $1 == -- ]]; then shift; fi
mkdir -p "$out_dir"
checkpoint_tokens=$((tokens / 10))
args=(drift -N "$tokens" --heads 2 --d-key 8 -P 4 --precision fp32 --positions 13
      --checkpoint-tokens "$checkpoint_tokens" --checkpoint-seconds 300 "$@")
out=$out_dir/drift_$tokens.h5
checkpoint=$out.checkpoint.h5
rm -f "$out" "$checkpoint"

start=$(date +%s)
"$satalab" "${args[@]}" -o "$out" 2> "$out_dir/drift_$tokens.log" &
pid=$!
# Kill -9 a while after the first checkpoint appears, then resume.
while [[ ! -e $checkpoint ]] && kill -0 "$pid" 2> /dev/null; do sleep 1; done
sleep 5
if kill -0 "$pid" 2> /dev/null; then
  kill -9 "$pid"
  wait "$pid" || true
  echo "killed with SIGKILL after the first checkpoint; resuming" >&2
  "$satalab" "${args[@]}" -o "$out" --resume 2>> "$out_dir/drift_$tokens.log"
else
  wait "$pid"
  echo "the run finished before it could be killed (N too small)" >&2
fi
echo "run time (wall, kill and resume included): $(( $(date +%s) - start )) s" >&2

if [[ $compare == 1 ]]; then
  straight=$out_dir/drift_${tokens}_straight.h5
  rm -f "$straight"
  "$satalab" "${args[@]}" -o "$straight" 2> /dev/null
  /usr/bin/python3 - "$out" "$straight" << 'EOF'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
different = [k for k in a.keys() if not np.array_equal(a[k][()], b[k][()], equal_nan=True)]
print("killed and resumed == straight through, every dataset bit for bit" if not different
      else f"DIFFERENT: {different}")
sys.exit(1 if different else 0)
EOF
fi
