#!/usr/bin/env bash
# The main job on the embedded data: a strong-scaling sweep over 1 and 2 ranks on the synthetic toy with the
# default backend (Horovod when built), then the report; then the CNN against the cut-based selection on real
# simulated events: the committed reference model, trained on the study sample, scored on every event of the
# committed Pythia store, which it never saw (reports/reference/quality/README.md says how both were made).
# Records, plots and tables go to results/.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${MULTIJET_VENV:-.venv}/bin/python
out=${MULTIJET_RESULTS:-results}
mkdir -p "$out"
mpi_flags=(--oversubscribe)
[ "$(id -u)" = 0 ] && mpi_flags+=(--allow-run-as-root)
source scripts/mpi_session.sh

mpirun "${mpi_flags[@]}" -np 2 "$py" -m bench.strong_scaling --preset quick --sweep --out "$out/records.jsonl"
"$py" -m reports.build "$out/records.jsonl" --out "$out/report"
"$py" -m reports.physics --model-weights reports/reference/quality/model.pt --data data/reference/events64.h5 \
    --all-events --labels "circpad 64x64 (reference run)" --out "$out/physics"
echo
echo "records: $(realpath "$out/records.jsonl")"
echo "report:  $(realpath "$out/report/index.html") (figures and tables beside it)"
echo "CNN against the cuts on simulated events: $(realpath "$out/physics/physics.md") (ROC: roc.png beside it)"
