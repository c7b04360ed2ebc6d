#!/usr/bin/env bash
# Cuts the HDTF test clips from videos you downloaded, with the public HDTF annotation files
# (github.com/MRzzm/HDTF, HDTF_dataset/): time ranges, fixed crop windows, 512 x 512, 25 fps, 16 kHz mono.
# Nothing is downloaded. Every clip goes through `emo cut` (libav; no ffmpeg CLI needed). See docs/hdtf.md.
#
#   scripts/hdtf/prepare.sh --annotations HDTF/HDTF_dataset --videos raw/ --out hdtf_clips/ \
#       [--subsets RD,WDA,WRA] [--names names.txt] [--limit N] [--size 512] [--emo build/emo] [--dry-run]
#
# Output per clip <Video>_<k> (HDTF's naming: Radio11.mp4 00:30-01:00 01:30-02:30 -> Radio11_0, Radio11_1):
#   OUT/<Video>_<k>.mp4   the reference clip (H.264 + AAC)
#   OUT/<Video>_<k>.png   its first frame: the portrait given to `emo generate`
#   OUT/<Video>_<k>.wav   its audio (16 kHz mono): the driving audio
# Existing outputs are kept (rerun to resume). Videos not found under --videos are listed and skipped.
set -euo pipefail

ann="" videos="" out="" subsets="RD,WDA,WRA" names="" limit=0 size=512 emo="${EMO:-emo}" dry=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --annotations) ann="$2"; shift 2 ;;
    --videos) videos="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --subsets) subsets="$2"; shift 2 ;;
    --names) names="$2"; shift 2 ;;
    --limit) limit="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --emo) emo="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "prepare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$ann" && -n "$videos" && -n "$out" ]] || { echo "prepare.sh: --annotations, --videos and --out are required" >&2; exit 2; }
[[ -d "$ann" ]] || { echo "prepare.sh: $ann: no such folder" >&2; exit 3; }
mkdir -p "$out"

# Annotation lines without BOM / CR, blank lines dropped.
clean() { [[ -e "$1" ]] && sed -e '1s/^\xEF\xBB\xBF//' -e 's/\r$//' "$1" | awk 'NF > 0' || true; }
# "mm:ss", "hh:mm:ss" or seconds -> seconds (awk arithmetic, fractions kept).
to_s() { awk -v t="$1" 'BEGIN { n = split(t, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.3f", s }'; }

declare -A want=()
if [[ -n "$names" ]]; then
  while read -r n _; do [[ -n "$n" ]] && want["${n%.mp4}"]=1; done < <(clean "$names")
fi

done_n=0 missing=() failed=()
IFS=',' read -r -a subset_list <<< "$subsets"
for s in "${subset_list[@]}"; do
  times="$ann/${s}_annotion_time.txt"
  [[ -f "$times" ]] || { echo "prepare.sh: $times not found, subset $s skipped" >&2; continue; }
  declare -A res=() crop=()
  while read -r n r _; do res["${n%.mp4}"]="$r"; done < <(clean "$ann/${s}_resolution.txt")
  while read -r n x w y h _; do crop["${n%.mp4}"]="$x,$w,$y,$h"; done < <(clean "$ann/${s}_crop_wh.txt")
  while read -r name spans; do
    video="${name%.mp4}"
    k=-1
    for span in $spans; do
      k=$((k + 1))
      clip="${video}_${k}"
      [[ -n "$names" && -z "${want[$clip]:-}" && -z "${want[$video]:-}" ]] && continue
      [[ "$limit" -gt 0 && "$done_n" -ge "$limit" ]] && break 2
      src=""
      for ext in mp4 mkv webm mov; do [[ -f "$videos/$video.$ext" ]] && { src="$videos/$video.$ext"; break; }; done
      if [[ -z "$src" ]]; then missing+=("$video"); continue; fi
      a="$(to_s "${span%-*}")" b="$(to_s "${span#*-}")"
      args=(cut -i "$src" -o "$out/$clip.mp4" --start "$a" --end "$b" --size "$size" --fps 25
            --first-frame "$out/$clip.png" --audio-out "$out/$clip.wav")
      if [[ -n "${crop[$clip]:-}" ]]; then
        args+=(--crop "${crop[$clip]}")
        [[ -n "${res[$video]:-}" ]] && args+=(--ref-height "${res[$video]}")
      else
        echo "prepare.sh: $clip has no crop window in ${s}_crop_wh.txt: whole frame resized" >&2
      fi
      done_n=$((done_n + 1))
      if [[ "$dry" == 1 ]]; then
        printf '%q ' "$emo" "${args[@]}"; echo
      elif [[ -f "$out/$clip.mp4" && -f "$out/$clip.png" && -f "$out/$clip.wav" ]]; then
        echo "$clip: exists"
      elif ! "$emo" "${args[@]}"; then
        failed+=("$clip")
      fi
    done
  done < <(clean "$times")
  unset res crop
done

if [[ ${#missing[@]} -gt 0 ]]; then
  printf 'prepare.sh: source video not found under %s for: %s\n' "$videos" "$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')" >&2
fi
echo "prepare.sh: $done_n clip(s) -> $out"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "prepare.sh: failed: ${failed[*]}" >&2
  exit 1
fi
