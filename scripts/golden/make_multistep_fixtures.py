"""Multistep-solver fixtures for emo's samplers: DPM-Solver++ (src/sampling/dpm_solver.cpp) and UniPC
(src/sampling/unipc.cpp).

Runs diffusers' DPMSolverMultistepScheduler and UniPCMultistepScheduler (the version Hallo pins, 0.27.2) over fixed
random model outputs for several scheduler configurations and step counts, and writes what emo must reproduce, one
folder per solver:

  <out>/dpm/cases.json, <out>/unipc/cases.json   {case: scheduler kwargs as diffusers' from_config reads them,
                                                  "steps": [N...]}
  <out>/dpm/io.safetensors, <out>/unipc/...      per case and N: <case>.timesteps_N [N] int64, <case>.sigmas_N [N+1],
                                                  <case>.initial_sample_N, <case>.model_outputs_N [N, ...],
                                                  <case>.prev_samples_N

Usage (from the repository root, in the reference venv):
  python scripts/golden/make_multistep_fixtures.py --out tests/data
"""
import argparse
import json
import os

import diffusers
import torch
from diffusers import DPMSolverMultistepScheduler, UniPCMultistepScheduler
from safetensors.torch import save_file

# Hallo's configs/inference/default.yaml noise_scheduler_kwargs (the DDIM keys a solver does not know are ignored by
# from_config, as they would be for a Hallo user who swaps the scheduler class; UniPC 0.27.2 also drops
# rescale_betas_zero_snr).
HALLO = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="linear", clip_sample=False, steps_offset=1,
             prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing")
SD15 = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)

DPM_CASES = {
    # what `emo generate --sampler dpmpp-2m` runs with Hallo's weights
    "hallo_2m": dict(HALLO, steps=[1, 2, 3, 5, 14, 15, 20, 25, 40]),
    "sd15_eps_leading_2m": dict(SD15, prediction_type="epsilon", timestep_spacing="leading", steps=[1, 4, 20]),
    "sd15_eps_linspace_2m_heun": dict(SD15, prediction_type="epsilon", solver_type="heun", steps=[6, 20]),
    "vpred_trailing_order1_sigma_min": dict(HALLO, rescale_betas_zero_snr=False, solver_order=1,
                                            final_sigmas_type="sigma_min", steps=[4, 20]),
    "sample_pred_no_lower_order_final": dict(SD15, prediction_type="sample", timestep_spacing="trailing",
                                             lower_order_final=False, final_sigmas_type="sigma_min", steps=[5, 16]),
    "eps_euler_at_final": dict(SD15, prediction_type="epsilon", timestep_spacing="trailing", euler_at_final=True,
                               final_sigmas_type="sigma_min", steps=[20]),
    "cosine_lambda_clipped": dict(beta_schedule="squaredcos_cap_v2", prediction_type="epsilon",
                                  lambda_min_clipped=-5.1, steps=[10]),
}

UNIPC_CASES = {
    # what `emo generate --sampler unipc` runs with Hallo's weights (bh2, order 2, data prediction)
    "hallo_bh2": dict(HALLO, steps=[1, 2, 3, 5, 14, 20, 25, 40]),
    "sd15_eps_leading_bh1": dict(SD15, prediction_type="epsilon", timestep_spacing="leading", solver_type="bh1",
                                 steps=[1, 4, 20]),
    "sd15_eps_linspace_order3": dict(SD15, prediction_type="epsilon", solver_order=3, steps=[2, 3, 6, 20]),
    "vpred_trailing_noise_prediction": dict(HALLO, predict_x0=False, steps=[5, 20]),
    "sample_pred_order3_no_lower_order_final": dict(SD15, prediction_type="sample", timestep_spacing="trailing",
                                                    solver_order=3, lower_order_final=False, steps=[5, 16]),
    "eps_order1_midpoint_name": dict(SD15, prediction_type="epsilon", solver_order=1, solver_type="midpoint",
                                     steps=[6]),
    "eps_disable_corrector": dict(SD15, prediction_type="epsilon", disable_corrector=[0, 3], steps=[8]),
    "cosine_bh1_noise_prediction_order3": dict(beta_schedule="squaredcos_cap_v2", prediction_type="epsilon",
                                               solver_type="bh1", predict_x0=False, solver_order=3, steps=[10]),
}

SHAPE = (1, 4, 2, 3, 3)  # [B, C, F, h, w]: a tiny latent clip


def write(scheduler_class, cases_in, out, seed):
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    tensors, cases = {}, {}
    for name, kw in cases_in.items():
        kw = dict(kw)
        steps = kw.pop("steps")
        sched = scheduler_class.from_config(kw)
        cases[name] = dict(kw, steps=steps)
        for n in steps:
            sched.set_timesteps(n)
            x = torch.randn(SHAPE, generator=g)
            tensors[f"{name}.initial_sample_{n}"] = x.clone()
            outs, prevs = [], []
            for t in sched.timesteps:
                # a model output of the magnitude a denoiser gives, correlated with the sample like a real one
                m = 0.5 * x + torch.randn(SHAPE, generator=g)
                outs.append(m)
                x = sched.step(m, t, x).prev_sample
                prevs.append(x.clone())
            tensors[f"{name}.timesteps_{n}"] = sched.timesteps.clone().to(torch.int64)
            tensors[f"{name}.sigmas_{n}"] = sched.sigmas.clone().to(torch.float32)
            tensors[f"{name}.model_outputs_{n}"] = torch.stack(outs)
            tensors[f"{name}.prev_samples_{n}"] = torch.stack(prevs)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out, "io.safetensors"))
    meta = {"generator": "scripts/golden/make_multistep_fixtures.py", "scheduler": scheduler_class.__name__,
            "diffusers": diffusers.__version__, "torch": torch.__version__, "shape": list(SHAPE), "cases": cases}
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"{len(tensors)} tensors, {sum(v.numel() for v in tensors.values())} values -> {out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="the parent folder of dpm/ and unipc/ (tests/data)")
    args = ap.parse_args()
    write(DPMSolverMultistepScheduler, DPM_CASES, os.path.join(args.out, "dpm"), 1234)
    write(UniPCMultistepScheduler, UNIPC_CASES, os.path.join(args.out, "unipc"), 4321)


if __name__ == "__main__":
    main()
