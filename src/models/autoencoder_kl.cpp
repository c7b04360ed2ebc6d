#include "models/autoencoder_kl.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "emo/error.h"
#include "util/json_config.h"

namespace emo::models {

namespace {

using json = nlohmann::json;

using util::has;
using util::value_or;

emo::nn::Conv2d conv3(int64_t in, int64_t out) {
  return emo::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1));
}

nn::VaeBlockConfig mid_config(const AutoencoderKLConfig& c) {
  nn::VaeBlockConfig m;
  m.in_channels = m.out_channels = c.block_out_channels.back();
  m.num_layers = 1;
  m.groups = c.norm_num_groups;
  m.eps = 1e-6;
  m.attention_head_dim = c.block_out_channels.back();
  m.add_attention = c.mid_block_add_attention;
  return m;
}

}  // namespace

AutoencoderKLConfig AutoencoderKLConfig::from_json(const nlohmann::json& j, const std::string& source) {
  AutoencoderKLConfig c;
  try {
    if (has(j, "act_fn") && j.at("act_fn") != "silu")
      throw ModelError(source + ": unsupported VAE act_fn " + j.at("act_fn").dump());
    c.in_channels = value_or<int64_t>(j, "in_channels", c.in_channels);
    c.out_channels = value_or<int64_t>(j, "out_channels", c.out_channels);
    c.block_out_channels = value_or<std::vector<int64_t>>(j, "block_out_channels", c.block_out_channels);
    c.layers_per_block = value_or<int64_t>(j, "layers_per_block", c.layers_per_block);
    c.latent_channels = value_or<int64_t>(j, "latent_channels", c.latent_channels);
    c.norm_num_groups = value_or<int64_t>(j, "norm_num_groups", c.norm_num_groups);
    c.scaling_factor = value_or<double>(j, "scaling_factor", c.scaling_factor);
    c.use_quant_conv = value_or<bool>(j, "use_quant_conv", c.use_quant_conv);
    c.use_post_quant_conv = value_or<bool>(j, "use_post_quant_conv", c.use_post_quant_conv);
    c.mid_block_add_attention = value_or<bool>(j, "mid_block_add_attention", c.mid_block_add_attention);
    const auto n = c.block_out_channels.size();
    auto down = value_or<std::vector<std::string>>(j, "down_block_types",
                                                   std::vector<std::string>(n, "DownEncoderBlock2D"));
    auto up = value_or<std::vector<std::string>>(j, "up_block_types", std::vector<std::string>(n, "UpDecoderBlock2D"));
    if (n == 0 || down.size() != n || up.size() != n)
      throw ModelError(source + ": VAE block types and block_out_channels differ in length");
    for (const auto& t : down)
      if (t != "DownEncoderBlock2D") throw ModelError(source + ": unsupported VAE down block type " + t);
    for (const auto& t : up)
      if (t != "UpDecoderBlock2D") throw ModelError(source + ": unsupported VAE up block type " + t);
    if (has(j, "shift_factor") && j.at("shift_factor").get<double>() != 0.0)
      throw ModelError(source + ": VAE shift_factor is not supported");
  } catch (const nlohmann::json::exception& e) {
    throw ModelError(source + ": invalid VAE config: " + e.what());
  }
  return c;
}

std::string AutoencoderKLConfig::summary() const {
  std::ostringstream s;
  s << "AutoencoderKL: in " << in_channels << ", out " << out_channels << ", latent " << latent_channels
    << ", block_out_channels [";
  for (size_t i = 0; i < block_out_channels.size(); ++i) s << (i ? ", " : "") << block_out_channels[i];
  s << "], layers_per_block " << layers_per_block << ", norm groups " << norm_num_groups << ", scaling_factor "
    << scaling_factor;
  return s.str();
}

VaeEncoderImpl::VaeEncoderImpl(const AutoencoderKLConfig& c) {
  const auto& ch = c.block_out_channels;
  conv_in = register_module("conv_in", conv3(c.in_channels, ch[0]));
  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  int64_t out = ch[0];
  for (size_t i = 0; i < ch.size(); ++i) {
    nn::VaeBlockConfig b;
    b.in_channels = out;
    out = ch[i];
    b.out_channels = out;
    b.num_layers = c.layers_per_block;
    b.groups = c.norm_num_groups;
    b.add_sample = i + 1 < ch.size();
    b.downsample_padding = 0;
    down_.emplace_back(b);
    down_blocks->push_back(down_.back());
  }
  mid_block = register_module("mid_block", nn::UNetMidBlock2D(mid_config(c)));
  conv_norm_out = register_module(
      "conv_norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(c.norm_num_groups, ch.back()).eps(1e-6)));
  conv_out = register_module("conv_out", conv3(ch.back(), 2 * c.latent_channels));
}

torch::Tensor VaeEncoderImpl::forward(const torch::Tensor& x) {
  auto h = conv_in->forward(x);                       // [B, C0, H, W]
  for (auto& d : down_) h = d->forward(h);
  h = mid_block->forward(h);                          // [B, Cn, h, w]
  return conv_out->forward(torch::silu(conv_norm_out->forward(h)));  // [B, 2*latent, h, w]
}

VaeDecoderImpl::VaeDecoderImpl(const AutoencoderKLConfig& c) {
  const auto& ch = c.block_out_channels;
  const size_t n = ch.size();
  conv_in = register_module("conv_in", conv3(c.latent_channels, ch.back()));
  mid_block = register_module("mid_block", nn::UNetMidBlock2D(mid_config(c)));
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  int64_t out = ch.back();
  for (size_t i = 0; i < n; ++i) {
    nn::VaeBlockConfig b;
    b.in_channels = out;
    out = ch[n - 1 - i];
    b.out_channels = out;
    b.num_layers = c.layers_per_block + 1;
    b.groups = c.norm_num_groups;
    b.add_sample = i + 1 < n;
    up_.emplace_back(b);
    up_blocks->push_back(up_.back());
  }
  conv_norm_out = register_module(
      "conv_norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(c.norm_num_groups, ch[0]).eps(1e-6)));
  conv_out = register_module("conv_out", conv3(ch[0], c.out_channels));
}

torch::Tensor VaeDecoderImpl::forward(const torch::Tensor& z) {
  auto h = conv_in->forward(z);                       // [B, Cn, h, w]
  h = mid_block->forward(h);
  for (auto& u : up_) h = u->forward(h);              // [B, C0, H, W]
  return conv_out->forward(torch::silu(conv_norm_out->forward(h)));  // [B, Cout, H, W]
}

AutoencoderKLImpl::AutoencoderKLImpl(const AutoencoderKLConfig& c) : config_(c) {
  encoder = register_module("encoder", VaeEncoder(c));
  decoder = register_module("decoder", VaeDecoder(c));
  const int64_t l = c.latent_channels;
  if (c.use_quant_conv)
    quant_conv = register_module("quant_conv", emo::nn::Conv2d(torch::nn::Conv2dOptions(2 * l, 2 * l, 1)));
  if (c.use_post_quant_conv)
    post_quant_conv = register_module("post_quant_conv", emo::nn::Conv2d(torch::nn::Conv2dOptions(l, l, 1)));
}

std::pair<torch::Tensor, torch::Tensor> AutoencoderKLImpl::encode(const torch::Tensor& x) {
  auto moments = encoder->forward(x);                 // [N, 2*latent, h, w]
  if (quant_conv) moments = quant_conv->forward(moments);
  auto parts = moments.chunk(2, 1);
  return {parts[0], parts[1].clamp(-30.0, 20.0)};
}

torch::Tensor AutoencoderKLImpl::decode(const torch::Tensor& z) {
  auto h = post_quant_conv ? post_quant_conv->forward(z) : z;  // [N, latent, h, w]
  return decoder->forward(h);                                  // [N, Cout, H, W]
}

void AutoencoderKLImpl::decode_chunked(const torch::Tensor& z, int64_t chunk,
                                       const std::function<void(int64_t, const torch::Tensor&)>& sink) {
  const int64_t n = z.size(0);
  if (chunk <= 0) chunk = n;
  for (int64_t first = 0; first < n; first += chunk) {
    const int64_t last = std::min(n, first + chunk);
    sink(first, decode(z.slice(0, first, last)));
  }
}

}  // namespace emo::models
