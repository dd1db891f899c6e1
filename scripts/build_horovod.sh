#!/usr/bin/env bash
# Make Horovod (PyTorch + MPI) importable in the virtualenv of a given Python,
# building it from source once and reusing the built wheel afterwards.
#
# Usage: scripts/build_horovod.sh PYTHON
#   PYTHON  the venv's interpreter, e.g. .venv/bin/python
#
# Why a source build: Horovod's last release (0.28.1) ships no wheels, and its
# CMake files pin C++14 while PyTorch >= 2.1 headers need C++17, so a plain
# `pip install horovod` fails against current torch. We patch the two
# CMAKE_CXX_STANDARD lines to 17 and build against the torch already in the
# venv (hence --no-build-isolation: the extension must link that exact torch).
#
# Why a cache: the build takes 2 minutes on two idle cores, 6 on a busy
# machine. The wheel is stored
# under $CACHE/wheels/horovod-<ver>/torch-<torch ver>/ because the extension is
# ABI-tied to the torch it was compiled against; the Python version is in the
# wheel's own file name (cpXY tags).
#
# Environment:
#   MULTIJET_CACHE            cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/multijet-bench)
#   MAKEFLAGS                 passed to make (default -j$(nproc); Horovod's own default is -j8)
#   HOROVOD_BUILD_ARCH_FLAGS  passed through; unset = Horovod probes -mf16c/-mavx/-mfma
#                             on this CPU. Set it to "" for a wheel that runs on
#                             CPUs without AVX/FMA if the cache is shared.
#   HOROVOD_CMAKE             passed through to Horovod's setup.py (cmake binary to use)
set -euo pipefail

HVD_VERSION=0.28.1
die() { echo "build_horovod: ERROR: $*" >&2; exit 1; }
log() { echo "build_horovod: $*"; }

[[ $# -eq 1 ]] || { echo "usage: $0 PYTHON" >&2; exit 2; }
PYTHON=$1
command -v "$PYTHON" >/dev/null 2>&1 || die "python '$PYTHON' not found"

# Fast path: nothing to do when the venv already has a working horovod.torch.
if "$PYTHON" -c "import horovod.torch" >/dev/null 2>&1; then
    echo "build_horovod: horovod.torch already importable in $PYTHON; nothing to do"
    exit 0
fi

PYTAG=$("$PYTHON" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
# importlib.metadata instead of `import torch`: same answer, no 2 s torch import.
TORCH_VERSION=$("$PYTHON" -c 'from importlib.metadata import version; print(version("torch"))' 2>/dev/null) \
    || die "torch is not installed in $PYTHON's environment; install torch first (Horovod builds against it)"

CACHE_ROOT=${MULTIJET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/multijet-bench}
WHEEL_DIR=$CACHE_ROOT/wheels/horovod-$HVD_VERSION/torch-$TORCH_VERSION
SDIST_DIR=$CACHE_ROOT/sdist
LOG_DIR=$CACHE_ROOT/logs
LOG=$LOG_DIR/build-horovod-$HVD_VERSION-$PYTAG-torch-$TORCH_VERSION.log
mkdir -p "$WHEEL_DIR" "$SDIST_DIR" "$LOG_DIR"

# Serialise concurrent invocations (e.g. several jobs starting at once) so only
# one of them builds and nobody installs a half-copied wheel.
exec 9>"$CACHE_ROOT/.build_horovod.lock"
flock 9
# Another holder of the lock may have just installed it into this same venv.
if "$PYTHON" -c "import horovod.torch" >/dev/null 2>&1; then
    echo "build_horovod: horovod.torch already importable in $PYTHON; nothing to do"
    exit 0
fi

PIP=("$PYTHON" -m pip)
VENV_BIN=$(dirname "$PYTHON")

find_wheel() {
    local w
    shopt -s nullglob
    for w in "$WHEEL_DIR"/horovod-"$HVD_VERSION"-"$PYTAG"-"$PYTAG"-*.whl; do
        echo "$w"; shopt -u nullglob; return 0
    done
    shopt -u nullglob
    return 1
}

# Replace exactly one `set(CMAKE_CXX_STANDARD 14)` by 17 in a file; fail loudly
# if the line is not there, so a changed upstream file cannot silently skip it.
patch_cxx17() {
    local f=$1 n
    n=$(grep -c 'set(CMAKE_CXX_STANDARD 14)' "$f" || true)
    [[ $n -eq 1 ]] || die "expected one 'set(CMAKE_CXX_STANDARD 14)' in $f, found $n; the C++17 patch needs revisiting"
    sed -i 's/set(CMAKE_CXX_STANDARD 14)/set(CMAKE_CXX_STANDARD 17)/' "$f"
    grep -q 'set(CMAKE_CXX_STANDARD 17)' "$f" || die "patching $f to C++17 failed"
}

build_wheel() {
    # Horovod's setup.py calls `cmake` from PATH and needs >= 3.13; the venv's
    # bin goes first so a pip-installed cmake is found when the system has none.
    export PATH="$VENV_BIN:$PATH"
    if ! cmake --version >/dev/null 2>&1; then
        log "no cmake on PATH; installing cmake from PyPI into the venv"
        "${PIP[@]}" install cmake
    fi
    # --no-build-isolation means setup.py runs with the venv's own packages: it
    # needs setuptools, packaging (imported by setup.py), and `wheel` only when
    # setuptools predates its built-in bdist_wheel (70.1). A fresh venv with
    # just torch lacks packaging.
    local build_deps
    build_deps=$("$PYTHON" - <<'PY'
import importlib.metadata as md
def ver(name):
    try:
        return tuple(int(x) for x in md.version(name).split(".")[:2] if x.isdigit())
    except md.PackageNotFoundError:
        return None
need = []
if ver("setuptools") is None:
    need.append("setuptools")
elif ver("setuptools") < (70, 1) and ver("wheel") is None:
    need.append("wheel")
if ver("packaging") is None:
    need.append("packaging")
print(" ".join(need))
PY
)
    if [[ -n $build_deps ]]; then
        log "installing build prerequisites into the venv: $build_deps"
        # shellcheck disable=SC2086  # plain names, split on purpose
        "${PIP[@]}" install $build_deps
    fi
    # FindMPI locates Open MPI through its compiler wrapper.
    command -v mpicxx >/dev/null 2>&1 || die "mpicxx not found; install an MPI with its development files (Debian: openmpi-bin libopenmpi-dev)"

    local tmp
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/build_horovod.XXXXXX")
    # shellcheck disable=SC2064  # expand $tmp now
    trap "rm -rf '$tmp'" EXIT

    # Keep the sdist in the cache: a rebuild for a new torch then needs no network.
    local sdist=$SDIST_DIR/horovod-$HVD_VERSION.tar.gz
    if [[ ! -f $sdist ]]; then
        log "downloading horovod==$HVD_VERSION sdist"
        "${PIP[@]}" download --no-binary :all: --no-deps --no-build-isolation \
            "horovod==$HVD_VERSION" -d "$tmp/dl" >"$tmp/download.log" 2>&1 \
            || { cat "$tmp/download.log" >&2; die "pip download horovod==$HVD_VERSION failed"; }
        cp "$tmp/dl/horovod-$HVD_VERSION.tar.gz" "$sdist.partial"
        mv -f "$sdist.partial" "$sdist"
    fi
    mkdir -p "$tmp/src"
    tar -xzf "$sdist" -C "$tmp/src"
    local src=$tmp/src/horovod-$HVD_VERSION
    patch_cxx17 "$src/CMakeLists.txt"
    patch_cxx17 "$src/horovod/torch/CMakeLists.txt"

    log "building horovod $HVD_VERSION for $PYTAG / torch $TORCH_VERSION (several minutes); log: $LOG"
    local t0=$SECONDS
    # PyTorch + MPI only: no TensorFlow/MXNet, and no Gloo (we launch with
    # mpirun, and Gloo adds minutes of compile time). -v so the compiler output
    # reaches the log.
    if ! env HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_MPI=1 \
            HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1 HOROVOD_WITHOUT_GLOO=1 \
            MAKEFLAGS="${MAKEFLAGS:--j$(nproc)}" \
            "${PIP[@]}" wheel -v --no-build-isolation --no-deps -w "$tmp/wheelhouse" "$src" \
            >"$LOG" 2>&1; then
        echo "build_horovod: ERROR: horovod build failed; full log: $LOG" >&2
        echo "----- last 40 lines of $LOG -----" >&2
        tail -n 40 "$LOG" >&2
        exit 1
    fi
    log "build took $((SECONDS - t0)) s"

    local built
    built=$(ls "$tmp"/wheelhouse/horovod-"$HVD_VERSION"-*.whl 2>/dev/null | head -n1) \
        || die "pip wheel succeeded but produced no horovod wheel; see $LOG"
    # Copy then rename, so the cache never holds a truncated wheel.
    cp "$built" "$WHEEL_DIR/.$(basename "$built").partial"
    mv -f "$WHEEL_DIR/.$(basename "$built").partial" "$WHEEL_DIR/$(basename "$built")"
}

if WHEEL=$(find_wheel); then
    log "using cached wheel $WHEEL"
else
    build_wheel
    WHEEL=$(find_wheel) || die "no wheel in $WHEEL_DIR after the build"
    log "cached wheel $WHEEL"
fi

# --force-reinstall: a horovod 0.28.1 may already be installed but broken (e.g.
# built against an older torch); without it pip would call it satisfied.
"${PIP[@]}" install --no-deps --force-reinstall "$WHEEL"

# The wheel went in with --no-deps so pip never re-resolves or replaces torch.
# Its plain runtime requirements (cloudpickle, psutil, pyyaml, packaging,
# cffi) are read from the installed metadata, and only the missing ones are
# installed; extras and torch itself are left alone.
# (Command substitution, not <(...), so that a failure here stops the script.)
missing_deps=$("$PYTHON" - <<'PY'
import importlib.metadata as md
try:
    from packaging.requirements import Requirement
except ImportError:  # packaging is itself one of the requirements
    from pip._vendor.packaging.requirements import Requirement
for spec in md.requires("horovod") or []:
    req = Requirement(spec)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    try:
        installed = md.version(req.name)
    except md.PackageNotFoundError:
        print(f"{req.name}{req.specifier}")
        continue
    if req.specifier and not req.specifier.contains(installed, prereleases=True):
        print(f"{req.name}{req.specifier}")
PY
)
mapfile -t missing < <(printf '%s\n' "$missing_deps" | sed '/^$/d')
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing Horovod runtime dependencies: ${missing[*]}"
    "${PIP[@]}" install "${missing[@]}"
fi

if ! "$PYTHON" -c "import horovod.torch as hvd; assert hvd.mpi_built()"; then
    die "horovod was installed from $WHEEL but 'import horovod.torch; hvd.mpi_built()' fails in $PYTHON; remove that wheel to force a rebuild (build log: $LOG)"
fi
log "horovod $HVD_VERSION with PyTorch + MPI is ready in $PYTHON"
