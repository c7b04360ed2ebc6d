#!/usr/bin/env bash
# Builds build-asan/ with AddressSanitizer + UBSan and runs the weight-file tests (hostile files included).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh" --no-install --asan
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
ctest --test-dir "$here/build-asan" --output-on-failure -R 'Safetensors|Pickle|GoldenPth|GoldenSafetensors|WeightLoader|KeyRename' "$@"
