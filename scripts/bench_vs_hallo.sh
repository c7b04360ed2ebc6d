#!/usr/bin/env bash
# emo vs Hallo's Python, side by side: the same device, dtype, thread count, settings and weights.
#
#   scripts/bench_vs_hallo.sh [--device cpu|cuda] [--dtype fp32|fp16|bf16] [--threads N] [--size 512] [--frames 16]
#                             [--steps 40] [--cfg 3.5] [--runs 1] [--warmup 0] [--rounds 1] [--model DIR] [--out DIR]
#                             [--ops N]
#
# emo side: `build/emo bench` (the generate path itself) on DIR, a model folder in Hallo's layout; by default a
#   full-size random-weight one written once by `emo make-test-model --full-size` (about 5 GB, build/bench-model).
#   Each emo run is a 2-clip job and its per-clip rows are the second clip's: Hallo's measured clips follow its
#   warm-up clip, and a first clip (motion frames = copies of the source) costs emo less (reported on its own line).
# Hallo side: ../shared/perf/hallo_bench.py (Hallo's own networks and clip loop; $HALLO_BENCH to point elsewhere)
#   through scripts/bench/hallo_side.py, which loads DIR's weights into Hallo's modules strictly instead of random
#   ones. It needs Hallo's source at commit 8fd7c57 ($HALLO_ROOT; cloned from GitHub when unset and absent) and a
#   separate virtual environment ($HALLO_VENV, default .venv-hallo/, created with the harness's pins and the same
#   torch as emo's .venv).
# --rounds N alternates the two sides N times (emo, Hallo, emo, Hallo, ...) and reports each row's median over the
#   rounds, so that a machine whose speed drifts over minutes does not favour whichever side ran first.
# --ops N: libtorch's operators of one UNet3D CFG step on both sides, by CPU self time, as a second table
#   operator | emo | Hallo (the N largest of each side). Hallo: torch.profiler around its last denoising call of the
#   last round. emo: one more `bench --ops` run after the rounds, untimed, whose last UNet call is a clip's second
#   step at least (a clip's first step runs 3-4 s slower under libtorch's profiler at 256² on the CPU).
# Output: a table stage | emo | Hallo | Hallo/emo (>1: emo is faster), and every JSON report under --out
#   (emo-R.json, hallo-R.json per round R; with --ops also hallo-ops.json).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
device=cpu dtype=fp32 threads=2 size=512 frames=16 steps=40 cfg=3.5 runs=1 warmup=0 rounds=1 ops=0
model="$here/build/bench-model" out="$here/build/bench-vs-hallo"
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --dtype) dtype="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --frames) frames="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --cfg) cfg="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --ops) ops="$2"; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "bench_vs_hallo.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "bench_vs_hallo.sh: $*" >&2; exit 1; }
emo="$here/build/emo"
[ -x "$emo" ] || die "$emo not built (scripts/setup.sh)"
bench_py="${HALLO_BENCH:-$here/../shared/perf/hallo_bench.py}"
[ -f "$bench_py" ] || die "Hallo's harness not found at $bench_py (set HALLO_BENCH)"
mkdir -p "$out"

# Weights: one full-size folder in Hallo's layout, shared by both sides.
if [ ! -f "$model/hallo/net.pth" ]; then
  echo "==> writing a full-size random-weight model folder to $model (once)"
  "$emo" make-test-model --full-size "$model"
fi

# Hallo's source and its virtual environment.
hallo_root="${HALLO_ROOT:-$here/build/hallo-src}"
if [ ! -d "$hallo_root/hallo" ]; then
  echo "==> cloning Hallo at 8fd7c57 into $hallo_root"
  git clone -q https://github.com/fudan-generative-vision/hallo "$hallo_root"
  git -C "$hallo_root" checkout -q 8fd7c572a3d43c2a9c1a5473219ce4fc1b6e3ed2
fi
venv="${HALLO_VENV:-$here/.venv-hallo}"
torch_ver="$("$here/.venv/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))')"
if ! "$venv/bin/python" -c 'import diffusers, torch' 2>/dev/null; then
  echo "==> creating $venv (torch $torch_ver, diffusers 0.27.2)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "torch==$torch_ver" diffusers==0.27.2 huggingface_hub==0.22.2 \
    einops==0.8.0 omegaconf safetensors numpy pillow pyyaml tqdm packaging
fi

[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer (got '$rounds')"
[[ "$ops" =~ ^[0-9]+$ ]] || die "--ops must be a non-negative integer (got '$ops')"
rm -f "$out/hallo-ops.json"
for ((r = 1; r <= rounds; r++)); do
  hallo_ops=()
  [ "$ops" -gt 0 ] && [ "$r" -eq "$rounds" ] && hallo_ops=(--ops "$ops" --ops-out "$out/hallo-ops.json")
  echo "==> round $r/$rounds, emo: $device $dtype, $threads threads, ${size}x$size, $frames frames, $steps steps, cfg $cfg"
  "$emo" -t "$threads" -q bench -m "$model" --device "$device" --dtype "$dtype" --size "$size" --frames "$frames" \
    --steps "$steps" --cfg "$cfg" --clips 2 -w "$warmup" -r "$runs" -f json -o "$out/emo-$r.json"
  echo "==> round $r/$rounds, Hallo: the same"
  HALLO_ROOT="$hallo_root" "$venv/bin/python" "$here/scripts/bench/hallo_side.py" --bench "$bench_py" --weights "$model" \
    "${hallo_ops[@]}" \
    --carry none --device "$device" --dtype "$dtype" --threads "$threads" --size "$size" --frames "$frames" \
    --steps "$steps" --cfg "$cfg" --clips "$runs" --warmup "$warmup" --json-out "$out/hallo-$r.json" > "$out/hallo-$r.log" 2>&1 \
    || { tail -20 "$out/hallo-$r.log" >&2; die "Hallo's side failed (log: $out/hallo-$r.log)"; }
done
if [ "$ops" -gt 0 ]; then
  echo "==> emo's operator profile (one untimed run, $((steps > 2 ? steps : 2)) steps per clip)"
  "$emo" -t "$threads" -q bench -m "$model" --device "$device" --dtype "$dtype" --size "$size" --frames "$frames" \
    --steps "$((steps > 2 ? steps : 2))" --cfg "$cfg" --clips 1 -w 1 -r 1 --no-flops --ops "$ops" -f json -o "$out/emo-ops.json"
fi

python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
E = [json.load(open(f"{out}/emo-{r}.json")) for r in range(1, rounds + 1)]
H = [json.load(open(f"{out}/hallo-{r}.json")) for r in range(1, rounds + 1)]
loop_stages = ["face_locator", "vae_encode", "reference_net", "audio_proj", "unet3d_step", "guidance_step", "vae_decode"]
# emo runs 2 clips per job: Hallo's measured clips follow a warm-up clip (their motion frames are real frames), so
# emo's per-clip rows are its second clips; its first clip (motion frames = copies of the source, computed once)
# is reported on its own line.
def per_clip(e, n, first):
    st = {s["stage"]: s for s in e["stages"]}
    if n not in st: return None
    k = e["clips"]; calls = st[n]["runs"]
    pick = [c for i, c in enumerate(calls) if (i % k == 0) == first]
    return statistics.mean(pick) if pick else None
def emo_rows(e):
    st = {s["stage"]: s for s in e["stages"]}
    run = lambda n: st[n]["per_run_s"] if n in st else None
    call = lambda n: st[n]["mean_s"] if n in st else None
    clip = lambda n: per_clip(e, n, False)
    loop = (clip("vae_encode") or 0) + (clip("reference_net") or 0) + (clip("audio_proj") or 0) + (run("face_locator") or 0) \
        + e["steps"] * ((call("unet3d_step") or 0) + (call("guidance_step") or 0)) + (clip("vae_decode") or 0)
    return [clip("vae_encode"), clip("reference_net"), clip("audio_proj"), run("face_locator"), call("unet3d_step"),
            clip("vae_decode"), loop]
def hallo_rows(h):
    hs = h.get("stages_seconds_per_clip", {})
    fl = (hs.get("face_locator") or 0) + (hs.get("image_proj") or 0) if "face_locator" in hs else None
    return [hs.get("vae_encode"), hs.get("reference_unet"), hs.get("audio_proj"), fl,
            h.get("denoising_unet_seconds_per_call"), hs.get("vae_decode"), h.get("seconds_per_clip")]
def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None
er = [emo_rows(e) for e in E]; hr = [hallo_rows(h) for h in H]
e = E[0]; h = H[0]
names = ["VAE encode (reference + motion frames), per clip", "ReferenceNet, per clip", "audio projection, per clip",
         "face locator + image projection", "UNet3D, one CFG step", f"VAE decode, {e['frames']} frames",
         "clip loop (the rows above, all steps)"]
what = "median over %d alternating rounds of " % rounds if rounds > 1 else ""
print(f"\n{e['device_name']} | {e['device']} {e['dtype']} | {e['threads']} threads | torch {e['torch']} (emo) / "
      f"{h.get('torch')} (Hallo) | {e['size']}x{e['size']}, {e['frames']} frames + 2 motion, {e['steps']} steps, "
      f"cfg {e['cfg_scale']} | emo attention {e['attention']}, host memory {e.get('host_memory', '?')} | "
      f"{what}the mean of {len(e['run_seconds'])} timed clips per side (emo: the second clip of each 2-clip job)\n")
print("| stage | emo (s) | Hallo (s) | Hallo / emo |\n| --- | ---: | ---: | ---: |")
for i, name in enumerate(names):
    a = median([x[i] for x in er]); b = median([x[i] for x in hr])
    ratio = f"{b / a:.2f}x" if a and b else "n/a"
    fa = f"{a:.3f}" if a is not None else "n/a"; fb = f"{b:.3f}" if b is not None else "n/a"
    print(f"| {name} | {fa} | {fb} | {ratio} |")
if rounds > 1:
    print("\nclip loop per round (s): emo " + ", ".join(f"{x[-1]:.2f}" for x in er) +
          "; Hallo " + ", ".join(f"{x[-1]:.2f}" if x[-1] else "n/a" for x in hr))
fe = [median([per_clip(x, "vae_encode", True) for x in E]), median([per_clip(x, "reference_net", True) for x in E])]
if fe[0] is not None and fe[1] is not None:
    print(f"\nemo's first clip of a job (its motion frames are copies of the source, encoded and run once): VAE encode "
          f"{fe[0]:.3f} s, ReferenceNet {fe[1]:.3f} s (the rows above are emo's second clips, as Hallo's are)")
runs = [s for x in E for s in x["run_seconds"]]; frames = e["frames_per_run"]
print(f"\nemo whole generate run (portrait analysis, wav2vec2, clip loop, H.264/AAC muxing): {statistics.mean(runs):.3f} s "
      f"for {frames} frames = {statistics.mean(runs) / frames:.3f} s per output frame ({len(runs)} runs: "
      + ", ".join(f"{x:.2f}" for x in runs) + f"); {e['flops_per_run']/1e12:.2f} TFLOP counted")
rss_e = max(x["peak_rss_mib"] for x in E) / 1024
rss_h = [x.get("peak_host_rss_gib") for x in H if x.get("peak_host_rss_gib")]
print(f"peak host memory: emo {rss_e:.2f} GiB, Hallo {max(rss_h):.2f} GiB" if rss_h else f"peak host memory: emo {rss_e:.2f} GiB")
dev_e = [x["peak_device_mib"] for x in E if x.get("peak_device_mib") is not None]
dev_h = [x["peak_gpu_mem_gib"] if x.get("peak_gpu_mem_gib") is not None else x["peak_gpu_mem_bytes"] / 2**30
         for x in H if x.get("peak_gpu_mem_gib") is not None or x.get("peak_gpu_mem_bytes") is not None]
if dev_e and dev_h:
    print(f"peak device memory: emo {max(dev_e)/1024:.2f} GiB, Hallo {max(dev_h):.2f} GiB")
print(f"load: emo " + ", ".join(f"{x['load_s']:.1f}" for x in E) + " s (Hallo side: random-weight construction + load, "
      + ", ".join(f"{x.get('build_seconds', 0):.1f}" for x in H) + " s, not comparable)")
import os
ops_file = f"{out}/hallo-ops.json"
emo_ops_file = f"{out}/emo-ops.json"
if os.path.exists(ops_file) and os.path.exists(emo_ops_file):
    EO = json.load(open(emo_ops_file))
    eu = {s["stage"]: s for s in EO["stages"]}["unet3d_step"]
    hu = json.load(open(ops_file))["unet3d_step"]
    em = {o["name"]: o["self_s"] for o in eu["ops"]}
    hm = {o["name"]: o["self_s"] / hu["calls"] for o in hu["ops"]}
    names = sorted(set(em) | set(hm), key=lambda n: -max(em.get(n, 0), hm.get(n, 0)))
    print(f"\noperators of one UNet3D CFG step by CPU self time (s; emo: step {EO['steps']} of {EO['steps']} of its "
          f"profiled clip, Hallo: its last denoising call; '-': not among that side's top {len(eu['ops'])})\n")
    print("| operator | emo | Hallo |\n| --- | ---: | ---: |")
    for n in names:
        fmt = lambda m: f"{m[n]:.3f}" if n in m else "-"
        print(f"| {n} | {fmt(em)} | {fmt(hm)} |")
    print(f"| sum of the rows | {sum(em.values()):.3f} | {sum(hm.values()):.3f} |")
PY
