// Internal to src/sampling: what the multistep solvers (DPM-Solver++, UniPC) share. Reading the keys they add to the
// DDIM noise-schedule keys (every bad value is a ModelError naming the config, `source`, and the key), the VP-process
// helpers, the sigma table and the checks of a step() call.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <algorithm>
#include <string>
#include <vector>

#include "emo/error.h"

namespace emo::sampling::multistep {

[[noreturn]] inline void fail(const std::string& source, const std::string& key, const std::string& why) {
  throw ModelError(source + ": scheduler key '" + key + "' " + why);
}

// The key's value, or nullptr when it is absent or null (diffusers' "use the default").
inline const nlohmann::json* find(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return (it == j.end() || it->is_null()) ? nullptr : &*it;
}

inline bool read_bool(const nlohmann::json& j, const char* key, bool fallback, const std::string& source) {
  const auto* v = find(j, key);
  if (!v) return fallback;
  if (!v->is_boolean()) fail(source, key, "must be true or false, got " + v->dump());
  return v->get<bool>();
}

inline std::string read_string(const nlohmann::json& j, const char* key, const std::string& fallback,
                               const std::string& source) {
  const auto* v = find(j, key);
  if (!v) return fallback;
  if (!v->is_string()) fail(source, key, "must be a string, got " + v->dump());
  return v->get<std::string>();
}

inline int read_int(const nlohmann::json& j, const char* key, int fallback, const std::string& source) {
  const auto* v = find(j, key);
  if (!v) return fallback;
  if (!v->is_number_integer()) fail(source, key, "must be an integer, got " + v->dump());
  return v->get<int>();
}

// alpha_t, sigma_t and lambda_t = log(alpha_t) - log(sigma_t) of the VP process at noise level sigma
// (diffusers' _sigma_to_alpha_sigma_t), as 0-dim float32 tensors in diffusers' order of operations.
struct AlphaSigma {
  at::Tensor alpha, sigma, lambda;
};
inline AlphaSigma alpha_sigma(const at::Tensor& sigma) {
  AlphaSigma r;
  r.alpha = 1 / (sigma.pow(2) + 1).pow(0.5);
  r.sigma = sigma * r.alpha;
  r.lambda = torch::log(r.alpha) - torch::log(r.sigma);
  return r;
}

// sqrt((1 - a) / a) of alphas_cumprod [T] float32 at each timestep (np.interp of the table: clamped at the ends), [n].
inline at::Tensor sigmas_at(const at::Tensor& alphas_cumprod, const std::vector<int64_t>& timesteps) {
  const int64_t T = alphas_cumprod.size(0);
  auto all = ((1 - alphas_cumprod) / alphas_cumprod).pow(0.5);  // [T] float32
  std::vector<int64_t> idx;
  for (int64_t t : timesteps) idx.push_back(std::clamp<int64_t>(t, 0, T - 1));
  return all.index_select(0, torch::tensor(idx, torch::kLong));
}

// sigma_min = sqrt((1 - a_0) / a_0), as diffusers computes its "sigma_min" final sigma, [1].
inline at::Tensor sigma_min(const at::Tensor& alphas_cumprod) {
  return ((1 - alphas_cumprod[0]) / alphas_cumprod[0]).pow(0.5).reshape({1});
}

// The multistep solvers keep a history, so step() must see the timesteps of set_timesteps() in order: a UsageError
// (prefixed with `who`) otherwise, or when the model output and the sample differ in shape.
inline void check_step_call(const char* who, const std::vector<int64_t>& timesteps, size_t step_index, int64_t t,
                            const at::Tensor& model_output, const at::Tensor& sample) {
  const std::string w(who);
  if (timesteps.empty()) throw UsageError(w + ": step() called before set_timesteps()");
  if (step_index >= timesteps.size()) throw UsageError(w + ": step() called after the last timestep");
  if (t != timesteps[step_index])
    throw UsageError(w + ": step " + std::to_string(step_index) + " expects timestep " +
                     std::to_string(timesteps[step_index]) + ", got " + std::to_string(t));
  if (model_output.sizes() != sample.sizes()) throw UsageError(w + ": model output and sample shapes differ");
}

}  // namespace emo::sampling::multistep
