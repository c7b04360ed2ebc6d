#!/usr/bin/env python3
"""Hallo's side of scripts/bench_vs_hallo.sh: ../shared/perf/hallo_bench.py (Hallo's own networks and clip loop,
timed per stage), with the weights of an emo model folder instead of its random ones, so both sides run the same
numbers. The folder is Hallo's pretrained_models/ layout (`emo make-test-model --full-size DIR` writes one):
hallo/net.pth (reference_unet., denoising_unet., face_locator., imageproj., audioproj.) and sd-vae-ft-mse/.
Every module is loaded strictly (missing or unexpected keys fail the run), which also proves that the folder emo
wrote is one Hallo's code loads.

usage: hallo_side.py --bench PATH/hallo_bench.py --weights MODEL_DIR [--ops N --ops-out FILE] [hallo_bench.py flags...]

--ops N: the denoising UNet's last call (a warm one: it follows the warm-up clip and the earlier steps) runs under
torch.profiler; its N operators with the most CPU self time go to FILE as JSON, in the layout of `emo bench --ops`
({"unet3d_step": {"calls": 1, "ops": [{"name", "calls", "self_s", "total_s"}]}}).
"""
import argparse
import importlib.util
import os
import sys


def load_state(path):
    """safetensors content (emo writes net.pth as safetensors, as it reads both), else a torch pickle."""
    with open(path, "rb") as f:
        head = f.read(8)
    import torch
    if len(head) == 8 and int.from_bytes(head, "little") < (1 << 30):
        try:
            from safetensors.torch import load_file
            return load_file(path)
        except Exception:  # noqa: BLE001 - not safetensors after all
            pass
    return torch.load(path, map_location="cpu", weights_only=True)


def main():
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--ops", type=int, default=0)
    ap.add_argument("--ops-out")
    args, rest = ap.parse_known_args()
    if args.ops > 0 and not args.ops_out:
        raise SystemExit("hallo_side: --ops needs --ops-out FILE")
    # hallo_bench's own flags that fix how many times the denoising UNet runs (its defaults when not given)
    loop = argparse.ArgumentParser(add_help=False)
    loop.add_argument("--steps", type=int, default=40)
    loop.add_argument("--clips", type=int, default=1)
    loop.add_argument("--warmup", type=int, default=0)
    counts, _ = loop.parse_known_args(rest)

    spec = importlib.util.spec_from_file_location("hallo_bench", args.bench)
    hb = importlib.util.module_from_spec(spec)
    sys.modules["hallo_bench"] = hb
    spec.loader.exec_module(hb)

    net = load_state(os.path.join(args.weights, "hallo", "net.pth"))
    vae = load_state(os.path.join(args.weights, "sd-vae-ft-mse", "diffusion_pytorch_model.safetensors"))
    # hallo_bench.build_models initialises, in this order: vae, reference_unet, denoising_unet, face_locator,
    # image_proj, audio_proj (seed + 1000 * (i + 1)); each call here loads that module's part of the folder instead.
    parts = [("vae", None), ("reference_unet", "reference_unet."), ("denoising_unet", "denoising_unet."),
             ("face_locator", "face_locator."), ("image_proj", "imageproj."), ("audio_proj", "audioproj.")]
    calls = {"n": 0}

    def load_instead(module, seed, gain=1.0):  # noqa: ARG001 - same signature as hallo_bench.random_init_
        import torch
        name, prefix = parts[calls["n"]]
        calls["n"] += 1
        sd = vae if prefix is None else {k[len(prefix):]: v for k, v in net.items() if k.startswith(prefix)}
        own = module.state_dict()
        missing = sorted(set(own) - set(sd))
        unexpected = sorted(set(sd) - set(own))
        if missing or unexpected:
            raise SystemExit(f"hallo_side: {name}: {len(missing)} missing keys {missing[:5]}, "
                             f"{len(unexpected)} unexpected {unexpected[:5]} in {args.weights}")
        with torch.no_grad():
            for k, t in own.items():
                if tuple(sd[k].shape) != tuple(t.shape):
                    raise SystemExit(f"hallo_side: {name}.{k}: file {tuple(sd[k].shape)} vs module {tuple(t.shape)}")
                t.copy_(sd[k].to(t.device, t.dtype))
        print(f"hallo_side: {name}: {len(own)} tensors loaded from {args.weights}", file=sys.stderr, flush=True)
        return module

    hb.random_init_ = load_instead
    if args.ops > 0:
        install_timers = hb.install_timers
        last = (counts.warmup + counts.clips) * counts.steps
        seen = {"n": 0}

        def install_op_profile(ns, pipeline, mods, timer):
            import json
            import torch
            unet = mods["denoising_unet"]
            forward = unet.forward

            def profiled(*a, **k):
                seen["n"] += 1
                if seen["n"] != last:
                    return forward(*a, **k)
                with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                    out = forward(*a, **k)
                ev = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:args.ops]
                ops = [{"name": e.key, "calls": e.count, "self_s": e.self_cpu_time_total * 1e-6,
                        "total_s": e.cpu_time_total * 1e-6} for e in ev]
                with open(args.ops_out, "w") as f:
                    json.dump({"unet3d_step": {"calls": 1, "ops": ops}}, f, indent=1)
                return out

            unet.forward = profiled  # the stage timer wraps this: the profiled call is timed as it ran
            install_timers(ns, pipeline, mods, timer)

        hb.install_timers = install_op_profile
    res = hb.main(rest)
    if args.ops > 0 and seen["n"] < last:
        raise SystemExit(f"hallo_side: the denoising UNet ran {seen['n']} times, not {last}: no operator profile")
    if calls["n"] != len(parts):
        raise SystemExit(f"hallo_side: loaded {calls['n']} of {len(parts)} modules: hallo_bench changed its order")
    return res


if __name__ == "__main__":
    main()
