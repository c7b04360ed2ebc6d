#!/usr/bin/env bash
# Renders every portrait x every audio clip with `emo batch` (docs/batch.md).
#
#   scripts/render_bulk.sh --portraits DIR --audios DIR --out DIR [options] [-- extra emo batch flags]
#
# Builds OUT/manifest.jsonl (one job per image x audio, output OUT/<image>__<audio>.mp4, sorted so that every
# process builds the same manifest), then runs `emo batch --manifest OUT/manifest.jsonl --resume`.
# Options:
#   --model DIR        model folder (default: $EMO_MODEL_DIR)
#   --shard K/N        render only shard K of N (run N of these, on one machine or many, to split the work)
#   --emo PATH         the emo binary (default: $EMO_BIN, else build/emo beside this script, else `emo` on PATH)
#   --report FILE      JSON Lines report (default: OUT/report.jsonl, or OUT/report-K-of-N.jsonl with --shard)
#   --no-resume        render every job again even if its output is complete
#   --manifest-only    write the manifest and stop
# Everything after `--` goes to `emo batch` unchanged (e.g. -- --steps 30 --device cuda --dry-run).
# Exit code: emo batch's (0 all ok, 3 bad manifest, 4 model error, 6 some jobs failed, 130 interrupted).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
portraits="" audios="" out="" model="" shard="" emo="${EMO_BIN:-}" report="" resume=1 manifest_only=0
extra=()
die() { echo "render_bulk.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --portraits) portraits="${2:?}"; shift 2 ;;
    --audios) audios="${2:?}"; shift 2 ;;
    --out) out="${2:?}"; shift 2 ;;
    --model) model="${2:?}"; shift 2 ;;
    --shard) shard="${2:?}"; shift 2 ;;
    --emo) emo="${2:?}"; shift 2 ;;
    --report) report="${2:?}"; shift 2 ;;
    --no-resume) resume=0; shift ;;
    --manifest-only) manifest_only=1; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[ -n "$portraits" ] && [ -n "$audios" ] && [ -n "$out" ] || die "--portraits, --audios and --out are required (see --help)"
[ -d "$portraits" ] || { echo "render_bulk.sh: $portraits: no such folder" >&2; exit 3; }
[ -d "$audios" ] || { echo "render_bulk.sh: $audios: no such folder" >&2; exit 3; }
if [ -z "$emo" ]; then
  if [ -x "$here/build/emo" ]; then emo="$here/build/emo"; else emo="$(command -v emo || true)"; fi
fi
[ "$manifest_only" = 1 ] || [ -x "$emo" ] || die "emo binary not found (build it, or pass --emo PATH / set EMO_BIN)"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
portraits="$(cd "$portraits" && pwd)"
audios="$(cd "$audios" && pwd)"

list() {  # regular files of a folder with the given extensions (case-insensitive), byte-sorted
  local dir="$1"; shift
  local pat=()
  for e in "$@"; do pat+=(-o -iname "*.$e"); done
  find "$dir" -maxdepth 1 -type f \( "${pat[@]:1}" \) -print | LC_ALL=C sort
}
json_str() {  # JSON string literal for a path
  local s="$1"
  s="${s//\\/\\\\}"; s="${s//\"/\\\"}"; s="${s//$'\t'/\\t}"
  printf '"%s"' "$s"
}

mapfile -t images < <(list "$portraits" png jpg jpeg webp bmp)
mapfile -t clips < <(list "$audios" wav mp3 flac m4a ogg aac opus)
[ ${#images[@]} -gt 0 ] || { echo "render_bulk.sh: no images (png/jpg/jpeg/webp/bmp) in $portraits" >&2; exit 3; }
[ ${#clips[@]} -gt 0 ] || { echo "render_bulk.sh: no audio (wav/mp3/flac/m4a/ogg/aac/opus) in $audios" >&2; exit 3; }

manifest="$out/manifest.jsonl"
tmp="$(mktemp "$out/.manifest.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
for img in "${images[@]}"; do
  istem="$(basename "$img")"; istem="${istem%.*}"
  for aud in "${clips[@]}"; do
    astem="$(basename "$aud")"; astem="${astem%.*}"
    printf '{"image": %s, "audio": %s, "output": %s}\n' \
      "$(json_str "$img")" "$(json_str "$aud")" "$(json_str "$out/${istem}__${astem}.mp4")" >>"$tmp"
  done
done
mv -f "$tmp" "$manifest"  # atomic: shards started together all read a whole manifest
trap - EXIT
echo "render_bulk.sh: $manifest: ${#images[@]} portraits x ${#clips[@]} audios = $(( ${#images[@]} * ${#clips[@]} )) jobs" >&2
[ "$manifest_only" = 0 ] || exit 0

args=(batch --manifest "$manifest")
[ -n "$model" ] && args+=(--model "$model")
if [ -n "$shard" ]; then
  args+=(--shard "$shard")
  [ -n "$report" ] || report="$out/report-${shard%/*}-of-${shard#*/}.jsonl"
fi
[ -n "$report" ] || report="$out/report.jsonl"
args+=(--report "$report")
[ "$resume" = 1 ] && args+=(--resume)
exec "$emo" "${args[@]}" "${extra[@]}"
