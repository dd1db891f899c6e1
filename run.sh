#!/usr/bin/env bash
# The two commands of the README:
#   ./run.sh main   set up, run the quick main job (1 and 2 ranks), build the report
#   ./run.sh test   set up, run the whole test suite (unit tests, smoke runs, the mpirun -np 2 tier, the
#                   Slurm tier, which starts scripts/slurm_local.sh's cluster as root and skips elsewhere)
set -euo pipefail
cd "$(dirname "$0")"
case "${1:-}" in
    main) bash scripts/setup.sh && exec bash scripts/main_job.sh ;;
    test) bash scripts/setup.sh && exec "${MULTIJET_VENV:-.venv}/bin/python" -m pytest "${@:2}" ;;
    *) echo "usage: ./run.sh main | test [pytest arguments]" >&2; exit 2 ;;
esac
