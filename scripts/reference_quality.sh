#!/usr/bin/env bash
# The committed reference quality run, made from one point of the learning curve (docs/evaluate.md, 'At the
# study's statistics'): its model and record copied to reports/reference/quality/, scored by reports.physics
# on the study sample's test split (70,000 events, the table the README quotes) and on every event of the
# committed store data/reference/events64.h5 (independent events, seed 11 against the sample's 31: the table
# ./run.sh main remakes), and the learning curve's table and figure written to reports/reference/learning-curve/.
#
#   scripts/reference_quality.sh [POINT]    # POINT: <arm>-<training events> [augment-110000]
#
# Needs results/study/study64.h5 (python -m data.generation.study) and the point trained by
# python -m reports.learning_curve run (results/learning-curve/). About 10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${MULTIJET_VENV:-.venv}/bin/python
point=${1:-augment-110000}
lc=${LEARNING_CURVE:-results/learning-curve}
study=${STUDY:-results/study/study64.h5}
ref=reports/reference/quality
model="$lc/models/$point.pt"
for f in "$model" "$lc/records.jsonl" "$study"; do
    [ -f "$f" ] || { echo "error: $f: no such file (see the header of $0)" >&2; exit 2; }
done
record=$("$py" - "$lc/records.jsonl" "$model" <<'PY'
import json, sys
from bench.runner.checkpoint import load_model
run_id = load_model(sys.argv[2])["run_id"]
lines = [l for l in open(sys.argv[1]) if l.strip() and json.loads(l)["run_id"] == run_id]
if len(lines) != 1:
    sys.exit(f"error: {sys.argv[1]}: {len(lines)} records of run {run_id} (the model {sys.argv[2]}), not one")
print(lines[0], end="")
PY
)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" -m reports.physics --model-weights "$model" --data "$study" --labels "circpad 64x64, $point" --out "$tmp/study"
"$py" -m reports.physics --model-weights "$model" --data data/reference/events64.h5 --all-events \
    --labels "circpad 64x64, $point" --out "$tmp/store"
"$py" -m reports.learning_curve report --records "$lc/records.jsonl" --out "$tmp/learning-curve"
# everything made before anything committed is replaced
mkdir -p "$ref/store" reports/reference/learning-curve
cp "$model" "$ref/model.pt"
printf '%s\n' "$record" > "$ref/records.jsonl"
cp "$tmp"/study/{physics.json,physics.md,physics.csv,roc.png,roc.svg} "$ref/"
cp "$tmp"/store/{physics.json,physics.md} "$ref/store/"
cp "$tmp"/learning-curve/learning_curve.{md,csv,json,png,svg} reports/reference/learning-curve/
echo "written: $ref/ (model, record, the study split's table and ROC), $ref/store/, reports/reference/learning-curve/"
