// Diffusion sampling: noise schedules, model-output parameterisations, the DDIM step and
// classifier-free guidance. Mirrors diffusers.schedulers.scheduling_ddim.DDIMScheduler (v0.27.2)
// with eta = 0 (deterministic) as Hallo and Stable Diffusion use it; see docs/sampling.md.
//
// Three layers, kept apart so other samplers (DPM-Solver++, Euler) can reuse the first two:
//   1. schedule:        make_noise_schedule() -> betas / alphas_cumprod / final_alpha_cumprod,
//                       make_timesteps()      -> the inference timesteps (leading / trailing / linspace)
//   2. parameterisation: to_x0_eps()          -> model output (eps / v / x0) to (x0, eps)
//   3. step:            ddim_step()           -> x_{t-1} from (x0, eps) and the two alpha_bars
// DDIMScheduler ties them together with diffusers' set_timesteps()/step() interface.
#pragma once
#include <ATen/core/Tensor.h>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace emo::sampling {

enum class BetaSchedule { kLinear, kScaledLinear, kSquaredCosCapV2 };
enum class TimestepSpacing { kLeading, kTrailing, kLinspace };
enum class PredictionType { kEpsilon, kVPrediction, kSample };

const char* to_string(BetaSchedule s);
const char* to_string(TimestepSpacing s);
const char* to_string(PredictionType p);

// diffusers' scheduler config.json (DDIMScheduler constructor arguments, same defaults).
struct DDIMSchedulerConfig {
  int64_t num_train_timesteps = 1000;
  double beta_start = 0.0001;
  double beta_end = 0.02;
  BetaSchedule beta_schedule = BetaSchedule::kLinear;
  std::vector<double> trained_betas;  // non-empty overrides beta_schedule (length num_train_timesteps)
  bool clip_sample = true;
  double clip_sample_range = 1.0;
  bool set_alpha_to_one = true;
  int64_t steps_offset = 0;
  PredictionType prediction_type = PredictionType::kEpsilon;
  TimestepSpacing timestep_spacing = TimestepSpacing::kLeading;
  bool rescale_betas_zero_snr = false;

  // Reads a parsed config. Unknown keys are ignored (diffusers writes _class_name, _diffusers_version,
  // keys of other schedulers); known keys with a wrong type or value, and `thresholding: true`
  // (pixel-space dynamic thresholding, unsupported), throw ModelError naming `source`.
  static DDIMSchedulerConfig from_json(const nlohmann::json& j, const std::string& source = "scheduler config");
  // Reads a file, or a folder holding scheduler_config.json or config.json (in that order).
  static DDIMSchedulerConfig from_file(const std::string& path);
};

// ---- 1. schedule ---------------------------------------------------------------------------------

// All float32 and computed with the same tensor ops as diffusers, so the tables match bit for bit.
struct NoiseSchedule {
  at::Tensor betas;                // [T] float32
  at::Tensor alphas_cumprod;       // [T] float32
  at::Tensor final_alpha_cumprod;  // [] float32: 1 if set_alpha_to_one else alphas_cumprod[0]
  int64_t num_train_timesteps() const { return betas.size(0); }
};
NoiseSchedule make_noise_schedule(const DDIMSchedulerConfig& c);

// diffusers' rescale_zero_terminal_snr (arXiv 2305.08891, Algorithm 1): alphas_cumprod[-1] becomes 0.
at::Tensor rescale_zero_terminal_snr(const at::Tensor& betas);

// Inference timesteps, descending, as set_timesteps() builds them with numpy (float64, round half
// to even). steps_offset applies to leading only. Throws UsageError for n < 1 or n > T.
std::vector<int64_t> make_timesteps(TimestepSpacing spacing, int64_t num_train_timesteps,
                                    int64_t num_inference_steps, int64_t steps_offset);
// The trailing rule, round(arange(start_t, 0, -T / n)) - 1, with numpy's float64 fill (DDIM: start_t = T;
// DPM-Solver++: T less its lambda_min_clipped cut).
std::vector<int64_t> trailing_timesteps(int64_t start_t, int64_t num_train_timesteps, int64_t num_inference_steps);

// ---- 2. parameterisation -------------------------------------------------------------------------

struct X0Eps {
  at::Tensor x0;   // predicted clean sample (pred_original_sample)
  at::Tensor eps;  // predicted noise
};
// alpha_prod_t: 0-dim float32 tensor alphas_cumprod[t]; the arithmetic follows diffusers' order.
X0Eps to_x0_eps(PredictionType type, const at::Tensor& model_output, const at::Tensor& sample,
                const at::Tensor& alpha_prod_t);

// ---- 3. step -------------------------------------------------------------------------------------

// DDIM (arXiv 2010.02502 eq. 12): x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev - sigma^2) eps + sigma noise,
// sigma = eta * sqrt((1-a_prev)/(1-a_t) * (1 - a_t/a_prev)). With eta = 0 `noise` is unused.
at::Tensor ddim_step(const X0Eps& pred, const at::Tensor& alpha_prod_t, const at::Tensor& alpha_prod_t_prev,
                     double eta = 0.0, const at::Tensor& noise = {});

struct StepOutput {
  at::Tensor prev_sample;           // x_{t-1}
  at::Tensor pred_original_sample;  // x0
};

class DDIMScheduler {
 public:
  explicit DDIMScheduler(DDIMSchedulerConfig config);

  void set_timesteps(int64_t num_inference_steps);
  const std::vector<int64_t>& timesteps() const { return timesteps_; }
  int64_t num_inference_steps() const { return num_inference_steps_; }

  // One reverse step at timestep t (one of timesteps(), or any t in [0, T)). eta > 0 needs `noise`
  // shaped like sample (diffusers draws it with randn; here the caller owns the generator).
  StepOutput step(const at::Tensor& model_output, int64_t t, const at::Tensor& sample, double eta = 0.0,
                  const at::Tensor& noise = {}) const;

  // Forward process q(x_t | x0) (diffusers add_noise), for img2img-style starts and tests.
  at::Tensor add_noise(const at::Tensor& x0, const at::Tensor& noise, int64_t t) const;

  double init_noise_sigma() const { return 1.0; }                 // DDIM: the initial latents are plain randn
  at::Tensor scale_model_input(const at::Tensor& x, int64_t) const { return x; }  // identity for DDIM

  const DDIMSchedulerConfig& config() const { return config_; }
  const NoiseSchedule& schedule() const { return schedule_; }

 private:
  at::Tensor alpha_prod(int64_t t) const;  // alphas_cumprod[t], or final_alpha_cumprod for t < 0

  DDIMSchedulerConfig config_;
  NoiseSchedule schedule_;
  std::vector<int64_t> timesteps_;
  int64_t num_inference_steps_ = 0;
};

// ---- DPM-Solver++ (multistep) ---------------------------------------------------------------------

// diffusers.schedulers.scheduling_dpmsolver_multistep.DPMSolverMultistepScheduler (v0.27.2), deterministic
// DPM-Solver++ (Lu et al. 2022, arXiv 2211.01095) of order 1 or 2 ("DPM++ 2M"). The noise-schedule keys are the
// DDIM config's (one config.json serves both; DDIM-only keys such as clip_sample are ignored, as diffusers'
// from_config ignores them); the defaults are DPMSolverMultistepScheduler's (timestep_spacing "linspace").
struct DPMSolverConfig {
  enum class SolverType { kMidpoint, kHeun };
  enum class FinalSigmas { kZero, kSigmaMin };

  DDIMSchedulerConfig schedule;  // betas, prediction_type, timestep_spacing, steps_offset, rescale_betas_zero_snr
  int solver_order = 2;          // 1 or 2 (3 is not implemented: a ModelError)
  SolverType solver_type = SolverType::kMidpoint;
  bool lower_order_final = true;  // first order for the last steps when fewer than 15 steps
  bool euler_at_final = false;
  FinalSigmas final_sigmas_type = FinalSigmas::kZero;
  double lambda_min_clipped = -std::numeric_limits<double>::infinity();

  // Unknown keys are ignored; algorithm types other than dpmsolver++, Karras / Lu sigmas, thresholding and
  // learned variances are ModelErrors naming `source`.
  static DPMSolverConfig from_json(const nlohmann::json& j, const std::string& source = "scheduler config");
};

class DPMSolverMultistepScheduler {
 public:
  explicit DPMSolverMultistepScheduler(DPMSolverConfig config);

  // Timesteps and sigmas of an n-step run; clears the solver's history.
  void set_timesteps(int64_t num_inference_steps);
  const std::vector<int64_t>& timesteps() const { return timesteps_; }
  const at::Tensor& sigmas() const { return sigmas_; }  // [n + 1] float32, the last one 0 (or sigma_min)
  // alphas_cumprod with diffusers' zero-SNR patch (the last entry 2^-24 instead of 0).
  const at::Tensor& alphas_cumprod() const { return alphas_cumprod_; }

  // The next step of the run: t must be timesteps()[i] for the i-th call after set_timesteps(). Stateful (keeps
  // the last solver_order data predictions). Arithmetic in float32 like diffusers, result in model_output's dtype.
  at::Tensor step(const at::Tensor& model_output, int64_t t, const at::Tensor& sample);

  const DPMSolverConfig& config() const { return config_; }

 private:
  DPMSolverConfig config_;
  at::Tensor alphas_cumprod_;
  at::Tensor lambda_t_;  // [T] float32, for lambda_min_clipped
  std::vector<int64_t> timesteps_;
  at::Tensor sigmas_;
  std::vector<at::Tensor> x0_history_;  // data predictions, oldest first (at most solver_order)
  size_t step_index_ = 0;
  int lower_order_nums_ = 0;
};

// The timesteps DPMSolverMultistepScheduler.set_timesteps builds (its leading / linspace differ from DDIM's;
// trailing is the same). last_timestep: num_train_timesteps less the lambda_min_clipped cut.
std::vector<int64_t> dpm_timesteps(TimestepSpacing spacing, int64_t num_train_timesteps, int64_t last_timestep,
                                   int64_t num_inference_steps, int64_t steps_offset);

// ---- UniPC (multistep) ----------------------------------------------------------------------------

// diffusers.schedulers.scheduling_unipc_multistep.UniPCMultistepScheduler (v0.27.2, the version Hallo pins): the
// unified predictor-corrector of Zhao et al. 2023 (arXiv 2302.04867), B(h) variants bh1 / bh2, data (x0) or noise
// prediction, any solver order (the defaults: bh2, order 2). The corrector reuses the next step's model output, so a
// step costs one model evaluation, like DDIM. The noise-schedule keys are the DDIM config's; like diffusers 0.27.2,
// UniPC has no zero-terminal-SNR option, so `rescale_betas_zero_snr` (Hallo's config sets it) is ignored: the betas
// stay as configured and the last sigma is sigma_min, never 0.
struct UniPCConfig {
  enum class SolverType { kBH1, kBH2 };

  DDIMSchedulerConfig schedule;  // betas, prediction_type, timestep_spacing (default linspace), steps_offset
  int solver_order = 2;          // 1 to 3
  bool predict_x0 = true;        // UniPC in the data-prediction form (false: noise prediction)
  SolverType solver_type = SolverType::kBH2;
  bool lower_order_final = true;         // the order drops to the number of steps left at the end
  std::vector<int64_t> disable_corrector;  // step indices whose output is not corrected

  // Unknown keys are ignored ("midpoint", "heun", "logrho" map to bh2 as in diffusers); Karras sigmas, solver_p,
  // thresholding and orders outside 1-3 are ModelErrors naming `source`.
  static UniPCConfig from_json(const nlohmann::json& j, const std::string& source = "scheduler config");
};

class UniPCMultistepScheduler {
 public:
  explicit UniPCMultistepScheduler(UniPCConfig config);

  // Timesteps and sigmas of an n-step run; clears the solver's history.
  void set_timesteps(int64_t num_inference_steps);
  const std::vector<int64_t>& timesteps() const { return timesteps_; }
  const at::Tensor& sigmas() const { return sigmas_; }  // [n + 1] float32, the last one sigma_min

  // The next step of the run: t must be timesteps()[i] for the i-th call after set_timesteps(). Corrects `sample`
  // with this step's model output (UniC), then predicts the next sample (UniP). Result in the sample's dtype.
  at::Tensor step(const at::Tensor& model_output, int64_t t, const at::Tensor& sample);

  const UniPCConfig& config() const { return config_; }

 private:
  // The B(h) update from sigmas()[from] to sigmas()[to] with the last `order` converted outputs (UniP), or with
  // those and this step's output `model_t` (UniC, when defined).
  at::Tensor update(const at::Tensor& x, int64_t from, int64_t to, int order, const at::Tensor& model_t) const;

  UniPCConfig config_;
  at::Tensor alphas_cumprod_;
  std::vector<int64_t> timesteps_;
  at::Tensor sigmas_;
  std::vector<at::Tensor> outputs_;  // converted model outputs, oldest first (at most solver_order)
  at::Tensor last_sample_;           // the sample the last predictor started from
  size_t step_index_ = 0;
  int lower_order_nums_ = 0;
  int this_order_ = 0;
};

// ---- samplers, as the pipeline picks them --------------------------------------------------------

enum class SamplerKind {
  kDDIM,      // "ddim": Hallo's DDIMScheduler, eta 0 (the default, and what Hallo's inference.py runs)
  kDPMPP2M,   // "dpmpp-2m": DPMSolverMultistepScheduler, order 2, from the same scheduler config
  kUniPC,     // "unipc": UniPCMultistepScheduler, bh2, order 2, from the same scheduler config
};
const char* to_string(SamplerKind k);
// "ddim", "dpmpp-2m" or "unipc"; anything else is a UsageError listing the choices.
SamplerKind parse_sampler(const std::string& name);

// One denoising run: timesteps() then step() for each of them, in order.
class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual const std::vector<int64_t>& timesteps() const = 0;
  virtual at::Tensor step(const at::Tensor& model_output, int64_t t, const at::Tensor& sample) = 0;
};
// From diffusers-style scheduler kwargs (the model's scheduler config), set to `steps` steps.
std::unique_ptr<Sampler> make_sampler(SamplerKind kind, const nlohmann::json& scheduler_kwargs, int64_t steps);

// ---- classifier-free guidance --------------------------------------------------------------------

// A denoiser maps (latents, timestep) to the model output (eps / v / x0, whatever the scheduler expects).
using Denoiser = std::function<at::Tensor(const at::Tensor& x, int64_t t)>;

// uncond + scale * (cond - uncond), in diffusers' / Hallo's order of operations.
at::Tensor cfg_combine(const at::Tensor& uncond, const at::Tensor& cond, double scale);

// Hallo / diffusers do guidance only for scale > 1.
inline bool guidance_enabled(double scale) { return scale > 1.0; }

// Batched CFG: `batched` receives cat([x, x]) along dim 0 (its conditioning must be [uncond; cond],
// uncond first, as Hallo builds it) and returns [2B, ...]; the wrapper splits and combines.
Denoiser guided(Denoiser batched, double scale);

// Two-pass CFG (lower peak memory): separate unconditional and conditional denoisers.
Denoiser guided(Denoiser uncond, Denoiser cond, double scale);

// The plain sampling loop: x <- step(denoise(scale_model_input(x, t), t), t, x) over timesteps().
// `on_step(i, t, x)` (optional) is called after each step, e.g. for progress or cancellation.
at::Tensor sample_loop(const DDIMScheduler& scheduler, const Denoiser& denoise, at::Tensor x,
                       const std::function<void(size_t, int64_t, const at::Tensor&)>& on_step = {});

}  // namespace emo::sampling
