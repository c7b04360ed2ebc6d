// transformers.Wav2Vec2Config (the fields the inference forward uses), read from a model's config.json.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace emo::audio {

struct Wav2Vec2Config {
  std::vector<int64_t> conv_dim{512, 512, 512, 512, 512, 512, 512};
  std::vector<int64_t> conv_kernel{10, 3, 3, 3, 3, 2, 2};
  std::vector<int64_t> conv_stride{5, 2, 2, 2, 2, 2, 2};
  bool conv_bias = false;
  std::string feat_extract_norm = "group";  // "group" (base) or "layer" (large-lv60)
  bool do_stable_layer_norm = false;
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t num_conv_pos_embeddings = 128;
  int64_t num_conv_pos_embedding_groups = 16;
  double layer_norm_eps = 1e-5;
  // feature extractor (preprocessor_config.json / the fixture's "feature_extractor")
  int64_t sampling_rate = 16000;
  bool do_normalize = true;

  // Throws ModelError (naming `source`) for unsupported variants (stable layer norm, non-gelu activations).
  static Wav2Vec2Config from_json(const nlohmann::json& j, const std::string& source = "config.json");
  int64_t total_stride() const;           // 320 for the base model
  int64_t receptive_field() const;        // 400 samples for the base model
  int64_t num_frames(int64_t samples) const;  // CNN output length for `samples` input samples
};

}  // namespace emo::audio
