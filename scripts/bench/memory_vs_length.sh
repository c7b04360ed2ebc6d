#!/usr/bin/env bash
# Peak host memory of `emo generate` against the audio's length (docs/performance.md, "Memory versus audio length").
# Makes a synthetic portrait and voices of the given lengths, renders each with the tiny random model, and prints
# seconds | frames | peak RSS (MiB) | wall (s) and the growth from the first length. Needs only python3 (its standard
# library makes the inputs and reads the peak RSS of each render, as /usr/bin/time -v would).
#
#   scripts/bench/memory_vs_length.sh [--emo build/emo] [--lengths "10 60"] [--work DIR] [-- extra generate options]
set -euo pipefail

EMO=build/emo
LENGTHS="10 60"
WORK=""
EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --emo) EMO="$2"; shift 2 ;;
    --lengths) LENGTHS="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n 2,6p "$0"; exit 0 ;;
    *) echo "memory_vs_length.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -x "$EMO" ]] || { echo "memory_vs_length.sh: $EMO: not an executable (build first)" >&2; exit 2; }
EMO="$(cd "$(dirname "$EMO")" && pwd)/$(basename "$EMO")"
if [[ -z "$WORK" ]]; then WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT; fi
mkdir -p "$WORK"

[[ -f "$WORK/tiny/emo.json" ]] || "$EMO" -q make-test-model "$WORK/tiny" >/dev/null
python3 - "$WORK" $LENGTHS <<'EOF'
import math, struct, sys, wave, zlib
work, lengths = sys.argv[1], [int(x) for x in sys.argv[2:]]
# A 256x256 light oval "face" with two eyes and a mouth on a flat background, as an 8-bit RGB PNG.
rows = []
for y in range(256):
    row = bytearray([0])
    for x in range(256):
        c = (200, 180, 160)
        if ((x - 128) / 64) ** 2 + ((y - 125) / 85) ** 2 <= 1: c = (230, 190, 160)
        if ((x - 105) / 10) ** 2 + ((y - 107) / 8) ** 2 <= 1 or ((x - 151) / 10) ** 2 + ((y - 107) / 8) ** 2 <= 1:
            c = (40, 40, 40)
        if ((x - 128) / 18) ** 2 + ((y - 167) / 8) ** 2 <= 1: c = (150, 60, 60)
        row += bytes(c)
    rows.append(bytes(row))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 256, 256, 8, 2, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")
open(f"{work}/face.png", "wb").write(png)
# A gliding, pulsing tone at 16 kHz: voice-like enough for the pipeline, the same every run.
sr = 16000
for sec in lengths:
    frames = bytearray()
    for i in range(sec * sr):
        t = i / sr
        v = 0.3 * math.sin(2 * math.pi * (180 + 40 * math.sin(2 * math.pi * 0.7 * t)) * t) \
            * (0.5 + 0.5 * math.sin(2 * math.pi * 3 * t))
        frames += struct.pack("<h", int(v * 32767))
    with wave.open(f"{work}/voice{sec}.wav", "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(sr); w.writeframes(bytes(frames))
EOF

printf '| audio | frames | peak RSS (MiB) | wall (s) | vs %s s |\n| ---: | ---: | ---: | ---: | ---: |\n' "${LENGTHS%% *}"
first=""
for sec in $LENGTHS; do
  # Peak RSS (KiB) and wall seconds of the render, from the waiting parent's rusage of its one child.
  read -r kib wall < <(python3 -c '
import resource, subprocess, sys, time
t = time.monotonic()
rc = subprocess.run(sys.argv[1:], stdout=sys.stderr).returncode
if rc: sys.exit(rc)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "%.1f" % (time.monotonic() - t))' \
    "$EMO" -t 1 -q generate -m "$WORK/tiny" -i "$WORK/face.png" -a "$WORK/voice$sec.wav" -o "$WORK/out$sec.mp4" \
    --width 64 --steps 1 "${EXTRA[@]}") || true
  [[ -n "$kib" ]] || { echo "memory_vs_length.sh: emo generate failed for $sec s of audio" >&2; exit 1; }
  frames=$("$EMO" probe "$WORK/out$sec.mp4" | awk '/video/ {for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^frames/) print $i}')
  mib=$(awk -v k="$kib" 'BEGIN { printf "%.1f", k / 1024 }')
  [[ -n "$first" ]] || first="$mib"
  growth=$(awk -v a="$mib" -v b="$first" 'BEGIN { printf "%+.1f %%", (a / b - 1) * 100 }')
  printf '| %s s | %s | %s | %s | %s |\n' "$sec" "$frames" "$mib" "$wall" "$growth"
done
