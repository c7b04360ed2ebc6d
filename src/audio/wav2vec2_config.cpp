#include "audio/wav2vec2_config.h"

#include "emo/error.h"

namespace emo::audio {

Wav2Vec2Config Wav2Vec2Config::from_json(const nlohmann::json& j, const std::string& source) {
  Wav2Vec2Config c;
  try {
    auto get = [&](const char* k, auto& v) {
      if (j.contains(k) && !j[k].is_null()) v = j[k].get<std::decay_t<decltype(v)>>();
    };
    get("conv_dim", c.conv_dim);
    get("conv_kernel", c.conv_kernel);
    get("conv_stride", c.conv_stride);
    get("conv_bias", c.conv_bias);
    get("feat_extract_norm", c.feat_extract_norm);
    get("do_stable_layer_norm", c.do_stable_layer_norm);
    get("hidden_size", c.hidden_size);
    get("intermediate_size", c.intermediate_size);
    get("num_hidden_layers", c.num_hidden_layers);
    get("num_attention_heads", c.num_attention_heads);
    get("num_conv_pos_embeddings", c.num_conv_pos_embeddings);
    get("num_conv_pos_embedding_groups", c.num_conv_pos_embedding_groups);
    get("layer_norm_eps", c.layer_norm_eps);
    if (j.contains("feature_extractor")) {
      const auto& fe = j["feature_extractor"];
      if (fe.contains("sampling_rate")) c.sampling_rate = fe["sampling_rate"].get<int64_t>();
      if (fe.contains("do_normalize")) c.do_normalize = fe["do_normalize"].get<bool>();
    }
    for (const char* k : {"feat_extract_activation", "hidden_act"})
      if (j.contains(k) && j[k].is_string() && j[k].get<std::string>() != "gelu")
        throw ModelError(source + ": wav2vec2 " + k + " '" + j[k].get<std::string>() + "' is not supported (gelu only)");
  } catch (const nlohmann::json::exception& e) {
    throw ModelError(source + ": invalid wav2vec2 config (" + e.what() + ")");
  }
  if (c.conv_dim.empty() || c.conv_dim.size() != c.conv_kernel.size() || c.conv_dim.size() != c.conv_stride.size())
    throw ModelError(source + ": conv_dim, conv_kernel and conv_stride must have the same non-zero length");
  if (c.feat_extract_norm != "group")
    throw ModelError(source + ": feat_extract_norm '" + c.feat_extract_norm + "' is not supported (group only)");
  if (c.do_stable_layer_norm) throw ModelError(source + ": do_stable_layer_norm=true (pre-LN) is not supported");
  if (c.hidden_size <= 0 || c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0)
    throw ModelError(source + ": hidden_size must be a positive multiple of num_attention_heads");
  if (c.num_conv_pos_embedding_groups <= 0 || c.hidden_size % c.num_conv_pos_embedding_groups != 0)
    throw ModelError(source + ": hidden_size must be a multiple of num_conv_pos_embedding_groups");
  return c;
}

int64_t Wav2Vec2Config::total_stride() const {
  int64_t s = 1;
  for (auto v : conv_stride) s *= v;
  return s;
}

int64_t Wav2Vec2Config::receptive_field() const {
  int64_t rf = 1, jump = 1;
  for (size_t i = 0; i < conv_kernel.size(); ++i) {
    rf += (conv_kernel[i] - 1) * jump;
    jump *= conv_stride[i];
  }
  return rf;
}

int64_t Wav2Vec2Config::num_frames(int64_t samples) const {
  int64_t n = samples;
  for (size_t i = 0; i < conv_kernel.size(); ++i) {
    if (n < conv_kernel[i]) return 0;
    n = (n - conv_kernel[i]) / conv_stride[i] + 1;
  }
  return n;
}

}  // namespace emo::audio
