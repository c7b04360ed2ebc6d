#!/usr/bin/env bash
# Submits an `emo batch` manifest as a Slurm job array of N shards (docs/batch.md).
#
#   scripts/slurm/submit.sh --manifest FILE --model DIR --shards N [--max-running M] [--emo PATH]
#                           [--report-dir DIR] [--device D] [--dtype T] [-- sbatch flags...]
#
# Extra `emo batch` flags go in EMO_BATCH_ARGS (e.g. EMO_BATCH_ARGS="--steps 30"). Prints sbatch's output
# (the job id). Resubmitting the same command later renders only what is still missing (--resume).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="" model="" shards="" max_running="" emo="${EMO_BIN:-}" report_dir="" device="" dtype=""
sbatch_args=()
die() { echo "submit.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --manifest) manifest="${2:?}"; shift 2 ;;
    --model) model="${2:?}"; shift 2 ;;
    --shards) shards="${2:?}"; shift 2 ;;
    --max-running) max_running="${2:?}"; shift 2 ;;
    --emo) emo="${2:?}"; shift 2 ;;
    --report-dir) report_dir="${2:?}"; shift 2 ;;
    --device) device="${2:?}"; shift 2 ;;
    --dtype) dtype="${2:?}"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    --) shift; sbatch_args=("$@"); break ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[ -n "$manifest" ] && [ -n "$model" ] && [ -n "$shards" ] || die "--manifest, --model and --shards are required"
[[ "$shards" =~ ^[1-9][0-9]*$ ]] || die "--shards must be a positive integer"
[ -f "$manifest" ] || { echo "submit.sh: $manifest: no such file" >&2; exit 3; }
abs() { (cd "$(dirname "$1")" && printf '%s/%s' "$(pwd)" "$(basename "$1")"); }
manifest="$(abs "$manifest")"
model="$(cd "$model" && pwd)"
if [ -z "$emo" ]; then emo="$(command -v emo || true)"; fi
[ -n "$emo" ] || die "emo binary not found: pass --emo PATH (a path every node can reach)"
emo="$(abs "$emo")"

# Validate the manifest once here (exit 3 with every bad line) instead of in N array tasks; jobs whose
# inputs are missing (dry run exit 6) are only a warning: they will be reported failed, the rest renders.
rc=0
"$emo" -q batch --manifest "$manifest" --model "$model" --dry-run >/dev/null || rc=$?
if [ "$rc" = 6 ]; then
  echo "submit.sh: warning: some jobs have missing inputs (see: $emo batch --manifest $manifest --dry-run)" >&2
elif [ "$rc" != 0 ]; then
  exit "$rc"
fi

array="0-$((shards - 1))"
[ -n "$max_running" ] && array+="%$max_running"
exports="ALL,EMO_MANIFEST=$manifest,EMO_MODEL_DIR=$model,EMO_BIN=$emo,EMO_SHARDS=$shards"
[ -n "$report_dir" ] && exports+=",EMO_REPORT_DIR=$report_dir"
[ -n "$device" ] && exports+=",EMO_DEVICE=$device"
[ -n "$dtype" ] && exports+=",EMO_DTYPE=$dtype"
exec sbatch --array="$array" --export="$exports" "${sbatch_args[@]}" "$here/emo_batch_array.sbatch"
