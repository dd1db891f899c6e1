#!/usr/bin/env bash
# The two commands of the README:
#   ./run.sh main   set up, run the quick main job (1 and 2 ranks), build the report
#   ./run.sh test   set up, run the whole test suite (unit tests, smoke runs, the mpirun -np 2 tier, the
#                   Slurm tier, which starts scripts/slurm_local.sh's cluster as root and skips elsewhere)
# MULTIJET_VISION=1 sets up and uses the environment of torchvision's models instead (.venv-vision).
set -euo pipefail
cd "$(dirname "$0")"
if [ "${MULTIJET_VISION:-0}" = 1 ]; then venv=${MULTIJET_VENV:-.venv-vision}; else venv=${MULTIJET_VENV:-.venv}; fi
case "${1:-}" in
    main) bash scripts/setup.sh && exec bash scripts/main_job.sh ;;
    test) bash scripts/setup.sh && exec "$venv/bin/python" -m pytest "${@:2}" ;;
    *) echo "usage: ./run.sh main | test [pytest arguments]" >&2; exit 2 ;;
esac
