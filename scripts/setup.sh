#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for emo and builds it in Release into build/ (the CLI is build/emo).
# Idempotent: re-running only installs what is missing and rebuilds what changed.
#
#   scripts/setup.sh                 install Debian packages (root or sudo), configure, build
#   scripts/setup.sh --no-install    skip apt (libraries already present, e.g. a CUDA libtorch given
#                                    through CMAKE_PREFIX_PATH=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)'))
#   scripts/setup.sh --asan          build into build-asan/ with AddressSanitizer + UBSan
#   scripts/setup.sh --with-slurm    also install slurm-wlm + munge for the `slurm` test label
#                                    (automatic when CI=true, so CI runs the Slurm job-array test)
# Environment: BUILD_DIR (default build), JOBS (default: core count), CMAKE_ARGS (extra configure flags).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
install=1
asan=0
slurm=0
[ "${CI:-}" = "true" ] && slurm=1
for arg in "$@"; do
  case "$arg" in
    --no-install) install=0 ;;
    --asan) asan=1 ;;
    --with-slurm) slurm=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\n==> %s\n' "$*"; }

packages=(
  build-essential cmake ninja-build pkg-config ccache
  libtorch-dev libopenblas0-openmp
  libopencv-dev opencv-data
  libavcodec-dev libavformat-dev libavutil-dev libswresample-dev libswscale-dev
  libcli11-dev libspdlog-dev nlohmann-json3-dev libgtest-dev
)

[ "$slurm" = 1 ] && packages+=(slurm-wlm munge)

if [ "$install" = 1 ]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "all ${#packages[@]} Debian packages already installed"
  else
    sudo=""
    if [ "$(id -u)" != 0 ]; then
      command -v sudo >/dev/null || { echo "setup.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
      sudo="sudo"
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

build_dir="${BUILD_DIR:-build}"
asan_flag="-DEMO_ASAN=OFF"
if [ "$asan" = 1 ]; then
  build_dir="${BUILD_DIR:-build-asan}"
  asan_flag="-DEMO_ASAN=ON"
fi
jobs="${JOBS:-$(nproc)}"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ -f "$here/$build_dir/CMakeCache.txt" ]; then
  generator=()  # keep whatever generator the existing build dir uses
fi

say "configuring $build_dir (Release)"
# shellcheck disable=SC2086
cmake -S "$here" -B "$here/$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "$asan_flag" ${CMAKE_ARGS:-}
say "building with $jobs jobs"
cmake --build "$here/$build_dir" -j "$jobs"
say "done: $here/$build_dir/emo   (tests: ctest --test-dir $build_dir --output-on-failure)"
