#include "models/unet3d/face_locator.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "emo/error.h"
#include "nn/resnet.h"

namespace emo::models {

FaceLocatorConfig FaceLocatorConfig::from_json(const nlohmann::json& j) {
  FaceLocatorConfig c;
  c.conditioning_embedding_channels = j.value("conditioning_embedding_channels", c.conditioning_embedding_channels);
  c.conditioning_channels = j.value("conditioning_channels", c.conditioning_channels);
  if (j.contains("block_out_channels")) c.block_out_channels = j.at("block_out_channels").get<std::vector<int64_t>>();
  if (c.block_out_channels.empty()) throw ModelError("face_locator.cpp: block_out_channels is empty");
  return c;
}

FaceLocatorImpl::FaceLocatorImpl(const FaceLocatorConfig& c) {
  using torch::nn::Conv2dOptions;
  const auto& boc = c.block_out_channels;
  conv_in = register_module("conv_in", torch::nn::Conv2d(Conv2dOptions(c.conditioning_channels, boc[0], 3).padding(1)));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (size_t i = 0; i + 1 < boc.size(); ++i) {
    blocks_.emplace_back(Conv2dOptions(boc[i], boc[i], 3).padding(1));
    blocks_.emplace_back(Conv2dOptions(boc[i], boc[i + 1], 3).padding(1).stride(2));
  }
  for (auto& b : blocks_) blocks->push_back(b);
  conv_out = register_module(
      "conv_out", torch::nn::Conv2d(Conv2dOptions(boc.back(), c.conditioning_embedding_channels, 3).padding(1)));
  torch::NoGradGuard g;  // zero_module
  conv_out->weight.zero_();
  conv_out->bias.zero_();
}

torch::Tensor FaceLocatorImpl::forward(const torch::Tensor& conditioning) {
  if (conditioning.dim() != 5) throw InputError("face_locator.cpp: conditioning must be [B, C, F, H, W]");
  const auto f = conditioning.size(2);
  auto h = torch::silu(conv_in->forward(emo::nn::fold_frames(conditioning)));  // [(B F), C, H, W]
  for (auto& b : blocks_) h = torch::silu(b->forward(h));
  return emo::nn::unfold_frames(conv_out->forward(h), f);  // [B, C0, F, H', W']
}

}  // namespace emo::models
