// diffusers.schedulers.scheduling_ddim.DDIMScheduler (v0.27.2): config parsing, the model-output
// parameterisations and the DDIM step. Scalars are 0-dim float32 tensors combined in diffusers'
// order of operations, so results match the reference bit for bit on CPU.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "emo/error.h"
#include "emo/scheduler.h"

namespace emo::sampling {

namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& source, const std::string& key, const std::string& why) {
  throw ModelError(source + ": scheduler key '" + key + "' " + why);
}

template <typename T>
void read_number(const json& j, const char* key, T& out, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if (!it->is_number()) bad(source, key, "must be a number, got " + it->dump());
  if constexpr (std::is_integral_v<T>) {
    if (!it->is_number_integer()) bad(source, key, "must be an integer, got " + it->dump());
  }
  out = it->get<T>();
}

void read_bool(const json& j, const char* key, bool& out, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if (!it->is_boolean()) bad(source, key, "must be true or false, got " + it->dump());
  out = it->get<bool>();
}

template <typename E, size_t N>
void read_enum(const json& j, const char* key, E& out, const std::pair<const char*, E> (&names)[N],
               const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if (!it->is_string()) bad(source, key, "must be a string, got " + it->dump());
  const auto value = it->get<std::string>();
  std::string allowed;
  for (const auto& [name, e] : names) {
    if (value == name) {
      out = e;
      return;
    }
    allowed += std::string(allowed.empty() ? "" : ", ") + name;
  }
  bad(source, key, "has unsupported value '" + value + "' (supported: " + allowed + ")");
}

const std::pair<const char*, BetaSchedule> kBetaSchedules[] = {
    {"linear", BetaSchedule::kLinear},
    {"scaled_linear", BetaSchedule::kScaledLinear},
    {"squaredcos_cap_v2", BetaSchedule::kSquaredCosCapV2},
};
const std::pair<const char*, TimestepSpacing> kSpacings[] = {
    {"leading", TimestepSpacing::kLeading},
    {"trailing", TimestepSpacing::kTrailing},
    {"linspace", TimestepSpacing::kLinspace},
};
const std::pair<const char*, PredictionType> kPredictionTypes[] = {
    {"epsilon", PredictionType::kEpsilon},
    {"v_prediction", PredictionType::kVPrediction},
    {"sample", PredictionType::kSample},
};

}  // namespace

DDIMSchedulerConfig DDIMSchedulerConfig::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw ModelError(source + ": scheduler config must be a JSON object");
  DDIMSchedulerConfig c;
  read_number(j, "num_train_timesteps", c.num_train_timesteps, source);
  read_number(j, "beta_start", c.beta_start, source);
  read_number(j, "beta_end", c.beta_end, source);
  read_enum(j, "beta_schedule", c.beta_schedule, kBetaSchedules, source);
  if (auto it = j.find("trained_betas"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) bad(source, "trained_betas", "must be null or an array of numbers");
    for (const auto& v : *it) {
      if (!v.is_number()) bad(source, "trained_betas", "must be null or an array of numbers");
      c.trained_betas.push_back(v.get<double>());
    }
  }
  read_bool(j, "clip_sample", c.clip_sample, source);
  read_number(j, "clip_sample_range", c.clip_sample_range, source);
  read_bool(j, "set_alpha_to_one", c.set_alpha_to_one, source);
  read_number(j, "steps_offset", c.steps_offset, source);
  read_enum(j, "prediction_type", c.prediction_type, kPredictionTypes, source);
  read_enum(j, "timestep_spacing", c.timestep_spacing, kSpacings, source);
  read_bool(j, "rescale_betas_zero_snr", c.rescale_betas_zero_snr, source);
  bool thresholding = false;
  read_bool(j, "thresholding", thresholding, source);
  if (thresholding) bad(source, "thresholding", "is true: dynamic thresholding (pixel-space models) is not supported");

  if (c.num_train_timesteps < 1) bad(source, "num_train_timesteps", "must be >= 1");
  if (c.steps_offset < 0) bad(source, "steps_offset", "must be >= 0");
  if (!c.trained_betas.empty() && static_cast<int64_t>(c.trained_betas.size()) != c.num_train_timesteps)
    bad(source, "trained_betas", "must have num_train_timesteps entries");
  if (c.clip_sample && !(c.clip_sample_range > 0)) bad(source, "clip_sample_range", "must be > 0");
  return c;
}

DDIMSchedulerConfig DDIMSchedulerConfig::from_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::string file = path;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    file.clear();
    for (const char* name : {"scheduler_config.json", "config.json"}) {
      auto candidate = (fs::path(path) / name).string();
      if (fs::is_regular_file(candidate, ec)) {
        file = candidate;
        break;
      }
    }
    if (file.empty()) throw ModelError(path + ": no scheduler_config.json or config.json in the folder");
  }
  std::ifstream in(file);
  if (!in) throw ModelError(file + ": cannot open scheduler config");
  json j;
  try {
    in >> j;
  } catch (const json::exception& e) {
    throw ModelError(file + ": invalid JSON: " + e.what());
  }
  return from_json(j, file);
}

// ---- parameterisation ----------------------------------------------------------------------------

X0Eps to_x0_eps(PredictionType type, const at::Tensor& model_output, const at::Tensor& sample,
                const at::Tensor& alpha_prod_t) {
  auto beta_prod_t = 1 - alpha_prod_t;
  X0Eps r;
  switch (type) {
    case PredictionType::kEpsilon:
      r.x0 = (sample - beta_prod_t.pow(0.5) * model_output) / alpha_prod_t.pow(0.5);
      r.eps = model_output;
      break;
    case PredictionType::kSample:
      r.x0 = model_output;
      r.eps = (sample - alpha_prod_t.pow(0.5) * r.x0) / beta_prod_t.pow(0.5);
      break;
    case PredictionType::kVPrediction:
      r.x0 = alpha_prod_t.pow(0.5) * sample - beta_prod_t.pow(0.5) * model_output;
      r.eps = alpha_prod_t.pow(0.5) * model_output + beta_prod_t.pow(0.5) * sample;
      break;
  }
  return r;
}

// ---- step ----------------------------------------------------------------------------------------

at::Tensor ddim_step(const X0Eps& pred, const at::Tensor& alpha_prod_t, const at::Tensor& alpha_prod_t_prev,
                     double eta, const at::Tensor& noise) {
  // sigma_t^2 = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)   (diffusers _get_variance)
  auto variance = ((1 - alpha_prod_t_prev) / (1 - alpha_prod_t)) * (1 - alpha_prod_t / alpha_prod_t_prev);
  auto std_dev_t = eta * variance.pow(0.5);
  auto direction = (1 - alpha_prod_t_prev - std_dev_t.pow(2)).pow(0.5) * pred.eps;
  auto prev = alpha_prod_t_prev.pow(0.5) * pred.x0 + direction;
  if (eta > 0) {
    if (!noise.defined() || noise.sizes() != pred.x0.sizes())
      throw UsageError("ddim_step: eta > 0 needs a noise tensor shaped like the sample");
    prev = prev + variance.pow(0.5) * eta * noise;
  }
  return prev;
}

// ---- scheduler -----------------------------------------------------------------------------------

DDIMScheduler::DDIMScheduler(DDIMSchedulerConfig config)
    : config_(std::move(config)), schedule_(make_noise_schedule(config_)) {}

void DDIMScheduler::set_timesteps(int64_t n) {
  timesteps_ = make_timesteps(config_.timestep_spacing, config_.num_train_timesteps, n, config_.steps_offset);
  num_inference_steps_ = n;
}

at::Tensor DDIMScheduler::alpha_prod(int64_t t) const {
  if (t >= config_.num_train_timesteps)
    throw UsageError("DDIM: timestep " + std::to_string(t) + " out of range [0, " +
                     std::to_string(config_.num_train_timesteps) + ")");
  return t >= 0 ? schedule_.alphas_cumprod[t] : schedule_.final_alpha_cumprod;
}

StepOutput DDIMScheduler::step(const at::Tensor& model_output, int64_t t, const at::Tensor& sample, double eta,
                               const at::Tensor& noise) const {
  if (num_inference_steps_ < 1) throw UsageError("DDIM: step() called before set_timesteps()");
  if (t < 0) throw UsageError("DDIM: negative timestep " + std::to_string(t));
  if (model_output.sizes() != sample.sizes())
    throw UsageError("DDIM: model output and sample shapes differ");
  const int64_t prev_t = t - config_.num_train_timesteps / num_inference_steps_;
  auto a_t = alpha_prod(t);
  auto a_prev = alpha_prod(prev_t);
  auto pred = to_x0_eps(config_.prediction_type, model_output, sample, a_t);
  if (config_.clip_sample) pred.x0 = pred.x0.clamp(-config_.clip_sample_range, config_.clip_sample_range);
  StepOutput out;
  out.prev_sample = ddim_step(pred, a_t, a_prev, eta, noise);
  out.pred_original_sample = pred.x0;
  return out;
}

at::Tensor DDIMScheduler::add_noise(const at::Tensor& x0, const at::Tensor& noise, int64_t t) const {
  if (t < 0) throw UsageError("DDIM: negative timestep " + std::to_string(t));
  auto a = alpha_prod(t).to(x0.device(), x0.scalar_type());
  return a.pow(0.5) * x0 + (1 - a).pow(0.5) * noise;
}

at::Tensor sample_loop(const DDIMScheduler& scheduler, const Denoiser& denoise, at::Tensor x,
                       const std::function<void(size_t, int64_t, const at::Tensor&)>& on_step) {
  const auto& ts = scheduler.timesteps();
  for (size_t i = 0; i < ts.size(); ++i) {
    auto model_output = denoise(scheduler.scale_model_input(x, ts[i]), ts[i]);
    x = scheduler.step(model_output, ts[i], x).prev_sample;
    if (on_step) on_step(i, ts[i], x);
  }
  return x;
}

}  // namespace emo::sampling
