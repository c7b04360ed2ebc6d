"""How far DPM-Solver++ 2M and UniPC at N steps land from Hallo's 40-step DDIM, with an exact denoiser.

No trained weights can be downloaded here, and a random-weight UNet is no denoiser, so the sampler's own error is
measured on data whose denoiser is known in closed form: every latent element is drawn from a two-component
Gaussian mixture (modes +-1, std 0.35: bimodal like real latents, not a single Gaussian that any sampler follows
easily), and the v-prediction the network would ideally give is computed exactly from the posterior mean
E[x0 | x_t] under the schedule the network was trained with (Hallo's zero-SNR betas). The samplers read Hallo's
scheduler config (v_prediction, trailing, zero-SNR betas) through diffusers 0.27.2's DDIMScheduler,
DPMSolverMultistepScheduler and UniPCMultistepScheduler, which emo reproduces to 1e-5 (tests/golden/test_ddim.cpp,
tests/golden/test_multistep_solvers.cpp); UniPC 0.27.2 ignores rescale_betas_zero_snr, so it integrates with the
unrescaled betas while the denoiser answers for the trained schedule, as it would with Hallo's weights. Reported: RMS distance of each run's final latents from DDIM at 40 steps (what
Hallo runs) and from DDIM at 1000 steps (the converged ODE solution), relative to the data's RMS.

Usage (reference venv):  python scripts/bench/sampler_distance.py [--elements 200000] [--seed 0]
                                [--modes=-1,1 --stds=0.35,0.35]  (an equal-weight mixture; docs/performance.md
                                                                   also reports --modes=-1.5,0.5 --stds=0.1,0.6)
"""
import argparse
import math

import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler

HALLO = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="linear", clip_sample=False, steps_offset=1,
             prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing")
MU = torch.tensor([-1.0, 1.0], dtype=torch.float64)
SD = torch.tensor([0.35, 0.35], dtype=torch.float64)
PI = torch.tensor([0.5, 0.5], dtype=torch.float64)


def exact_v(x, a):
    """v = sqrt(a) eps - sqrt(1-a) x0 with x0, eps the posterior means given x_t = x at alpha_bar = a."""
    x = x.double()
    var = a * SD**2 + (1 - a)                                   # [K]
    xk = x.unsqueeze(-1)                                         # [..., 1]
    logw = torch.log(PI) - 0.5 * torch.log(var) - 0.5 * (xk - math.sqrt(a) * MU) ** 2 / var
    w = torch.softmax(logw, dim=-1)
    mk = MU + math.sqrt(a) * SD**2 / var * (xk - math.sqrt(a) * MU)
    x0 = (w * mk).sum(-1)
    if a < 1 - 1e-12:
        eps = (x - math.sqrt(a) * x0) / math.sqrt(1 - a)
    else:
        eps = torch.zeros_like(x)
    return (math.sqrt(a) * eps - math.sqrt(1 - a) * x0).float()


def run(sched, n, noise, ac):
    """n steps of sched from noise; the denoiser answers at timestep t for the trained alphas_cumprod ac."""
    sched.set_timesteps(n)
    x = noise.clone()
    for t in sched.timesteps:
        x = sched.step(exact_v(x, float(ac[int(t)])), t, x).prev_sample
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--elements", type=int, default=200000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--modes", default="-1,1", help="the mixture's means, comma-separated")
    ap.add_argument("--stds", default="0.35,0.35", help="the mixture's standard deviations, one per mode")
    args = ap.parse_args()
    global MU, SD, PI
    MU = torch.tensor([float(v) for v in args.modes.split(",")], dtype=torch.float64)
    SD = torch.tensor([float(v) for v in args.stds.split(",")], dtype=torch.float64)
    if MU.numel() != SD.numel():
        ap.error("--modes and --stds need the same number of values")
    PI = torch.full_like(MU, 1.0 / MU.numel())
    # [1, N]: UniPC's update contracts a batch dimension
    noise = torch.randn(1, args.elements, generator=torch.Generator().manual_seed(args.seed))
    ddim = DDIMScheduler.from_config(HALLO)
    dpm = DPMSolverMultistepScheduler.from_config(HALLO)
    unipc = UniPCMultistepScheduler.from_config(HALLO)
    ac = ddim.alphas_cumprod  # the trained schedule
    ref40 = run(ddim, 40, noise, ac)
    ref1000 = run(ddim, 1000, noise, ac)
    scale = ref1000.pow(2).mean().sqrt().item()
    rms = lambda a, b: (a - b).pow(2).mean().sqrt().item() / scale
    print(f"data RMS {scale:.4f}; DDIM-40 vs DDIM-1000: {rms(ref40, ref1000):.4f}")
    print("| sampler | steps | UNet evaluations vs DDIM-40 | distance from DDIM-40 | distance from DDIM-1000 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    steps = (10, 15, 20, 25, 30, 40)
    for name, sched in (("ddim", ddim), ("dpmpp-2m", dpm), ("unipc", unipc)):
        for n in steps:
            x = run(sched, n, noise, ac)
            print(f"| {name} | {n} | {n / 40:.3f} | {rms(x, ref40):.4f} | {rms(x, ref1000):.4f} |")


if __name__ == "__main__":
    main()
