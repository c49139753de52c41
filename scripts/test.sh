#!/usr/bin/env bash
# Set up (Debian packages, including those of the Python module's tests), build
# and run every test with ctest (GoogleTest suites and the pytest files).
#   scripts/test.sh          release build (build/ci-release)
#   scripts/test.sh --asan   AddressSanitizer + UndefinedBehaviorSanitizer build (build/ci-asan-ubsan)
# Both use the CI presets: warnings are errors, the Python module is built.
set -euo pipefail
cd "$(dirname "$0")/.."

preset=ci-release
case "${1:-}" in
  "") ;;
  --asan) preset=ci-asan-ubsan ;;
  -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
  *) echo "test.sh: unknown option '$1' (allowed: --asan)" >&2; exit 2 ;;
esac

# The Python module's tests (pytest), its notebook (nbconvert), the MPI sweep
# test and the language model's tests (PyTorch) are part of the suite.
scripts/setup.sh --with-mpi --with-python --with-notebooks --with-lm
cmake --preset "$preset" -DSATALAB_PYTHON=ON >/dev/null
cmake --build --preset "$preset"
ctest --preset "$preset"
