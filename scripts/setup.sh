#!/usr/bin/env bash
# Install the Debian (bookworm) packages satalab needs. Idempotent: packages
# that are already installed are skipped, and apt-get is not run at all when
# nothing is missing. Nothing is downloaded from anywhere but Debian.
#
# Usage: scripts/setup.sh [--with-mpi] [--with-python] [--with-notebooks] [--with-lm]
#        (by default: build + test dependencies, Python plotting stack;
#        --with-python: the Python module (pybind11) and its tests (pytest);
#        --with-notebooks: executing notebooks headless;
#        --with-lm: PyTorch (CPU), tqdm and OpenBLAS for the byte-level language model,
#        satalab-lm; scripts/test.sh uses --with-python, --with-notebooks, --with-lm)
set -euo pipefail

packages=(
  # build
  g++ cmake ninja-build pkg-config
  # C++ libraries
  libeigen3-dev libboost-dev libmpfr-dev libgmp-dev libfmt-dev libhdf5-dev
  libgtest-dev libbenchmark-dev libcli11-dev libtomlplusplus-dev
  # Random123: counter-based generator (Philox) for inputs regenerated at any position
  librandom123-dev
  # Python used by scripts/ and tests (Debian's interpreter, /usr/bin/python3)
  python3 python3-h5py python3-numpy python3-matplotlib python3-pandas
)

for arg in "$@"; do
  case "$arg" in
    --with-mpi) packages+=(openmpi-bin libopenmpi-dev) ;;
    --with-python) packages+=(pybind11-dev python3-dev python3-pytest) ;;
    --with-notebooks) packages+=(jupyter-nbconvert python3-ipykernel) ;;
    # OpenBLAS: Debian's torch calls the system BLAS; with the reference libblas3 training is ~10x slower.
    --with-lm) packages+=(python3-torch python3-tqdm libopenblas0-openmp) ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (allowed: --with-mpi, --with-python, --with-notebooks, --with-lm)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "setup: installing ${#missing[@]} missing packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
