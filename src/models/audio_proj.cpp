// hallo.models.audio_proj.AudioProjModel
#include "models/audio_proj.h"

#include "emo/error.h"

namespace emo::models {

AudioProjConfig AudioProjConfig::from_json(const nlohmann::json& j) {
  AudioProjConfig c;
  auto get = [&](const char* k, int64_t& v) {
    if (j.contains(k)) v = j[k].get<int64_t>();
  };
  get("seq_len", c.seq_len);
  get("blocks", c.blocks);
  get("channels", c.channels);
  get("intermediate_dim", c.intermediate_dim);
  get("output_dim", c.output_dim);
  get("context_tokens", c.context_tokens);
  return c;
}

AudioProjModelImpl::AudioProjModelImpl(const AudioProjConfig& c) : config(c) {
  const int64_t in = c.seq_len * c.blocks * c.channels;
  proj1 = register_module("proj1", emo::nn::Linear(in, c.intermediate_dim));
  proj2 = register_module("proj2", emo::nn::Linear(c.intermediate_dim, c.intermediate_dim));
  proj3 = register_module("proj3", emo::nn::Linear(c.intermediate_dim, c.context_tokens * c.output_dim));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.output_dim}).eps(1e-5)));
}

torch::Tensor AudioProjModelImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 5, "AudioProjModel expects [B, F, window, blocks, channels]");
  const auto b = x.size(0), f = x.size(1);
  auto h = x.reshape({b * f, -1});                 // [(B F), window * blocks * channels]
  h = torch::relu(proj1(h));                       // [(B F), intermediate]
  h = torch::relu(proj2(h));
  h = proj3(h).reshape({b * f, config.context_tokens, config.output_dim});  // [(B F), tokens, out]
  return norm(h).reshape({b, f, config.context_tokens, config.output_dim});  // [B, F, tokens, out]
}

}  // namespace emo::models
