// EMO speed layers, part 1: the speed encoder (EMO paper §3.3; no public reference, our definition —
// docs/speed-layers.md). Per-frame head rotation speed w (degrees / frame) -> d bucket activations
// s_i = tanh((w - c_i) / r_i * 3) -> the buckets of frames t-m..t+m concatenated (edge frames clamped) ->
// MLP (Linear, SiLU, Linear) -> one speed token per frame. Part 2 (the cross-attention inside every temporal
// module) lives in motion_module.h. Children: net.0 (Linear), net.1 (SiLU), net.2 (Linear).
#pragma once
#include "nn/layers.h"
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

#include <nlohmann/json_fwd.hpp>
#include <vector>

namespace emo::models {

struct SpeedLayersConfig {
  bool enabled = false;  // off = exactly Hallo (no speed_encoder / speed_attn weights)
  std::vector<double> centers{0, 1, 2, 3, 4, 5, 6, 7, 8};  // c_i, degrees per frame
  std::vector<double> radii{1, 1, 1, 1, 1, 1, 1, 1, 1};    // r_i
  int64_t window = 2;        // m: frames on each side (window 2m+1)
  int64_t hidden_dim = 512;
  int64_t embed_dim = 768;   // speed token width (= key/value width of every speed_attn)
  int64_t buckets() const { return static_cast<int64_t>(centers.size()); }
  int64_t input_dim() const { return (2 * window + 1) * buckets(); }
  // {"enabled": bool, "centers": [...], "radii": [...], "window": m, "hidden_dim": n, "embed_dim": n}
  static SpeedLayersConfig from_json(const nlohmann::json& j);
  void validate() const;  // throws ModelError
};

// w [B, T] -> [B, T, d]
torch::Tensor speed_buckets(const torch::Tensor& w, const SpeedLayersConfig& config);
// s [B, T, d] -> [B, T, (2m+1) d]: frames t-m .. t+m, indices clamped to [0, T-1]
torch::Tensor speed_windows(const torch::Tensor& s, int64_t m);

class SpeedEncoderImpl : public torch::nn::Module {
 public:
  explicit SpeedEncoderImpl(const SpeedLayersConfig& config);
  torch::Tensor forward(const torch::Tensor& w);  // [B, T] degrees/frame -> [B, T, embed_dim]
  torch::nn::ModuleList net{nullptr};

 private:
  SpeedLayersConfig config_;
  emo::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(SpeedEncoder);

}  // namespace emo::models
