#include "models/unet3d/speed_encoder.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "emo/error.h"

namespace emo::models {

namespace {
constexpr const char* kFile_speed_encoder = "speed_encoder.cpp";
}

SpeedLayersConfig SpeedLayersConfig::from_json(const nlohmann::json& j) {
  SpeedLayersConfig c;
  c.enabled = j.value("enabled", c.enabled);
  if (j.contains("centers")) c.centers = j.at("centers").get<std::vector<double>>();
  if (j.contains("radii")) c.radii = j.at("radii").get<std::vector<double>>();
  c.window = j.value("window", c.window);
  c.hidden_dim = j.value("hidden_dim", c.hidden_dim);
  c.embed_dim = j.value("embed_dim", c.embed_dim);
  c.validate();
  return c;
}

void SpeedLayersConfig::validate() const {
  if (centers.empty() || centers.size() != radii.size())
    throw ModelError(std::string(kFile_speed_encoder) + ": speed buckets need as many radii as centers (and at least one)");
  for (double r : radii)
    if (!(r > 0)) throw ModelError(std::string(kFile_speed_encoder) + ": speed bucket radii must be > 0");
  if (window < 0 || hidden_dim <= 0 || embed_dim <= 0)
    throw ModelError(std::string(kFile_speed_encoder) + ": invalid speed window / widths");
}

torch::Tensor speed_buckets(const torch::Tensor& w, const SpeedLayersConfig& c) {
  auto opts = w.options().dtype(torch::kFloat);
  auto centers = torch::tensor(std::vector<float>(c.centers.begin(), c.centers.end()), opts);  // [d]
  auto radii = torch::tensor(std::vector<float>(c.radii.begin(), c.radii.end()), opts);
  return torch::tanh((w.to(torch::kFloat).unsqueeze(-1) - centers) / radii * 3.0);  // [B, T, d]
}

torch::Tensor speed_windows(const torch::Tensor& s, int64_t m) {
  const auto t = s.size(1);
  std::vector<torch::Tensor> parts;
  auto base = torch::arange(t, torch::TensorOptions().dtype(torch::kLong).device(s.device()));
  for (int64_t o = -m; o <= m; ++o) parts.push_back(s.index_select(1, (base + o).clamp(0, t - 1)));
  return torch::cat(parts, -1);  // [B, T, (2m+1) d]
}

SpeedEncoderImpl::SpeedEncoderImpl(const SpeedLayersConfig& c) : config_(c) {
  c.validate();
  fc1_ = emo::nn::Linear(c.input_dim(), c.hidden_dim);
  fc2_ = emo::nn::Linear(c.hidden_dim, c.embed_dim);
  net = register_module("net", torch::nn::ModuleList());
  net->push_back(fc1_);
  net->push_back(torch::nn::SiLU());
  net->push_back(fc2_);
}

torch::Tensor SpeedEncoderImpl::forward(const torch::Tensor& w) {
  if (w.dim() != 2) throw InputError(std::string(kFile_speed_encoder) + ": head speed must be [B, T]");
  auto x = speed_windows(speed_buckets(w, config_), config_.window).to(fc1_->weight.dtype());
  return fc2_->forward(torch::silu(fc1_->forward(x)));  // [B, T, embed_dim]
}

}  // namespace emo::models
