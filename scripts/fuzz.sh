#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang (-fsanitize=fuzzer,address,undefined) into build-fuzz/ and
# runs one of them for SECONDS on one core, starting from its seed corpus (docs/reliability.md).
#   scripts/fuzz.sh TARGET SECONDS [extra libFuzzer flags]
#   scripts/fuzz.sh --list                 # the targets
#   scripts/fuzz.sh --build-only           # build every target, run none
# TARGET: safetensors pth pickle onnx manifest_jsonl manifest_csv model_config.
# The seed corpus tests/fuzz/corpus/TARGET/ is only read; new inputs go to build-fuzz/corpus/TARGET/, crashes to
# tests/fuzz/crashes/TARGET/ (crash-*, leak-*, timeout-*, oom-*: minimise one with
# `build-fuzz/tests/fuzz/fuzz_TARGET -minimize_crash=1 -runs=10000 FILE`, then add it to the seed corpus as crash-NAME).
# Environment: CXX (default clang++-14), CC (default clang-14), JOBS (build parallelism, default 2),
# EMO_VENV (default .venv), BUILD_DIR (default build-fuzz), CUDA_HOME (as scripts/setup.sh), FUZZ_NO_BUILD=1 (run
# the binary already built, e.g. while another build is running in the same folder).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
targets="safetensors pth pickle onnx manifest_jsonl manifest_csv model_config"
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in
  -h|--help|"") usage; exit 0 ;;
  --list) echo "$targets"; exit 0 ;;
esac
build_only=0
if [ "$1" = "--build-only" ]; then build_only=1; target=""; seconds=0; shift
else
  target="$1"; seconds="${2:?usage: scripts/fuzz.sh TARGET SECONDS}"; shift 2
  case " $targets " in *" $target "*) ;; *) echo "fuzz.sh: unknown target '$target' (one of: $targets)" >&2; exit 2 ;; esac
fi
build_dir="$here/${BUILD_DIR:-build-fuzz}"
venv="${EMO_VENV:-$here/.venv}"
py="$venv/bin/python"
[ -x "$py" ] || { echo "fuzz.sh: no Python at $py: run scripts/setup.sh first or set EMO_VENV" >&2; exit 2; }
torch_prefix="$("$py" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)' 2>/dev/null)"
if [ -z "${CUDA_HOME:-}" ]; then
  for d in /usr/local/cuda "$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)")")"; do
    [ -x "$d/bin/nvcc" ] && { export CUDA_HOME="$d"; break; }
  done
fi
export PATH="${CUDA_HOME:-/usr/local/cuda}/bin:$PATH"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-8.0;9.0}"
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  CC="${CC:-clang-14}" CXX="${CXX:-clang++-14}" cmake -S "$here" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DEMO_BUILD_TESTS=OFF -DEMO_FUZZ_REPLAY=OFF -DEMO_FUZZ_LIBFUZZER=ON -DEMO_USE_PCH=OFF \
    -DCMAKE_PREFIX_PATH="$torch_prefix" -DCUDAToolkit_ROOT="${CUDA_HOME:-/usr/local/cuda}" >/dev/null
fi
build_targets=""
for t in $targets; do
  if [ "$build_only" = 1 ] || [ "$t" = "$target" ]; then build_targets="$build_targets fuzz_$t"; fi
done
# shellcheck disable=SC2086
[ "${FUZZ_NO_BUILD:-0}" = 1 ] || cmake --build "$build_dir" -j "${JOBS:-2}" --target $build_targets
[ "$build_only" = 1 ] && exit 0

seeds="$here/tests/fuzz/corpus/$target"
work="$build_dir/corpus/$target"
crashes="$here/tests/fuzz/crashes/$target"
mkdir -p "$work" "$crashes"
dict=()
[ -f "$here/tests/fuzz/$target.dict" ] && dict=(-dict="$here/tests/fuzz/$target.dict")
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export EMO_THREADS=1 OMP_NUM_THREADS=1
echo "fuzz.sh: $target for ${seconds}s (seeds $seeds, corpus $work, crashes $crashes)"
# -jobs=1 -workers=1: one process on one core. libFuzzer prints '#N ... cov: C ft: F corp: K/..b exec/s: E' lines.
set +e
"$build_dir/tests/fuzz/fuzz_$target" "$work" "$seeds" -max_total_time="$seconds" -print_final_stats=1 \
  -artifact_prefix="$crashes/" -max_len=65536 -timeout=25 -rss_limit_mb=4096 "${dict[@]}" "$@"
rc=$?
set -e
n=$(find "$crashes" -type f | wc -l)
echo "fuzz.sh: $target finished (exit $rc); corpus $(find "$work" -type f | wc -l) files; $n file(s) in $crashes"
exit $rc
