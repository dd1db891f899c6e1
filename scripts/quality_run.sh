#!/usr/bin/env bash
# The physics quality run of docs/evaluate.md: generate real events at 64x64, train circpad with the harness,
# and compare the CNN with the cut-based selection on the test split, beside the study's figures.
#
#   scripts/quality_run.sh                      # the study's size: 50k + 50k (generation ~2.6 h on 2 cores, scaled from 30k)
#   SIGNAL=15000 BACKGROUND=15000 EPOCHS=12 RANKS=2 scripts/quality_run.sh
#       # the committed reference run (reports/reference/quality/README.md): about 50 min of generation and
#       # 40 min of training on 2 cores
#
# Environment (defaults in brackets): SIGNAL [50000], BACKGROUND [50000] kept events; RANKS [1] for training
# (mpirun above 1); EPOCHS [20]; GLOBAL_BATCH [512]; LR [1e-3] with LR_WARMUP [2] epochs of linear warm-up;
# OUT [results/quality]; SEED [11]; CHUNK [250]. Generation uses data.generation.generate's defaults: the
# fast path, the default pT-hat slices and the effective split (docs/data.md, 'The fast path').
# Generation resumes: run the same command again after a kill, or with larger counts to add events.
# Cost measured on this project's 2-core machine (fast path): 30k events (15k + 15k) in 2,824 s on 2 workers,
# about 0.19 core-s per kept event, most of it QCD.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${MULTIJET_VENV:-.venv}/bin/python
out=${OUT:-results/quality}
mkdir -p "$out"
data="$out/events64.h5"
"$py" -m data.generation.generate --signal-events "${SIGNAL:-50000}" --background-events "${BACKGROUND:-50000}" \
    --image-size 64 --seed "${SEED:-11}" --chunk "${CHUNK:-250}" \
    --out "$data"
train=(-m bench.strong_scaling --data "$data" --image-size 64 --train-events 0 --val-events 0
       --global-batch "${GLOBAL_BATCH:-512}" --epochs "${EPOCHS:-20}" --lr "${LR:-1e-3}"
       --lr-warmup-epochs "${LR_WARMUP:-2}" --bn-momentum 0.1 --seed "${SEED:-11}"
       --out "$out/records.jsonl" --save-model "$out/model.pt")
if [ "${RANKS:-1}" -gt 1 ]; then
    mpi_flags=(--oversubscribe)
    [ "$(id -u)" = 0 ] && mpi_flags+=(--allow-run-as-root)
    source scripts/mpi_session.sh
    mpirun "${mpi_flags[@]}" -np "$RANKS" "$py" "${train[@]}"
else
    "$py" "${train[@]}"
fi
"$py" -m reports.physics --model-weights "$out/model.pt" --labels "circpad 64x64, ${RANKS:-1} rank(s)" \
    --out "$out/evaluation"
