#!/usr/bin/env bash
# GPU checks for a machine with an NVIDIA GPU and PyTorch 2.11 (pip) but no apt and no network.
# It runs binaries built on a Debian machine (scripts/gpu_bundle.sh packs them with the shared libraries libtorch
# does not provide) against the machine's own libtorch, and prints one summary line per check:
#   version      emo --version sees the GPU (name, memory, compute capability)
#   golden       every golden test, the pipeline ones on DEVICE (fp32, TF32 off), fp16/bf16 with their tolerances
#   generate-*   emo generate on the tiny model, >= 3 chained clips, fp16 and bf16 on DEVICE, MP4 probed
#   bench        emo bench --tiny on DEVICE (fp16)
#   sampler-*    emo generate --sampler dpmpp-2m and --sampler unipc on DEVICE (fp16)
#   bench-vae-*  emo bench --tiny with --vae-layout nchw and nhwc (whether NHWC should become CUDA's default)
#
#   scripts/gpu_check.sh GOLDEN_DIR [--bundle DIR] [--device cuda:0] [--work DIR]
#
# GOLDEN_DIR: the golden fixtures (../shared/golden here; pass wherever they are on the GPU machine).
# --bundle: a folder made by scripts/gpu_bundle.sh (default: build/gpu-bundle, else build/).
# --device: default cuda:0; `--device cpu` runs the same checks on the CPU (a dry run of this script).
# Budget: about 2 minutes on an H100/H200 (no build; the slowest part is loading libtorch_cuda per process).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
golden="${1:-}"
[ -n "$golden" ] && [ "${golden:0:2}" != "--" ] || { sed -n '2,16p' "$0"; exit 2; }
shift
bundle=""
device="cuda:0"
work="${TMPDIR:-/tmp}/emo_gpu_check.$$"
while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) bundle="$2"; shift 2 ;;
    --device) device="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    *) echo "gpu_check.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
golden="$(cd "$golden" 2>/dev/null && pwd)" || { echo "gpu_check.sh: no fixture folder '$1'" >&2; exit 2; }
if [ -z "$bundle" ]; then
  if [ -d "$here/build/gpu-bundle" ]; then bundle="$here/build/gpu-bundle"; else bundle="$here/build"; fi
fi
if [ -x "$bundle/bin/emo" ]; then
  emo="$bundle/bin/emo"; golden_tests="$bundle/bin/emo_golden_tests"
  export LD_LIBRARY_PATH="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
  emo="$bundle/emo"; golden_tests="$bundle/tests/emo_golden_tests"
fi
[ -x "$emo" ] || { echo "gpu_check.sh: no emo binary under $bundle (run scripts/gpu_bundle.sh on the build machine)" >&2; exit 2; }
# The machine's libtorch (pip's torch) serves the binaries: same release as the build (2.11, CUDA 13).
py="$(command -v python3 || command -v python)"
torch_lib="$("$py" -W ignore -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)"
[ -n "$torch_lib" ] && export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
mkdir -p "$work"
summary=()
fails=0
t0=$(date +%s)
record() {  # record PASS|FAIL name detail
  summary+=("gpu_check: $1 $2: $3")
  [ "$1" = PASS ] || fails=$((fails + 1))
  echo "---- $1 $2: $3"
}

# 1. versions and devices
if out="$("$emo" --version 2>&1)"; then
  echo "$out"
  dev_line="$(grep -m1 '^cuda:' <<<"$out" || true)"
  if [ "$device" = cpu ] || [ -n "$dev_line" ]; then
    record PASS version "$(head -1 <<<"$out"), $(sed -n 2p <<<"$out"), $(sed -n 3p <<<"$out"), ${dev_line:-cpu dry run}"
  else
    record FAIL version "emo sees no CUDA device: $(tr '\n' ';' <<<"$out")"
  fi
else
  record FAIL version "emo --version failed: $out"
fi

# 2. golden tests (pipeline parity on the device; the other golden tests run their modules on the CPU)
if [ -x "$golden_tests" ]; then
  log="$work/golden.log"
  EMO_GOLDEN_DIR="$golden" EMO_GOLDEN_DEVICE="$device" OMP_NUM_THREADS=8 \
    "$golden_tests" --gtest_brief=1 >"$log" 2>&1
  rc=$?
  passed="$(grep -c '^\[       OK \]' "$log" || true)"
  total_line="$(grep -m1 -E '^\[==========\] [0-9]+ tests? from' "$log" | tail -1)"
  failed="$(grep -E '^\[  FAILED  \] [A-Za-z]' "$log" | grep -v 'listed below' | sort -u | tr '\n' ' ')"
  grep '^\[ golden \]' "$log" || true
  low="$(grep '^\[ golden \]' "$log" | sed 's/^\[ golden \] //' | tr '\n' ';')"
  if [ $rc = 0 ]; then
    record PASS golden "$(grep -m1 -E '^\[  PASSED  \]' "$log") on $device; ${low}"
  else
    record FAIL golden "rc=$rc on $device; failed: ${failed:-see $log}; ${low}"
    tail -40 "$log"
  fi
else
  record FAIL golden "no emo_golden_tests under $bundle"
fi

# 3. emo generate: tiny model, 2.3 s of audio = 58 frames = 4 chained clips of 16 (last trimmed)
model="$work/tiny"
"$emo" -q make-test-model "$model" >"$work/make.log" 2>&1 || record FAIL generate "make-test-model: $(tail -1 "$work/make.log")"
"$py" - "$work" <<'PY'
import math, struct, sys, wave, zlib
d = sys.argv[1]
with wave.open(d + "/voice.wav", "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
    w.writeframes(b"".join(struct.pack("<h", int(9000 * math.sin(2 * math.pi * 220 * i / 16000))) for i in range(int(16000 * 2.3))))
W = H = 120
rows = b""
for y in range(H):
    rows += b"\x00" + b"".join(bytes((220, 160, 120) if ((x - 60) / 30) ** 2 + ((y - 60) / 40) ** 2 <= 1 else (200 - x, 60, 40 + y)) for x in range(W))
chunk = lambda t, b: struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xffffffff)
open(d + "/face.png", "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
for dt in fp16 bf16; do
  out="$work/out_$dt.mp4"
  t1=$(date +%s.%N)
  if "$emo" -q generate -m "$model" -i "$work/face.png" -a "$work/voice.wav" -o "$out" --device "$device" --dtype "$dt" \
      >"$work/gen_$dt.log" 2>&1; then
    secs=$(awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
    pj="$("$emo" probe --json "$out" 2>&1)"
    check="$("$py" -c '
import json, sys
p = json.loads(sys.argv[1]); v = [s for s in p["streams"] if s["type"] == "video"]; a = [s for s in p["streams"] if s["type"] == "audio"]
ok = len(v) == 1 and v[0]["codec"] == "h264" and v[0]["frames"] == 58 and len(a) == 1 and a[0]["codec"] == "aac" and abs(p["duration"] - 2.32) < 0.05
print(("OK" if ok else "BAD") + " %s %d frames, %s, %.2f s" % (v[0]["codec"] if v else "no video", v[0]["frames"] if v else 0, a[0]["codec"] if a else "no audio", p["duration"]))
' "$pj" 2>&1)"
    if [ "${check%% *}" = OK ]; then record PASS "generate-$dt" "4 clips on $device in ${secs} s: ${check#OK }"
    else record FAIL "generate-$dt" "probe: $check"; fi
  else
    record FAIL "generate-$dt" "$(tail -2 "$work/gen_$dt.log" | tr '\n' ' ')"
  fi
done

# 4. emo bench on the device
if "$emo" bench --tiny --device "$device" --dtype fp16 -r 3 >"$work/bench.log" 2>&1; then
  cat "$work/bench.log"
  record PASS bench "$(grep -E 'unet3d_step|vae_decode' "$work/bench.log" | tr -s ' ' | tr '\n' ';')"
else
  record FAIL bench "$(tail -2 "$work/bench.log" | tr '\n' ' ')"
fi

# 5. The multistep samplers on the device, and both VAE layouts timed (--vae-layout auto keeps NCHW on CUDA until
#    measured)
for sampler in dpmpp-2m unipc; do
  if "$emo" -q generate -m "$model" -i "$work/face.png" -a "$work/voice.wav" -o "$work/$sampler.mp4" \
      --device "$device" --dtype fp16 --sampler "$sampler" --steps 4 >"$work/$sampler.log" 2>&1; then
    record PASS "sampler-$sampler" "fp16 on $device: $("$emo" probe "$work/$sampler.mp4" 2>&1 | grep -c -E 'h264|aac') streams"
  else
    record FAIL "sampler-$sampler" "$(tail -2 "$work/$sampler.log" | tr '\n' ' ')"
  fi
done
for layout in nchw nhwc; do
  if "$emo" bench --tiny --device "$device" --dtype fp16 -r 3 --vae-layout "$layout" >"$work/bench_$layout.log" 2>&1; then
    record PASS "bench-vae-$layout" "$(grep -E 'vae_encode|vae_decode' "$work/bench_$layout.log" | tr -s ' ' | tr '\n' ';')"
  else
    record FAIL "bench-vae-$layout" "$(tail -2 "$work/bench_$layout.log" | tr '\n' ' ')"
  fi
done

echo
echo "==== scripts/gpu_check.sh on $(hostname) at $(date -u +%Y-%m-%dT%H:%MZ), device $device, $(( $(date +%s) - t0 )) s"
printf '%s\n' "${summary[@]}"
[ $fails = 0 ]
