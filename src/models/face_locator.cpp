// hallo.models.face_locator.FaceLocator (hallo @ 8fd7c57). Every conv is an InflatedConv3d: an
// nn.Conv2d applied frame by frame ((b c f h w) -> ((b f) c h w) -> conv -> back).
#include "models/face_locator.h"

#include <nlohmann/json.hpp>

#include "emo/error.h"

namespace emo::models {

namespace {

emo::nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return emo::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1));
}

// InflatedConv3d.forward: x [B, C, F, H, W] -> [B, C', F, H', W']
torch::Tensor inflated(emo::nn::Conv2d& conv, const torch::Tensor& x) {
  const int64_t b = x.size(0), f = x.size(2);
  auto y = x.permute({0, 2, 1, 3, 4}).reshape({b * f, x.size(1), x.size(3), x.size(4)});  // [(B F), C, H, W]
  y = conv->forward(y);                                                                    // [(B F), C', H', W']
  return y.reshape({b, f, y.size(1), y.size(2), y.size(3)}).permute({0, 2, 1, 3, 4});     // [B, C', F, H', W']
}

int64_t positive_int(const nlohmann::json& v, const std::string& source, const char* key) {
  if (!v.is_number_integer() || v.get<int64_t>() < 1)
    throw ModelError(source + ": face_locator '" + key + "' must be a positive integer, got " + v.dump());
  return v.get<int64_t>();
}

}  // namespace

FaceLocatorConfig FaceLocatorConfig::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw ModelError(source + ": face_locator config must be a JSON object");
  FaceLocatorConfig c;
  if (j.contains("conditioning_embedding_channels"))
    c.conditioning_embedding_channels =
        positive_int(j["conditioning_embedding_channels"], source, "conditioning_embedding_channels");
  if (j.contains("conditioning_channels"))
    c.conditioning_channels = positive_int(j["conditioning_channels"], source, "conditioning_channels");
  if (j.contains("block_out_channels")) {
    const auto& a = j["block_out_channels"];
    if (!a.is_array() || a.empty())
      throw ModelError(source + ": face_locator 'block_out_channels' must be a non-empty array");
    c.block_out_channels.clear();
    for (const auto& v : a) c.block_out_channels.push_back(positive_int(v, source, "block_out_channels"));
  }
  return c;
}

FaceLocatorImpl::FaceLocatorImpl(const FaceLocatorConfig& config) : config_(config) {
  const auto& ch = config_.block_out_channels;
  if (ch.empty()) throw ModelError("face_locator: block_out_channels is empty");
  conv_in = register_module("conv_in", conv3x3(config_.conditioning_channels, ch.front(), 1));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (size_t i = 0; i + 1 < ch.size(); ++i) {
    block_convs_.push_back(conv3x3(ch[i], ch[i], 1));
    blocks->push_back(block_convs_.back());
    block_convs_.push_back(conv3x3(ch[i], ch[i + 1], 2));
    blocks->push_back(block_convs_.back());
  }
  conv_out = register_module("conv_out", conv3x3(ch.back(), config_.conditioning_embedding_channels, 1));
}

torch::Tensor FaceLocatorImpl::forward(const torch::Tensor& conditioning) {
  if (conditioning.dim() != 5 || conditioning.size(1) != config_.conditioning_channels)
    throw InputError("face_locator: expected conditioning [B, " + std::to_string(config_.conditioning_channels) +
                     ", F, H, W]");
  auto x = torch::silu(inflated(conv_in, conditioning));  // [B, C0, F, H, W]
  for (auto& conv : block_convs_) x = torch::silu(inflated(conv, x));
  return inflated(conv_out, x);  // [B, C_emb, F, H / 2^k, W / 2^k]
}

}  // namespace emo::models
