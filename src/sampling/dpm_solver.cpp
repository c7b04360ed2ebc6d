// diffusers.schedulers.scheduling_dpmsolver_multistep.DPMSolverMultistepScheduler (v0.27.2): deterministic
// DPM-Solver++ of order 1 and 2 (arXiv 2211.01095), midpoint and heun second-order forms. Scalars are 0-dim
// float32 tensors combined in diffusers' order of operations; tests/golden/test_multistep_solvers.cpp holds it to the
// reference (tests/data/dpm, made by scripts/golden/make_multistep_fixtures.py).
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "emo/error.h"
#include "emo/scheduler.h"
#include "multistep_common.h"

namespace emo::sampling {

using json = nlohmann::json;
using multistep::alpha_sigma;

DPMSolverConfig DPMSolverConfig::from_json(const json& j, const std::string& source) {
  DPMSolverConfig c;
  c.schedule = DDIMSchedulerConfig::from_json(j, source);
  if (!multistep::find(j, "timestep_spacing"))
    c.schedule.timestep_spacing = TimestepSpacing::kLinspace;  // DPM's default

  if (const json* v = multistep::find(j, "solver_order")) {
    if (!v->is_number_integer()) multistep::fail(source, "solver_order", "must be an integer, got " + v->dump());
    c.solver_order = v->get<int>();
    if (c.solver_order == 3)
      multistep::fail(source, "solver_order", "is 3: third-order DPM-Solver++ is not implemented (use 1 or 2)");
    if (c.solver_order != 1 && c.solver_order != 2)
      multistep::fail(source, "solver_order", "must be 1 or 2, got " + v->dump());
  }
  // diffusers maps the deprecated / other-family names onto these (algorithm "deis" -> dpmsolver++,
  // solver "logrho"/"bh1"/"bh2" -> midpoint); the noise-prediction and SDE variants are not implemented.
  const auto algo = multistep::read_string(j, "algorithm_type", "dpmsolver++", source);
  if (algo != "dpmsolver++" && algo != "deis")
    multistep::fail(source, "algorithm_type", "is '" + algo + "': only the deterministic dpmsolver++ is implemented");
  const auto solver = multistep::read_string(j, "solver_type", "midpoint", source);
  if (solver == "heun")
    c.solver_type = SolverType::kHeun;
  else if (solver == "midpoint" || solver == "logrho" || solver == "bh1" || solver == "bh2")
    c.solver_type = SolverType::kMidpoint;
  else
    multistep::fail(source, "solver_type", "has unsupported value '" + solver + "' (supported: midpoint, heun)");
  c.lower_order_final = multistep::read_bool(j, "lower_order_final", c.lower_order_final, source);
  c.euler_at_final = multistep::read_bool(j, "euler_at_final", c.euler_at_final, source);
  if (multistep::read_bool(j, "use_karras_sigmas", false, source))
    multistep::fail(source, "use_karras_sigmas", "is true: not implemented");
  if (multistep::read_bool(j, "use_lu_lambdas", false, source))
    multistep::fail(source, "use_lu_lambdas", "is true: not implemented");
  const auto final_sigmas = multistep::read_string(j, "final_sigmas_type", "zero", source);
  if (final_sigmas == "zero")
    c.final_sigmas_type = FinalSigmas::kZero;
  else if (final_sigmas == "sigma_min")
    c.final_sigmas_type = FinalSigmas::kSigmaMin;
  else
    multistep::fail(source, "final_sigmas_type",
                    "has unsupported value '" + final_sigmas + "' (supported: zero, sigma_min)");
  if (const json* v = multistep::find(j, "lambda_min_clipped")) {
    if (!v->is_number()) multistep::fail(source, "lambda_min_clipped", "must be a number, got " + v->dump());
    c.lambda_min_clipped = v->get<double>();
  }
  const auto variance = multistep::read_string(j, "variance_type", "", source);
  if (!variance.empty())
    multistep::fail(source, "variance_type", "is '" + variance + "': learned variances are not supported");
  return c;
}

std::vector<int64_t> dpm_timesteps(TimestepSpacing spacing, int64_t T, int64_t last, int64_t n, int64_t steps_offset) {
  if (n < 1 || n > T)
    throw UsageError("num_inference_steps must be in [1, " + std::to_string(T) + "], got " + std::to_string(n));
  std::vector<int64_t> ts;
  switch (spacing) {
    case TimestepSpacing::kLinspace: {
      // np.linspace(0, last - 1, n + 1).round()[::-1][:-1]: y_i = i * ((last-1)/n), y_n = last - 1 exactly.
      const double stop = static_cast<double>(last - 1);
      const double step = stop / static_cast<double>(n);
      for (int64_t i = n; i >= 1; --i)
        ts.push_back(static_cast<int64_t>(std::nearbyint(i == n ? stop : static_cast<double>(i) * step)));
      break;
    }
    case TimestepSpacing::kLeading: {
      const int64_t ratio = last / (n + 1);  // integer division, as in diffusers
      for (int64_t i = n; i >= 1; --i) ts.push_back(i * ratio + steps_offset);
      break;
    }
    case TimestepSpacing::kTrailing:
      ts = trailing_timesteps(last, T, n);  // the same rule as DDIM's, from the clipped start
      break;
  }
  return ts;
}

DPMSolverMultistepScheduler::DPMSolverMultistepScheduler(DPMSolverConfig config) : config_(std::move(config)) {
  auto schedule = make_noise_schedule(config_.schedule);
  alphas_cumprod_ = schedule.alphas_cumprod.clone();  // [T] float32
  // diffusers: "close to 0 without being 0 so first sigma is not inf" (the fp16 smallest subnormal).
  if (config_.schedule.rescale_betas_zero_snr) alphas_cumprod_[-1].fill_(std::ldexp(1.0, -24));
  lambda_t_ = torch::log(torch::sqrt(alphas_cumprod_)) - torch::log(torch::sqrt(1 - alphas_cumprod_));
}

void DPMSolverMultistepScheduler::set_timesteps(int64_t n) {
  const int64_t T = config_.schedule.num_train_timesteps;
  // torch.searchsorted(flip(lambda_t), lambda_min_clipped): how many (ascending) lambdas lie below the cut.
  auto below = (lambda_t_ < config_.lambda_min_clipped).sum().item<int64_t>();
  timesteps_ = dpm_timesteps(config_.schedule.timestep_spacing, T, T - below, n, config_.schedule.steps_offset);
  auto picked = multistep::sigmas_at(alphas_cumprod_, timesteps_);  // [n]
  auto last = config_.final_sigmas_type == DPMSolverConfig::FinalSigmas::kZero ? torch::zeros({1}, torch::kFloat32)
                                                                               : multistep::sigma_min(alphas_cumprod_);
  sigmas_ = torch::cat({picked, last});  // [n + 1]
  x0_history_.clear();
  step_index_ = 0;
  lower_order_nums_ = 0;
}

at::Tensor DPMSolverMultistepScheduler::step(const at::Tensor& model_output, int64_t t, const at::Tensor& sample) {
  multistep::check_step_call("DPM-Solver++", timesteps_, step_index_, t, model_output, sample);
  const size_t n = timesteps_.size();
  const auto i = static_cast<int64_t>(step_index_);
  // 0-dim float32 CPU tensors, as diffusers keeps its sigmas: they combine with device tensors as scalars, without
  // a copy or a synchronisation.
  auto sig = [&](int64_t k) { return sigmas_[k]; };

  const bool few = n < 15;
  const bool lower_order_final =
      step_index_ == n - 1 && (config_.euler_at_final || (config_.lower_order_final && few) ||
                               config_.final_sigmas_type == DPMSolverConfig::FinalSigmas::kZero);
  // (diffusers' lower_order_second only chooses between orders 2 and 3; order 3 is not implemented.)

  // convert_model_output: the data prediction x0 (in the model output's dtype, as diffusers keeps it).
  const auto s0 = alpha_sigma(sig(i));
  at::Tensor x0;
  switch (config_.schedule.prediction_type) {
    case PredictionType::kEpsilon: x0 = (sample - s0.sigma * model_output) / s0.alpha; break;
    case PredictionType::kSample: x0 = model_output; break;
    case PredictionType::kVPrediction: x0 = s0.alpha * sample - s0.sigma * model_output; break;
  }
  x0_history_.push_back(x0);
  if (static_cast<int>(x0_history_.size()) > config_.solver_order) x0_history_.erase(x0_history_.begin());

  const auto x = sample.to(torch::kFloat32);  // diffusers upcasts the sample for the update
  const auto st = alpha_sigma(sig(i + 1));
  const auto h = st.lambda - s0.lambda;
  const auto em1 = torch::exp(-h) - 1.0;  // exp(-h) - 1
  at::Tensor prev;
  if (config_.solver_order == 1 || lower_order_nums_ < 1 || lower_order_final) {
    // first order (DDIM in the data-prediction form)
    prev = (st.sigma / s0.sigma) * x - (st.alpha * em1) * x0;
  } else {
    const auto s1 = alpha_sigma(sig(i - 1));
    const auto& m0 = x0_history_.back();
    const auto& m1 = x0_history_[x0_history_.size() - 2];
    const auto h0 = s0.lambda - s1.lambda;
    const auto r0 = h0 / h;
    const auto& D0 = m0;
    const auto D1 = (1.0 / r0) * (m0 - m1);
    if (config_.solver_type == DPMSolverConfig::SolverType::kMidpoint)
      prev = (st.sigma / s0.sigma) * x - (st.alpha * em1) * D0 - 0.5 * (st.alpha * em1) * D1;
    else
      prev = (st.sigma / s0.sigma) * x - (st.alpha * em1) * D0 + (st.alpha * (em1 / h + 1.0)) * D1;
  }
  if (lower_order_nums_ < config_.solver_order) ++lower_order_nums_;
  ++step_index_;
  return prev.to(model_output.scalar_type());
}

}  // namespace emo::sampling
