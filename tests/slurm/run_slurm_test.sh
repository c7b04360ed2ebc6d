#!/usr/bin/env bash
# ctest label `slurm`: submits scripts/slurm/emo_batch_array.sbatch to a one-node Slurm cluster on localhost and
# checks that the array's tasks split the manifest exactly (docs/batch.md).
#
#   tests/slurm/run_slurm_test.sh [--install] EMO_BIN
#
# Needs root (it starts munged, slurmctld and slurmd with a private config under a temporary folder and stops
# what it started). Exits 77 (ctest: skipped) when Slurm or munge is not installed and --install is not given,
# or when not root. --install apt-installs Debian's slurm-wlm and munge first.
#
# Modes:
#  - default (plumbing): EMO_BIN is wrapped so that each array task records its arguments and runs
#    `emo batch --dry-run` for its shard; checks: every task ran once, shards 0..N-1 each once, reports
#    partition the manifest. Needs no model.
#  - real rendering: set EMO_SLURM_MODEL (model folder, e.g. the tiny test model), EMO_SLURM_IMAGE and
#    EMO_SLURM_AUDIO; the array renders 5 jobs for real, then `emo batch --resume --dry-run` must find every
#    output complete (all "skipped").
set -euo pipefail
install=0
[ "${1:-}" = "--install" ] && { install=1; shift; }
emo="$(cd "$(dirname "${1:?usage: run_slurm_test.sh [--install] EMO_BIN}")" && pwd)/$(basename "$1")"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAILED: $*" >&2; keep=1; echo "(logs kept in ${work:-?})" >&2; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root to start slurmctld/slurmd/munged"
have() { command -v "$1" >/dev/null 2>&1; }
if ! have slurmctld || ! have slurmd || ! have sbatch || ! have munged; then
  [ "$install" = 1 ] || skip "Slurm is not installed (run with --install, or: apt-get install slurm-wlm munge)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge
fi
[ -x "$emo" ] || fail "$emo is not executable"

work="$(mktemp -d /tmp/emo_slurm.XXXXXX)"
chmod 755 "$work"  # munged runs as user munge
started=()   # pid files of the daemons this script started
keep=0
cleanup() {
  for pidfile in "${started[@]}"; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  sleep 1
  [ "$keep" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

# munge: reuse a running munged, else start one with a key of our own.
munge_args=()
if ! munge -n >/dev/null 2>&1; then
  mkdir -p "$work/munge"
  chown munge: "$work/munge" 2>/dev/null || true
  chmod 700 "$work/munge"
  dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
  chown munge: "$work/munge/munge.key" 2>/dev/null || true
  chmod 400 "$work/munge/munge.key"
  sock="$work/munge/munge.socket"
  runuser -u munge -- munged --key-file="$work/munge/munge.key" --socket="$sock" \
      --pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" --seed-file="$work/munge/seed" \
    || munged --force --key-file="$work/munge/munge.key" --socket="$sock" --pid-file="$work/munge/munged.pid" \
         --log-file="$work/munge/munged.log" --seed-file="$work/munge/seed"
  started+=("$work/munge/munged.pid")
  munge_args=(AuthInfo=socket="$sock")
  for _ in $(seq 50); do munge -n -S "$sock" >/dev/null 2>&1 && break; sleep 0.1; done
fi

host="$(hostname -s)"
node="$(slurmd -C | head -1 | sed "s/^NodeName=[^ ]*/NodeName=$host/")"
mkdir -p "$work/spool/slurmd" "$work/spool/slurmctld"
cat > "$work/slurm.conf" <<CONF
ClusterName=emotest
SlurmctldHost=$host
SlurmUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
CredType=cred/munge
$( [ ${#munge_args[@]} -gt 0 ] && echo "AuthInfo=socket=$sock" )
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmdSpoolDir=$work/spool/slurmd
StateSaveLocation=$work/spool/slurmctld
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
$node State=UNKNOWN
PartitionName=emotest Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$work/slurm.conf"
slurmctld -i
started+=("$work/slurmctld.pid")
slurmd
started+=("$work/slurmd.pid")
for _ in $(seq 60); do sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix)' && break; sleep 1; done
sinfo -h -o %t | grep -qE '^(idle|mix)' || { tail -20 "$work/slurmctld.log" "$work/slurmd.log" >&2; fail "the node did not come up"; }

# The manifest.
data="$work/data"
mkdir -p "$data"
real=0
[ -n "${EMO_SLURM_MODEL:-}" ] && real=1
if [ "$real" = 1 ]; then
  jobs=5
  for i in $(seq 0 $((jobs - 1))); do
    printf '{"image": "%s", "audio": "%s", "output": "out/clip%d.mp4", "seed": %d}\n' \
      "$EMO_SLURM_IMAGE" "$EMO_SLURM_AUDIO" "$i" "$i" >> "$data/jobs.jsonl"
  done
  model="$EMO_SLURM_MODEL"
  bin="$emo"
else
  jobs=7
  touch "$data/face.png" "$data/voice.wav"
  for i in $(seq 0 $((jobs - 1))); do
    printf '{"image": "face.png", "audio": "voice.wav", "output": "out/clip%d.mp4", "seed": %d}\n' "$i" "$i" >> "$data/jobs.jsonl"
  done
  model="$work/model"  # never opened: the wrapper runs a dry run
  mkdir -p "$model" "$work/calls"
  bin="$work/emo-wrapper"
  cat > "$bin" <<WRAP
#!/usr/bin/env bash
# Records the arguments of this array task, then plans its shard with the real emo (dry run, no model).
echo "\$*" > "$work/calls/task-\$SLURM_ARRAY_TASK_ID.args"
args=(); manifest=""; shard=""; report=""
while [ \$# -gt 0 ]; do
  case "\$1" in
    --manifest) manifest="\$2"; shift 2 ;;
    --shard) shard="\$2"; shift 2 ;;
    --report) report="\$2"; shift 2 ;;
    *) shift ;;
  esac
done
exec "$emo" batch --manifest "\$manifest" --shard "\$shard" --report "\$report" --dry-run
WRAP
  chmod +x "$bin"
fi

shards=3
# --array=1-3 (not 0-2) also checks that shard numbers start at the array's first index.
sbatch --wait --array=1-$shards --cpus-per-task=1 --mem=0 --time=20 --output="$work/task-%a.out" \
  --chdir="$work" \
  --export=ALL,EMO_MANIFEST="$data/jobs.jsonl",EMO_MODEL_DIR="$model",EMO_BIN="$bin",EMO_REPORT_DIR="$work/reports",EMO_DEVICE=cpu \
  "$here/scripts/slurm/emo_batch_array.sbatch" || { cat "$work"/task-*.out >&2; fail "sbatch --wait: some array task failed"; }

# Every shard 0..N-1 exactly once, reports partition the manifest.
for k in $(seq 0 $((shards - 1))); do
  [ -f "$work/reports/report-$k-of-$shards.jsonl" ] || { cat "$work"/task-*.out >&2; fail "no report for shard $k/$shards"; }
done
indices="$(cat "$work"/reports/report-*-of-$shards.jsonl | sed -E 's/.*"index":([0-9]+).*/\1/' | sort -n | tr '\n' ' ')"
expected="$(seq 0 $((jobs - 1)) | tr '\n' ' ')"
[ "$indices" = "$expected" ] || fail "shards do not partition the manifest: got [$indices], expected [$expected]"
if [ "$real" = 0 ]; then
  [ "$(ls "$work/calls" | wc -l)" = "$shards" ] || fail "expected $shards array tasks, got $(ls "$work/calls")"
  for k in $(seq 0 $((shards - 1))); do
    grep -q -- "--shard $k/$shards" "$work"/calls/*.args || fail "no task ran shard $k/$shards"
  done
  grep -q -- "--resume" "$work/calls/task-1.args" || fail "array tasks must run with --resume"
else
  "$emo" batch --manifest "$data/jobs.jsonl" --model "$model" --resume --dry-run --report "$work/final.jsonl"
  [ "$(grep -c '"status":"skipped"' "$work/final.jsonl")" = "$jobs" ] || { cat "$work/final.jsonl" >&2; fail "not every output is complete"; }
fi
echo "PASSED: $shards array tasks split $jobs jobs exactly ($([ "$real" = 1 ] && echo rendered || echo plumbing only))"
