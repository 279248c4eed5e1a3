#!/bin/sh
# setup.sh - on a fresh Debian machine: install what stride needs, build it, and run the
# main job (train the book's MNIST-1D CNN with the book's protocol).
#   sh scripts/setup.sh             install, build, train mnist1d-cnn
#   sh scripts/setup.sh --deps      only install the Debian packages the build needs
#   sh scripts/setup.sh --ci        those and PyTorch + torchvision for `make test-zoo` (CI)
#   sh scripts/setup.sh --bench     also install what `make bench` needs: PyTorch and torchvision,
#                                   and OpenBLAS (libopenblas0-pthread) so that Debian's PyTorch,
#                                   which calls the system BLAS, runs at its best, not on the
#                                   reference BLAS (a fair peer)
set -eu
cd "$(dirname "$0")/.."

# build-essential: the C compiler (gcc, with OpenMP) and make; pkg-config and
# libcairo2-dev: the PNG plots of `stride experiment`; zlib1g-dev, libpng-dev, libjpeg-dev:
# reading .gz IDX files and PNG/JPEG image folders; dataset-fashion-mnist: the data set
# (`--data fashion-mnist`) and the loader tests.
PKGS="build-essential pkg-config libcairo2-dev zlib1g-dev libpng-dev libjpeg-dev dataset-fashion-mnist"
case "${1:-}" in
--bench) PKGS="$PKGS python3-torch python3-torchvision python3-numpy libopenblas0-pthread" ;;
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

make -j"$(nproc)"
./stride train mnist1d-cnn
