#!/usr/bin/env bash
# The main job on the embedded synthetic data: a strong-scaling sweep over 1 and 2 ranks with the
# default backend (Horovod when built), then the report. Records and plots go to results/.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${MULTIJET_VENV:-.venv}/bin/python
out=${MULTIJET_RESULTS:-results}
mkdir -p "$out"
mpi_flags=(--oversubscribe)
[ "$(id -u)" = 0 ] && mpi_flags+=(--allow-run-as-root)

mpirun "${mpi_flags[@]}" -np 2 "$py" -m bench.strong_scaling --preset quick --sweep --out "$out/records.jsonl"
"$py" -m reports.build "$out/records.jsonl" --out "$out/report"
echo
echo "records: $(realpath "$out/records.jsonl")"
echo "report:  $(realpath "$out/report/index.html") (figures and tables beside it)"
