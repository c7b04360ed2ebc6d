#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for emo and builds it in Release into build/ (the CLI is build/emo).
# Idempotent: re-running only installs what is missing and rebuilds what changed.
#
#   scripts/setup.sh                 Debian packages (root or sudo) + PyTorch (pinned, from PyPI, into .venv/) +
#                                    configure against that libtorch (CUDA found through the CUDA toolkit) + build
#   scripts/setup.sh --no-install    skip apt (the Debian libraries are already there); PyTorch is still checked
#   scripts/setup.sh --asan          build into build-asan/ with AddressSanitizer + UBSan
#   scripts/setup.sh --with-slurm    also install slurm-wlm + munge for the `slurm` test label
#                                    (automatic when CI=true, so CI runs the Slurm job-array test)
# Environment: BUILD_DIR (default build), JOBS (default: core count), CMAKE_ARGS (extra configure flags),
#              EMO_VENV (default .venv), PYTHON (default python3), TORCH_CUDA_ARCH_LIST (default 8.0;9.0),
#              CUDA_HOME (default: the nvcc on PATH, else /usr/local/cuda).
set -euo pipefail

# One libtorch line: PyTorch 2.11 (the GPU machines run 2.11 with CUDA 13.0; PyPI's 2.11.0 wheel is built for CUDA 13).
TORCH_PIN="2.11.0"

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
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\n==> %s\n' "$*"; }
die() { echo "setup.sh: $*" >&2; exit 1; }
t_start=$(date +%s)

packages=(
  build-essential cmake ninja-build pkg-config ccache python3 python3-venv
  libopencv-dev opencv-data opencv-doc libjpeg-dev
  libavcodec-dev libavformat-dev libavutil-dev libswresample-dev libswscale-dev
  libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libgtest-dev libcurl4-openssl-dev
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
      command -v sudo >/dev/null || die "need root or sudo to install: ${missing[*]}"
      sudo="sudo"
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# --- PyTorch (libtorch with CUDA) in a project-local virtual environment -------------------------------------
venv="${EMO_VENV:-$here/.venv}"
py="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  "$py" -m venv "$venv" || die "could not create a virtual environment with $py (apt install python3-venv)"
fi
have_torch="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)"
if [ "$have_torch" != "$TORCH_PIN" ]; then
  say "installing torch==$TORCH_PIN from PyPI into $venv (was: ${have_torch:-none})"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --progress-bar off "torch==$TORCH_PIN"
else
  say "torch $TORCH_PIN already in $venv"
fi
torch_info="$("$venv/bin/python" -W ignore -c 'import torch; print(torch.utils.cmake_prefix_path); print(torch.version.cuda or "")' 2>/dev/null)" \
  || die "torch does not import from $venv"
torch_prefix="$(sed -n 1p <<<"$torch_info")"
torch_cuda="$(sed -n 2p <<<"$torch_info")"

# The CUDA toolkit (nvcc, cudart headers) that libtorch's CMake config needs to find its CUDA libraries.
if ! command -v nvcc >/dev/null; then
  for d in "${CUDA_HOME:-}" /usr/local/cuda; do
    if [ -n "$d" ] && [ -x "$d/bin/nvcc" ]; then export PATH="$d/bin:$PATH"; break; fi
  done
fi
command -v nvcc >/dev/null || die "no CUDA toolkit (nvcc) found: install CUDA ${torch_cuda%%.*}.x or set CUDA_HOME"
export CUDA_HOME="${CUDA_HOME:-$(cd "$(dirname "$(command -v nvcc)")/.." && pwd)}"
nvcc_ver="$(nvcc --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p')"
if [ -n "$torch_cuda" ] && [ "${torch_cuda%%.*}" != "${nvcc_ver%%.*}" ]; then
  die "torch $TORCH_PIN is built for CUDA $torch_cuda but the toolkit at $CUDA_HOME is CUDA $nvcc_ver: install a CUDA ${torch_cuda%%.*}.x toolkit or point CUDA_HOME at one (docs/building.md)"
fi
# emo compiles no CUDA kernels of its own; naming the architectures skips libtorch's GPU auto-detection.
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-8.0;9.0}"

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

ccache_flag="-DEMO_CCACHE=ON"
[ "${CI:-}" = "true" ] && ccache_flag="-DEMO_CCACHE=OFF"  # a fresh CI machine has a cold cache: pure overhead
say "configuring $build_dir (Release) against torch $TORCH_PIN (CUDA ${torch_cuda:-none}, toolkit $nvcc_ver at $CUDA_HOME)"
# shellcheck disable=SC2086
cmake -S "$here" -B "$here/$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "$asan_flag" "$ccache_flag" \
  -DCMAKE_PREFIX_PATH="$torch_prefix" -DCUDAToolkit_ROOT="$CUDA_HOME" ${CMAKE_ARGS:-}
say "building with $jobs jobs"
cmake --build "$here/$build_dir" -j "$jobs"
say "done in $(( $(date +%s) - t_start )) s: $here/$build_dir/emo   (tests: ctest --test-dir $build_dir --output-on-failure)"
