#!/usr/bin/env bash
# Set up (Debian packages), build and run every test with ctest.
#   scripts/test.sh          release build (build/release)
#   scripts/test.sh --asan   AddressSanitizer + UndefinedBehaviorSanitizer build (build/asan-ubsan)
set -euo pipefail
cd "$(dirname "$0")/.."

preset=release
case "${1:-}" in
  "") ;;
  --asan) preset=asan-ubsan ;;
  -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
  *) echo "test.sh: unknown option '$1' (allowed: --asan)" >&2; exit 2 ;;
esac

scripts/setup.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
ctest --preset "$preset"
