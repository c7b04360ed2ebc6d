#!/usr/bin/env bash
# Packs build/emo and build/tests/emo_golden_tests with the shared libraries they need that a GPU machine with only
# pip's PyTorch lacks (OpenCV, FFmpeg, spdlog, fmt, ... from Debian) into build/gpu-bundle/{bin,lib}, stripped.
# libtorch, CUDA's libraries and glibc are left out: the GPU machine's own torch 2.11 / CUDA 13 provide them.
#   scripts/gpu_bundle.sh [BUILD_DIR]      then on the GPU machine: scripts/gpu_check.sh GOLDEN_DIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$here/build}"
out="$build/gpu-bundle"
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
bins=("$build/emo" "$build/tests/emo_golden_tests")
for b in "${bins[@]}"; do
  [ -x "$b" ] || { echo "gpu_bundle.sh: $b not built (scripts/setup.sh first)" >&2; exit 1; }
  cp "$b" "$out/bin/"
  strip --strip-unneeded "$out/bin/$(basename "$b")"
done
# Everything ldd resolves except libtorch's folder, the nvidia-* wheels, CUDA, and the C runtime itself.
skip='/torch/lib/|/nvidia/|/cuda|/libc\.so|/libm\.so|/libdl\.so|/librt\.so|/libpthread\.so|/ld-linux|linux-vdso'
for b in "${bins[@]}"; do ldd "$b"; done | awk '/=> \// {print $3}' | sort -u | grep -Ev "$skip" | while read -r lib; do
  cp -L "$lib" "$out/lib/"
done
strip --strip-unneeded "$out"/lib/*.so* 2>/dev/null || true
echo "gpu_bundle.sh: $(ls "$out/lib" | wc -l) libraries, $(du -sh "$out" | cut -f1) in $out"
