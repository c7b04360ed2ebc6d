// diffusers.schedulers.scheduling_unipc_multistep.UniPCMultistepScheduler (v0.27.2): the unified predictor-corrector
// of arXiv 2302.04867 with the B(h) coefficients (bh1: B(h) = h, bh2: B(h) = e^h - 1), orders 1 to 3, in the data- or
// noise-prediction form. Scalars are 0-dim float32 CPU tensors combined in diffusers' order of operations (they act
// as scalars on device tensors: no copy, no synchronisation); tests/golden/test_multistep_solvers.cpp holds it to the
// reference (tests/data/unipc, made by scripts/golden/make_multistep_fixtures.py).
#include <torch/torch.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "emo/error.h"
#include "emo/scheduler.h"
#include "multistep_common.h"

namespace emo::sampling {

UniPCConfig UniPCConfig::from_json(const nlohmann::json& j, const std::string& source) {
  UniPCConfig c;
  c.schedule = DDIMSchedulerConfig::from_json(j, source);
  if (!multistep::find(j, "timestep_spacing"))
    c.schedule.timestep_spacing = TimestepSpacing::kLinspace;  // UniPC's default
  // diffusers 0.27.2's UniPC takes no rescale_betas_zero_snr argument: from_config drops the key, the betas stay.
  c.schedule.rescale_betas_zero_snr = false;

  c.solver_order = multistep::read_int(j, "solver_order", c.solver_order, source);
  if (c.solver_order < 1 || c.solver_order > 3)
    multistep::fail(source, "solver_order", "must be 1, 2 or 3, got " + std::to_string(c.solver_order));
  c.predict_x0 = multistep::read_bool(j, "predict_x0", c.predict_x0, source);
  const auto solver = multistep::read_string(j, "solver_type", "bh2", source);
  if (solver == "bh1")
    c.solver_type = SolverType::kBH1;
  else if (solver == "bh2" || solver == "midpoint" || solver == "heun" || solver == "logrho")
    c.solver_type = SolverType::kBH2;
  else
    multistep::fail(source, "solver_type", "has unsupported value '" + solver + "' (supported: bh1, bh2)");
  c.lower_order_final = multistep::read_bool(j, "lower_order_final", c.lower_order_final, source);
  if (const auto* v = multistep::find(j, "disable_corrector")) {
    if (!v->is_array())
      multistep::fail(source, "disable_corrector", "must be a list of step indices, got " + v->dump());
    for (const auto& e : *v) {
      if (!e.is_number_integer())
        multistep::fail(source, "disable_corrector", "must be a list of step indices, got " + v->dump());
      c.disable_corrector.push_back(e.get<int64_t>());
    }
  }
  if (multistep::find(j, "solver_p"))
    multistep::fail(source, "solver_p", "is set: an external predictor is not supported");
  if (multistep::read_bool(j, "use_karras_sigmas", false, source))
    multistep::fail(source, "use_karras_sigmas", "is true: not implemented");
  return c;
}

UniPCMultistepScheduler::UniPCMultistepScheduler(UniPCConfig config) : config_(std::move(config)) {
  alphas_cumprod_ = make_noise_schedule(config_.schedule).alphas_cumprod;  // [T] float32
}

void UniPCMultistepScheduler::set_timesteps(int64_t n) {
  const int64_t T = config_.schedule.num_train_timesteps;
  timesteps_ = dpm_timesteps(config_.schedule.timestep_spacing, T, T, n, config_.schedule.steps_offset);
  sigmas_ =
      torch::cat({multistep::sigmas_at(alphas_cumprod_, timesteps_), multistep::sigma_min(alphas_cumprod_)});  // [n+1]
  outputs_.clear();
  last_sample_ = at::Tensor();
  step_index_ = 0;
  lower_order_nums_ = 0;
  this_order_ = 0;
}

// multistep_uni_p_bh_update (model_t undefined: from = i, to = i + 1) and multistep_uni_c_bh_update (from = i - 1,
// to = i), which differ only in the weights' last row. outputs_.back() is the converted output at sigmas_[from], the
// k-th before it the one at sigmas_[from - k].
at::Tensor UniPCMultistepScheduler::update(const at::Tensor& x, int64_t from, int64_t to, int order,
                                           const at::Tensor& model_t) const {
  const bool corrector = model_t.defined();
  const auto at_t = multistep::alpha_sigma(sigmas_[to]);
  const auto at_s0 = multistep::alpha_sigma(sigmas_[from]);
  const auto& m0 = outputs_.back();
  const auto h = at_t.lambda - at_s0.lambda;

  std::vector<at::Tensor> rks, D1s;
  for (int k = 1; k < order; ++k) {
    const auto& mk = outputs_[outputs_.size() - 1 - static_cast<size_t>(k)];
    const auto rk = (multistep::alpha_sigma(sigmas_[from - k]).lambda - at_s0.lambda) / h;
    rks.push_back(rk);
    D1s.push_back((mk - m0) / rk);
  }
  rks.push_back(torch::ones({}, torch::kFloat32));
  const auto r = torch::stack(rks);  // [order]

  const auto hh = config_.predict_x0 ? -h : h;
  const auto h_phi_1 = torch::expm1(hh);  // h phi_1(h) = e^h - 1
  auto h_phi_k = h_phi_1 / hh - 1;
  const auto B_h = config_.solver_type == UniPCConfig::SolverType::kBH1 ? hh : torch::expm1(hh);
  std::vector<at::Tensor> R, b;
  int64_t factorial_i = 1;
  for (int i = 1; i <= order; ++i) {
    R.push_back(r.pow(i - 1));
    b.push_back(h_phi_k * factorial_i / B_h);
    factorial_i *= i + 1;
    h_phi_k = h_phi_k / hh - 1.0 / static_cast<double>(factorial_i);
  }
  const auto Rm = torch::stack(R);  // [order, order]
  const auto bv = torch::stack(b);  // [order]

  // The weights of the differences D1s (and, for the corrector, of this step's difference last).
  at::Tensor rhos;
  if (corrector)
    rhos = order == 1 ? torch::full({1}, 0.5, torch::kFloat32) : at::linalg_solve(Rm, bv);
  else if (order == 2)
    rhos = torch::full({1}, 0.5, torch::kFloat32);  // diffusers' simplified order-2 predictor
  else if (order > 2)
    rhos = at::linalg_solve(Rm.slice(0, 0, order - 1).slice(1, 0, order - 1), bv.slice(0, 0, order - 1));

  const auto& scale_x = config_.predict_x0 ? at_t.sigma / at_s0.sigma : at_t.alpha / at_s0.alpha;
  const auto& lead = config_.predict_x0 ? at_t.alpha : at_t.sigma;
  auto x_t = scale_x * x - (lead * h_phi_1) * m0;
  at::Tensor res;  // sum_k rhos[k] D1s[k] (+ rhos[-1] (model_t - m0) for the corrector)
  for (size_t k = 0; k < D1s.size(); ++k) {
    auto term = rhos[static_cast<int64_t>(k)] * D1s[k];
    res = res.defined() ? res + term : term;
  }
  if (corrector) {
    auto term = rhos[-1] * (model_t - m0);
    res = res.defined() ? res + term : term;
  }
  if (res.defined()) x_t = x_t - (lead * B_h) * res;
  return x_t.to(x.scalar_type());
}

at::Tensor UniPCMultistepScheduler::step(const at::Tensor& model_output, int64_t t, const at::Tensor& sample) {
  multistep::check_step_call("UniPC", timesteps_, step_index_, t, model_output, sample);
  const size_t n = timesteps_.size();
  const auto i = static_cast<int64_t>(step_index_);

  // convert_model_output: x0 (predict_x0) or eps at sigmas_[i], in the model output's dtype.
  const auto s = multistep::alpha_sigma(sigmas_[i]);
  at::Tensor m;
  if (config_.predict_x0) {
    switch (config_.schedule.prediction_type) {
      case PredictionType::kEpsilon: m = (sample - s.sigma * model_output) / s.alpha; break;
      case PredictionType::kSample: m = model_output; break;
      case PredictionType::kVPrediction: m = s.alpha * sample - s.sigma * model_output; break;
    }
  } else {
    switch (config_.schedule.prediction_type) {
      case PredictionType::kEpsilon: m = model_output; break;
      case PredictionType::kSample: m = (sample - s.alpha * model_output) / s.sigma; break;
      case PredictionType::kVPrediction: m = s.alpha * model_output + s.sigma * sample; break;
    }
  }

  // UniC: correct the sample the last predictor produced, with this step's model output (no extra evaluation).
  const auto& off = config_.disable_corrector;
  const bool use_corrector = i > 0 && last_sample_.defined() && std::find(off.begin(), off.end(), i - 1) == off.end();
  const auto x = use_corrector ? update(last_sample_, i - 1, i, this_order_, m) : sample;

  outputs_.push_back(m);
  if (static_cast<int>(outputs_.size()) > config_.solver_order) outputs_.erase(outputs_.begin());
  int order = config_.solver_order;
  if (config_.lower_order_final) order = std::min<int>(order, static_cast<int>(n - step_index_));
  this_order_ = std::min(order, lower_order_nums_ + 1);  // warm-up: the history holds lower_order_nums_ + 1 outputs

  // UniP: predict the sample at sigmas_[i + 1].
  last_sample_ = x;
  auto prev = update(x, i, i + 1, this_order_, at::Tensor());
  if (lower_order_nums_ < config_.solver_order) ++lower_order_nums_;
  ++step_index_;
  return prev;
}

}  // namespace emo::sampling
