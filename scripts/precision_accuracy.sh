#!/usr/bin/env bash
# bf16 against fp32 on the reference store (data/reference/events64.h5): the same recipe, three seeds each,
# one record per run in $OUT/records.jsonl; `python -m benchmarks.precision_accuracy $OUT/records.jsonl` prints
# the table of docs/precision.md (test AUC, efficiency ratio, epochs to --target-auc: mean and spread).
#
#   scripts/precision_accuracy.sh            # resumable: a finished run (its record there) is skipped, an
#                                            # interrupted one continues from its per-epoch checkpoint
#
# Environment (defaults in brackets): SEEDS ["11 12 13"], AMPS ["none bf16"], EPOCHS [6], TARGET [0.93],
# THREADS [all cores], OUT [results/precision]. The recipe is the reference run's (scripts/quality_run.sh):
# global batch 512, lr 1e-3 with 2 warm-up epochs, BatchNorm momentum 0.1; fewer epochs (6 of its 12) to
# fit a session of this project's 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${MULTIJET_VENV:-.venv}/bin/python
out=${OUT:-results/precision}
mkdir -p "$out"
for seed in ${SEEDS:-11 12 13}; do
    for amp in ${AMPS:-none bf16}; do
        label="amp $amp, seed $seed"
        if [ -f "$out/records.jsonl" ] && "$py" - "$out/records.jsonl" "$amp" "$seed" <<'PY'
import sys
from bench.records import read_records
path, amp, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
done = [r for r in read_records(path)[0] if r["config"]["amp"] == amp and r["config"]["seed"] == seed]
sys.exit(0 if done else 1)
PY
        then
            echo "precision_accuracy: $label: recorded; skipped"
            continue
        fi
        echo "precision_accuracy: $label: training"
        "$py" -m bench.strong_scaling --data data/reference/events64.h5 --image-size 64 --train-events 0 \
            --val-events 0 --global-batch 512 --epochs "${EPOCHS:-6}" --lr 1e-3 --lr-warmup-epochs 2 \
            --bn-momentum 0.1 --seed "$seed" --amp "$amp" --target-auc "${TARGET:-0.93}" \
            ${THREADS:+--threads "$THREADS"} \
            --checkpoint "$out/ckpt-$amp-$seed" --resume --out "$out/records.jsonl"
    done
done
