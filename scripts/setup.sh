#!/bin/sh
# setup.sh - on a fresh Debian machine: install what stride needs, build it, and run the
# main job (train the book's MNIST-1D CNN with the book's protocol).
#   sh scripts/setup.sh             install, build, train mnist1d-cnn
#   sh scripts/setup.sh --deps      only install the Debian packages the build needs
#   sh scripts/setup.sh --ci        those and PyTorch + torchvision for `make test-zoo` (CI)
#   sh scripts/setup.sh --bench     also install what `make bench` needs: PyTorch and torchvision,
#                                   and OpenBLAS (libopenblas0-pthread) so that Debian's PyTorch,
#                                   which calls the system BLAS, runs at its best, not on the
#                                   reference BLAS (a fair peer); and ONNX Runtime from PyPI in a
#                                   virtual environment, build/venv (see below)
set -eu
cd "$(dirname "$0")/.."

# build-essential: the C compiler (gcc, with OpenMP) and make; pkg-config and
# libcairo2-dev: the PNG plots of `stride experiment`; zlib1g-dev, libpng-dev, libjpeg-dev:
# reading .gz IDX files and PNG/JPEG image folders; dataset-fashion-mnist: the data set
# (`--data fashion-mnist`) and the loader tests.
PKGS="build-essential pkg-config libcairo2-dev zlib1g-dev libpng-dev libjpeg-dev dataset-fashion-mnist"
case "${1:-}" in
--bench) PKGS="$PKGS python3-torch python3-torchvision python3-numpy libopenblas0-pthread python3-venv python3-pip" ;;
--ci) PKGS="$PKGS python3-torch python3-torchvision python3-numpy" ;;
esac

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
case "${1:-}" in --deps | --ci) exit 0 ;; esac

# --bench: ONNX Runtime, which Debian does not package, from PyPI into build/venv. The venv
# sees Debian's packages (--system-site-packages: torch for the ONNX export, NumPy), and pip
# is held to Debian's NumPy version, so that it cannot install a NumPy 2 that would shadow
# the one Debian's torch 1.13 was built against. ORT_VERSION is a release checked to work
# with NumPy 1.24 (Debian 12). `make clean` removes the venv; this step makes it again. If it
# fails (no network), `make bench` still runs and reports ONNX Runtime as not installed.
ORT_VERSION=1.32.0
if [ "${1:-}" = "--bench" ]; then
    VENV=build/venv
    if ! "$VENV/bin/python" -c 'import onnxruntime' 2>/dev/null; then
        echo "installing onnxruntime==$ORT_VERSION into $VENV"
        mkdir -p build
        NUMPY=$(/usr/bin/python3 -c 'import numpy; print(numpy.__version__)')
        printf 'numpy==%s\n' "$NUMPY" >build/venv-constraints.txt
        { /usr/bin/python3 -m venv --system-site-packages "$VENV" &&
            "$VENV/bin/python" -m pip install -q -c build/venv-constraints.txt "onnxruntime==$ORT_VERSION"; } ||
            echo "setup: could not install onnxruntime into $VENV; make bench will run without it" >&2
    fi
fi

make -j"$(nproc)"
./stride train mnist1d-cnn
