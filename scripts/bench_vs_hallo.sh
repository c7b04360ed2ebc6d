#!/usr/bin/env bash
# emo vs Hallo's Python, side by side: the same device, dtype, thread count, settings and weights.
#
#   scripts/bench_vs_hallo.sh [--device cpu|cuda] [--dtype fp32|fp16|bf16] [--threads N] [--size 512] [--frames 16]
#                             [--steps 40] [--cfg 3.5] [--runs 1] [--warmup 0] [--model DIR] [--out DIR]
#
# emo side: `build/emo bench` (the generate path itself) on DIR, a model folder in Hallo's layout; by default a
#   full-size random-weight one written once by `emo make-test-model --full-size` (about 5 GB, build/bench-model).
# Hallo side: ../shared/perf/hallo_bench.py (Hallo's own networks and clip loop; $HALLO_BENCH to point elsewhere)
#   through scripts/bench/hallo_side.py, which loads DIR's weights into Hallo's modules strictly instead of random
#   ones. It needs Hallo's source at commit 8fd7c57 ($HALLO_ROOT; cloned from GitHub when unset and absent) and a
#   separate virtual environment ($HALLO_VENV, default .venv-hallo/, created with the harness's pins and the same
#   torch as emo's .venv).
# Output: a table stage | emo | Hallo | Hallo/emo (>1: emo is faster), and both JSON reports under --out.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
device=cpu dtype=fp32 threads=2 size=512 frames=16 steps=40 cfg=3.5 runs=1 warmup=0
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
    --model) model="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
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

echo "==> emo: $device $dtype, $threads threads, ${size}x$size, $frames frames, $steps steps, cfg $cfg"
"$emo" -t "$threads" -q bench -m "$model" --device "$device" --dtype "$dtype" --size "$size" --frames "$frames" \
  --steps "$steps" --cfg "$cfg" --clips 1 -w "$warmup" -r "$runs" -f json -o "$out/emo.json"
echo "==> Hallo: the same"
HALLO_ROOT="$hallo_root" "$venv/bin/python" "$here/scripts/bench/hallo_side.py" --bench "$bench_py" --weights "$model" \
  --carry none --device "$device" --dtype "$dtype" --threads "$threads" --size "$size" --frames "$frames" \
  --steps "$steps" --cfg "$cfg" --clips "$runs" --warmup "$warmup" --json-out "$out/hallo.json" > "$out/hallo.log" 2>&1 \
  || { tail -20 "$out/hallo.log" >&2; die "Hallo's side failed (log: $out/hallo.log)"; }

python3 - "$out/emo.json" "$out/hallo.json" <<'PY'
import json, sys
e = json.load(open(sys.argv[1])); h = json.load(open(sys.argv[2]))
st = {s["stage"]: s for s in e["stages"]}
hs = h.get("stages_seconds_per_clip", {})
calls = h.get("stage_calls_per_clip", {})
def per_run(name): return st[name]["per_run_s"] if name in st else None
def per_call(name): return st[name]["mean_s"] if name in st else None
loop_stages = ["face_locator", "vae_encode", "reference_net", "audio_proj", "unet3d_step", "guidance_ddim", "vae_decode"]
emo_clip = sum(per_run(n) or 0 for n in loop_stages)
rows = [
    ("VAE encode (reference + motion frames), per clip", per_run("vae_encode"), hs.get("vae_encode")),
    ("ReferenceNet, per clip", per_run("reference_net"), hs.get("reference_unet")),
    ("audio projection, per clip", per_run("audio_proj"), hs.get("audio_proj")),
    ("face locator + image projection", per_run("face_locator"),
     (hs.get("face_locator") or 0) + (hs.get("image_proj") or 0) if "face_locator" in hs else None),
    ("UNet3D, one CFG step", per_call("unet3d_step"), h.get("denoising_unet_seconds_per_call")),
    (f"VAE decode, {e['frames']} frames", per_run("vae_decode"), hs.get("vae_decode")),
    ("clip loop (the rows above, all steps)", emo_clip, h.get("seconds_per_clip")),
]
print(f"\n{e['device_name']} | {e['device']} {e['dtype']} | {e['threads']} threads | torch {e['torch']} (emo) / "
      f"{h.get('torch')} (Hallo) | {e['size']}x{e['size']}, {e['frames']} frames + 2 motion, {e['steps']} steps, "
      f"cfg {e['cfg_scale']} | emo attention {e['attention']}\n")
print("| stage | emo (s) | Hallo (s) | Hallo / emo |\n| --- | ---: | ---: | ---: |")
for name, a, b in rows:
    ratio = f"{b / a:.2f}x" if a and b else "n/a"
    fa = f"{a:.3f}" if a is not None else "n/a"; fb = f"{b:.3f}" if b is not None else "n/a"
    print(f"| {name} | {fa} | {fb} | {ratio} |")
print(f"\nemo whole generate run (portrait analysis, wav2vec2, clip loop, H.264/AAC muxing): {sum(e['run_seconds'])/len(e['run_seconds']):.3f} s "
      f"for {e['frames_per_run']} frames = {e['seconds_per_frame']:.3f} s per output frame; "
      f"{e['flops_per_run']/1e12:.2f} TFLOP counted")
rss_h = h.get("peak_host_rss_gib")
print(f"peak host memory: emo {e['peak_rss_mib']/1024:.2f} GiB, Hallo {rss_h:.2f} GiB" if rss_h else
      f"peak host memory: emo {e['peak_rss_mib']/1024:.2f} GiB")
if e.get("peak_device_mib") is not None and h.get("peak_gpu_mem_gib") is not None:
    print(f"peak device memory: emo {e['peak_device_mib']/1024:.2f} GiB, Hallo {h['peak_gpu_mem_gib']:.2f} GiB")
print(f"load: emo {e['load_s']:.1f} s (Hallo side: random-weight construction + load, {h.get('build_seconds', 0):.1f} s, not comparable)")
PY
