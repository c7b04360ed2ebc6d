// Internal to src/sampling: reading the keys of a diffusers scheduler config that the multistep solvers
// (DPM-Solver++, UniPC) add to the DDIM noise-schedule keys, and the VP-process helpers they share.
// Every bad value is a ModelError naming the config (`source`) and the key.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>

#include "emo/error.h"

namespace emo::sampling::keys {

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

}  // namespace emo::sampling::keys
