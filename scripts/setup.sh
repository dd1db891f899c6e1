#!/usr/bin/env bash
# Set-up for a fresh Debian/Ubuntu machine: Open MPI, a virtual environment with the project's Python
# packages, and Horovod built against the installed PyTorch. Idempotent: finished steps are skipped.
#   MULTIJET_VENV       where the venv lives (default: .venv in the repository; .venv-vision with
#                       MULTIJET_VISION=1)
#   MULTIJET_TORCH      the torch requirement when torch is missing (default: torch==2.13.0, a CPU build;
#                       torch==2.14.1, a CUDA build that also runs on CPUs, with MULTIJET_VISION=1)
#   MULTIJET_HOROVOD=0  skip the Horovod build (the mpi and ddp backends still work); the vision environment
#                       skips it always: Horovod 0.28.1 built against a CUDA build of torch needs the CUDA
#                       toolkit's runtime and headers (its CMake stops at "Could NOT find CUDAToolkit")
#   MULTIJET_VISION=1   the environment of torchvision's models (--model resnet50 ...): a separate venv whose
#                       torch is a CUDA build, with PyPI's torchvision for it (scripts/setup_torchvision.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
vision=${MULTIJET_VISION:-0}
if [ "$vision" = 1 ]; then
    venv=${MULTIJET_VENV:-$root/.venv-vision}
    torch_req=${MULTIJET_TORCH:-torch==2.14.1}
else
    venv=${MULTIJET_VENV:-$root/.venv}
    torch_req=${MULTIJET_TORCH:-torch==2.13.0}
fi

# 1. Open MPI (library, headers for mpi4py and Horovod, and mpirun).
if ! command -v mpirun >/dev/null || ! command -v mpicc >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing Open MPI from the distribution's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin libopenmpi-dev >/dev/null
    else
        echo "setup: Open MPI is missing: run 'sudo apt-get install openmpi-bin libopenmpi-dev'" \
             "(or load your cluster's MPI module) and try again" >&2
        exit 1
    fi
fi

# 2. The virtual environment and the Python packages, redone only when their list changes.
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
py="$venv/bin/python"
stamp="$venv/.multijet-deps-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "setup: installing Python packages into $venv"
    "$py" -m pip install -q --upgrade pip
    # torch first and pinned, so that the range in pyproject.toml never pulls another build.
    "$py" -c "import torch" 2>/dev/null || "$py" -m pip install -q "$torch_req"
    "$py" -m pip install -q -e ".[physics,test]"
    touch "$stamp"
fi

# 3. Horovod (the reference study's backend), built once and cached; see scripts/build_horovod.sh.
if [ "${MULTIJET_HOROVOD:-1}" != 0 ] && [ "$vision" != 1 ]; then
    bash scripts/build_horovod.sh "$py"
fi
# 4. torchvision, for its standard models: only in the vision environment (or when asked for by
#    MULTIJET_VISION=1 with another venv); see scripts/setup_torchvision.sh for which build it takes.
if [ "$vision" = 1 ]; then
    bash scripts/setup_torchvision.sh "$py"
fi
echo "setup: ready ($py)"
