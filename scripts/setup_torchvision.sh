#!/usr/bin/env bash
# Make torchvision (its model definitions: --model resnet50 | densenet121 | inception_v3 | mobilenet_v2)
# importable in the venv of a given Python, matching the torch already installed there.
#
# Usage: scripts/setup_torchvision.sh PYTHON
#
# Which build:
#   * torchvision already imports and its C++ operators load: nothing to do (whatever built it, e.g. your
#     site's module, or a torchvision you built from its source release against a CPU torch).
#   * torch is a CUDA build (the default of MULTIJET_VISION=1: torch==2.14.1 from PyPI, which runs on CPUs
#     too): PyPI's torchvision release for that torch (torch 2.N.p pairs with torchvision 0.(N+15).p).
#   * torch is a CPU-only build: stop and say so. PyPI's torchvision wheels for Linux x86_64 are CUDA builds,
#     whose C++ operators do not load beside a CPU torch ("operator torchvision::nms does not exist"), and
#     PyPI carries no source release of torchvision to build one from.
set -euo pipefail
die() { echo "setup_torchvision: ERROR: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || { echo "usage: $0 PYTHON" >&2; exit 2; }
PYTHON=$1
ops_ok() {
    "$PYTHON" - <<'PY' >/dev/null 2>&1
import torch, torchvision
torchvision.ops.nms(torch.zeros(1, 4), torch.ones(1), 0.5)  # the C++ operators loaded
PY
}
if ops_ok; then
    echo "setup_torchvision: torchvision $("$PYTHON" -c 'import torchvision; print(torchvision.__version__)') already works in $PYTHON"
    exit 0
fi

read -r TORCH CUDA < <("$PYTHON" -c 'import torch; print(torch.__version__.split("+")[0], torch.version.cuda or "none")') \
    || die "torch does not import in $PYTHON; install torch first"
if [[ $CUDA == none ]]; then
    die "the torch in $PYTHON ($TORCH) is a CPU-only build, and PyPI has no torchvision for it: its wheels are
CUDA builds that fail beside a CPU torch, and it carries no source release. Use the vision environment
(MULTIJET_VISION=1 bash scripts/setup.sh: torch 2.14.1, a CUDA build that also runs on CPUs, with its
torchvision), or build torchvision from its source release (github.com/pytorch/vision, the tag matching
torch $TORCH) against this torch yourself."
fi
IFS=. read -r major minor patch <<<"$TORCH"
[[ $major == 2 ]] || die "no known torchvision release pairs with torch $TORCH"
want="0.$((minor + 15)).$patch"
echo "setup_torchvision: installing torchvision==$want from PyPI (torch $TORCH, CUDA $CUDA)"
"$PYTHON" -m pip install -q "torchvision==$want" "torch==$TORCH" \
    || die "pip install torchvision==$want (for torch $TORCH) failed"
ops_ok || die "torchvision $want installed but its operators do not load beside torch $TORCH"
echo "setup_torchvision: torchvision $want ready"
