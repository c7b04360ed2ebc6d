#!/usr/bin/env bash
# Builds the weight-file readers and their tests with AddressSanitizer + UBSan (torch-only build, so it
# stays small) into build-asan/ and runs the reader tests, hostile files included.
#   scripts/asan.sh            # configure, build, run
# Environment: JOBS (default: core count).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="${JOBS:-$(nproc)}"
cmake -S "$here" -B "$here/build-asan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMO_ASAN=ON -DEMO_TORCH_ONLY=ON
cmake --build "$here/build-asan" -j "$jobs" --target emo_unit_tests emo_golden_tests
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$here/build-asan" --output-on-failure \
  -R 'Safetensors|Pickle|GoldenPth|GoldenSafetensors|WeightLoader|KeyRename' "$@"
