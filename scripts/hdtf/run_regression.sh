#!/usr/bin/env bash
# HDTF regression run: generate every prepared clip from its first frame and audio (`emo generate`), evaluate
# the generations against the reference clips (`emo eval --json`), and compare with a baseline JSON holding
# per-metric thresholds. Exit code: 0 ok, 7 a metric regressed, other codes as `emo` (docs/exit-codes.md).
# See docs/hdtf.md.
#
#   scripts/hdtf/run_regression.sh --clips hdtf_clips/ --out runs/today/ --baseline scripts/hdtf/baseline.example.json \
#       [--model pretrained_models/] [--weights eval_weights/] [--face-models DIR] [--limit N] [--force]
#       [--emo build/emo] [--metrics fid,fvd,sync,ssim,psnr,fsim] [-- extra emo generate flags...]
#
# --clips: the output of prepare.sh (<name>.mp4 + <name>.png + <name>.wav per clip).
# OUT/pred/<name>.mp4 are the generations (kept; reused unless --force), OUT/result.json the metrics,
# OUT/generate.log the generator's output. Without --baseline only the metrics are computed.
set -euo pipefail

clips="" out="" baseline="" model="" weights="" face_models="" limit=0 force=0 emo="${EMO:-emo}" metrics=""
gen_extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --clips) clips="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --baseline) baseline="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --weights) weights="$2"; shift 2 ;;
    --face-models) face_models="$2"; shift 2 ;;
    --limit) limit="$2"; shift 2 ;;
    --force) force=1; shift ;;
    --emo) emo="$2"; shift 2 ;;
    --metrics) metrics="$2"; shift 2 ;;
    --) shift; gen_extra=("$@"); break ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run_regression.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$clips" && -n "$out" ]] || { echo "run_regression.sh: --clips and --out are required" >&2; exit 2; }
[[ -d "$clips" ]] || { echo "run_regression.sh: $clips: no such folder" >&2; exit 3; }
[[ -z "$baseline" || -f "$baseline" ]] || { echo "run_regression.sh: $baseline: no such file" >&2; exit 3; }
mkdir -p "$out/pred"

n=0 failed=()
rm -rf "$out/this_run" && mkdir -p "$out/this_run"  # links to this run's generations: what gets evaluated
for ref in "$clips"/*.mp4; do
  [[ -e "$ref" ]] || break
  name="$(basename "$ref" .mp4)"
  [[ -f "$clips/$name.png" && -f "$clips/$name.wav" ]] || { echo "$name: no $name.png / $name.wav beside it, skipped" >&2; continue; }
  [[ "$limit" -gt 0 && "$n" -ge "$limit" ]] && break
  n=$((n + 1))
  pred="$out/pred/$name.mp4"
  ln -s "$(cd "$out/pred" && pwd)/$name.mp4" "$out/this_run/$name.mp4"
  if [[ -f "$pred" && "$force" == 0 ]]; then
    echo "$name: generated earlier ($pred)"
    continue
  fi
  cmd=("$emo" generate -i "$clips/$name.png" -a "$clips/$name.wav" -o "$pred")
  [[ -n "$model" ]] && cmd+=(-m "$model")
  cmd+=("${gen_extra[@]}")
  echo "$name: generating"
  if ! "${cmd[@]}" >> "$out/generate.log" 2>&1; then
    echo "$name: emo generate failed (see $out/generate.log)" >&2
    failed+=("$name")
  fi
done
[[ "$n" -gt 0 ]] || { echo "run_regression.sh: no prepared clips in $clips" >&2; exit 3; }
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "run_regression.sh: generation failed for: ${failed[*]}" >&2
  exit 1
fi

# Only the clips of this run are evaluated (a --limit run must not pair with stale predictions).
eval_cmd=("$emo" eval --pred "$out/this_run" --ref "$clips" --json "$out/result.json")
[[ -n "$weights" ]] && eval_cmd+=(--weights "$weights")
[[ -n "$face_models" ]] && eval_cmd+=(--face-models "$face_models")
[[ -n "$metrics" ]] && eval_cmd+=(--metrics "$metrics")
[[ -n "$baseline" ]] && eval_cmd+=(--baseline "$baseline")
echo "evaluating $n clip(s)"
set +e
"${eval_cmd[@]}"
rc=$?
set -e
case "$rc" in
  0) echo "run_regression.sh: ok${baseline:+ (baseline $baseline)}; metrics in $out/result.json" ;;
  7) echo "run_regression.sh: REGRESSION against $baseline; metrics in $out/result.json" >&2 ;;
  *) echo "run_regression.sh: emo eval failed (exit $rc)" >&2 ;;
esac
exit "$rc"
