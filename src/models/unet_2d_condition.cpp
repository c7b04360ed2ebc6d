#include "models/unet_2d_condition.h"

#include <torch/torch.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "emo/error.h"
#include "util/json_config.h"

namespace emo::models {

namespace {

using json = nlohmann::json;

using util::has;
using util::value_or;

// int or list of ints; a single value is broadcast to n entries.
std::vector<int64_t> int_list(const json& j, const char* key, std::vector<int64_t> def, size_t n,
                              const std::string& source) {
  std::vector<int64_t> v = def;
  if (has(j, key)) {
    const auto& x = j.at(key);
    if (x.is_number()) v = {x.get<int64_t>()};
    else if (x.is_array()) v = x.get<std::vector<int64_t>>();
    else throw ModelError(source + ": '" + key + "' must be an int or a list of ints");
  }
  if (v.size() == 1 && n > 1) v.assign(n, v[0]);
  if (v.size() != n)
    throw ModelError(source + ": '" + key + "' has " + std::to_string(v.size()) + " entries, expected " +
                     std::to_string(n));
  return v;
}

void require_default(const json& j, const char* key, const json& expected, const std::string& source) {
  if (!has(j, key)) return;
  if (j.at(key) != expected)
    throw ModelError(source + ": unsupported UNet option " + key + "=" + j.at(key).dump() +
                     " (this port implements " + expected.dump() + ")");
}

void require_null(const json& j, const char* key, const std::string& source) {
  if (has(j, key))
    throw ModelError(source + ": unsupported UNet option " + key + "=" + j.at(key).dump() + " (only null)");
}

emo::nn::Conv2d conv(int64_t in, int64_t out, int64_t k) {
  return emo::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).padding((k - 1) / 2));
}

}  // namespace

UNet2DConditionConfig UNet2DConditionConfig::from_json(const nlohmann::json& j, const std::string& source) {
  UNet2DConditionConfig c;
  try {
    for (const char* k : {"class_embed_type", "addition_embed_type", "encoder_hid_dim", "encoder_hid_dim_type",
                          "time_cond_proj_dim", "timestep_post_act", "time_embedding_dim", "time_embedding_act_fn",
                          "cross_attention_norm", "num_class_embeds", "projection_class_embeddings_input_dim"})
      require_null(j, k, source);
    require_default(j, "act_fn", "silu", source);
    require_default(j, "time_embedding_type", "positional", source);
    require_default(j, "resnet_time_scale_shift", "default", source);
    require_default(j, "dual_cross_attention", false, source);
    require_default(j, "resnet_skip_time_act", false, source);
    require_default(j, "attention_type", "default", source);
    require_default(j, "class_embeddings_concat", false, source);

    c.in_channels = value_or<int64_t>(j, "in_channels", c.in_channels);
    c.out_channels = value_or<int64_t>(j, "out_channels", c.out_channels);
    c.center_input_sample = value_or<bool>(j, "center_input_sample", c.center_input_sample);
    c.flip_sin_to_cos = value_or<bool>(j, "flip_sin_to_cos", c.flip_sin_to_cos);
    c.freq_shift = value_or<double>(j, "freq_shift", c.freq_shift);
    c.down_block_types = value_or<std::vector<std::string>>(j, "down_block_types", c.down_block_types);
    c.up_block_types = value_or<std::vector<std::string>>(j, "up_block_types", c.up_block_types);
    c.mid_block_type = value_or<std::string>(j, "mid_block_type", c.mid_block_type);
    c.block_out_channels = value_or<std::vector<int64_t>>(j, "block_out_channels", c.block_out_channels);
    const size_t n = c.block_out_channels.size();
    if (c.down_block_types.size() != n || c.up_block_types.size() != n)
      throw ModelError(source + ": down_block_types, up_block_types and block_out_channels differ in length");
    for (const auto& t : c.down_block_types)
      if (t != "CrossAttnDownBlock2D" && t != "DownBlock2D")
        throw ModelError(source + ": unsupported down block type " + t);
    for (const auto& t : c.up_block_types)
      if (t != "CrossAttnUpBlock2D" && t != "UpBlock2D") throw ModelError(source + ": unsupported up block type " + t);
    if (c.mid_block_type != "UNetMidBlock2DCrossAttn")
      throw ModelError(source + ": unsupported mid_block_type " + c.mid_block_type);

    c.only_cross_attention.assign(n, false);
    if (has(j, "only_cross_attention")) {
      const auto& o = j.at("only_cross_attention");
      if (o.is_boolean()) c.only_cross_attention.assign(n, o.get<bool>());
      else c.only_cross_attention = o.get<std::vector<bool>>();
      if (c.only_cross_attention.size() != n) throw ModelError(source + ": only_cross_attention length mismatch");
    }
    c.layers_per_block = int_list(j, "layers_per_block", {2}, n, source);
    c.downsample_padding = value_or<int64_t>(j, "downsample_padding", c.downsample_padding);
    c.mid_block_scale_factor = value_or<double>(j, "mid_block_scale_factor", c.mid_block_scale_factor);
    c.norm_num_groups = value_or<int64_t>(j, "norm_num_groups", c.norm_num_groups);
    c.norm_eps = value_or<double>(j, "norm_eps", c.norm_eps);
    c.cross_attention_dim = int_list(j, "cross_attention_dim", {1280}, n, source);
    c.transformer_layers_per_block = int_list(j, "transformer_layers_per_block", {1}, n, source);
    if (has(j, "reverse_transformer_layers_per_block"))
      throw ModelError(source + ": reverse_transformer_layers_per_block is not supported");
    // diffusers: num_attention_heads = num_attention_heads or attention_head_dim (SD's attention_head_dim is the
    // number of heads).
    c.num_attention_heads = has(j, "num_attention_heads") ? int_list(j, "num_attention_heads", {8}, n, source)
                                                          : int_list(j, "attention_head_dim", {8}, n, source);
    c.use_linear_projection = value_or<bool>(j, "use_linear_projection", c.use_linear_projection);
    c.conv_in_kernel = value_or<int64_t>(j, "conv_in_kernel", c.conv_in_kernel);
    c.conv_out_kernel = value_or<int64_t>(j, "conv_out_kernel", c.conv_out_kernel);
    for (size_t i = 0; i < n; ++i)
      if (c.block_out_channels[i] % c.num_attention_heads[i] != 0)
        throw ModelError(source + ": block_out_channels not divisible by the number of attention heads");
  } catch (const nlohmann::json::exception& e) {
    throw ModelError(source + ": invalid UNet config: " + e.what());
  }
  return c;
}

std::string UNet2DConditionConfig::summary() const {
  std::ostringstream s;
  auto list = [&](const auto& v) {
    s << "[";
    for (size_t i = 0; i < v.size(); ++i) s << (i ? ", " : "") << v[i];
    s << "]";
  };
  s << (reference_net ? "ReferenceNet (UNet2DConditionModel, no conv_out)" : "UNet2DConditionModel") << ": in "
    << in_channels << ", out " << out_channels << ", block_out_channels ";
  list(block_out_channels);
  s << ", layers_per_block ";
  list(layers_per_block);
  s << ", heads ";
  list(num_attention_heads);
  s << ", cross_attention_dim ";
  list(cross_attention_dim);
  s << ", norm " << norm_num_groups << " groups eps " << norm_eps << ", down ";
  list(down_block_types);
  s << ", up ";
  list(up_block_types);
  return s.str();
}

UNet2DConditionModelImpl::UNet2DConditionModelImpl(const UNet2DConditionConfig& c) : config_(c) {
  const auto& ch = c.block_out_channels;
  const size_t n = ch.size();
  const int64_t temb = ch[0] * 4;
  conv_in = register_module("conv_in", conv(c.in_channels, ch[0], c.conv_in_kernel));
  time_embedding = register_module("time_embedding", nn::TimestepEmbedding(ch[0], temb));

  auto base = [&](size_t i) {
    nn::UNetBlock2DConfig b;
    b.temb_channels = temb;
    b.resnet_eps = c.norm_eps;
    b.resnet_groups = c.norm_num_groups;
    b.use_linear_projection = c.use_linear_projection;
    b.transformer_layers_per_block = c.transformer_layers_per_block[i];
    b.cross_attention_dim = c.cross_attention_dim[i];
    b.num_attention_heads = c.num_attention_heads[i];
    b.only_cross_attention = c.only_cross_attention.empty() ? false : c.only_cross_attention[i];
    return b;
  };

  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  int64_t out_ch = ch[0];
  for (size_t i = 0; i < n; ++i) {
    auto b = base(i);
    b.in_channels = out_ch;
    out_ch = ch[i];
    b.out_channels = out_ch;
    b.num_layers = c.layers_per_block[i];
    b.has_cross_attention = c.down_block_types[i] == "CrossAttnDownBlock2D";
    b.add_downsample = i + 1 < n;
    b.downsample_padding = c.downsample_padding;
    down_.emplace_back(b);
    down_blocks->push_back(down_.back());
  }

  // Registration order as in hallo/diffusers: up_blocks before mid_block (matters only for DFS-ordered banks,
  // which transformer_blocks_in_bank_order() reproduces explicitly).
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  out_ch = ch[n - 1];
  for (size_t i = 0; i < n; ++i) {
    const size_t r = n - 1 - i;  // reversed index
    auto b = base(r);
    b.prev_output_channel = out_ch;
    out_ch = ch[r];
    b.out_channels = out_ch;
    b.in_channels = ch[r == 0 ? 0 : r - 1];
    b.num_layers = c.layers_per_block[r] + 1;
    b.has_cross_attention = c.up_block_types[i] == "CrossAttnUpBlock2D";
    b.add_upsample = i + 1 < n;
    b.only_cross_attention = c.only_cross_attention.empty() ? false : c.only_cross_attention[r];
    up_.emplace_back(b);
    up_blocks->push_back(up_.back());
  }

  auto m = base(n - 1);
  m.in_channels = ch[n - 1];
  m.num_layers = 1;
  m.output_scale_factor = c.mid_block_scale_factor;
  m.only_cross_attention = false;
  mid_block = register_module("mid_block", nn::UNetMidBlock2DCrossAttn(m));

  if (!c.reference_net) {
    conv_norm_out = register_module(
        "conv_norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(c.norm_num_groups, ch[0]).eps(c.norm_eps)));
    conv_out = register_module("conv_out", conv(ch[0], c.out_channels, c.conv_out_kernel));
  }
}

torch::Tensor UNet2DConditionModelImpl::forward(const torch::Tensor& sample_in, const torch::Tensor& timestep,
                                                const torch::Tensor& ehs) {
  const int64_t b = sample_in.size(0);
  int64_t num_upsamplers = 0;
  for (const auto& u : up_) num_upsamplers += u->has_upsampler() ? 1 : 0;
  const int64_t factor = int64_t{1} << num_upsamplers;
  const bool forward_upsample_size = sample_in.size(-2) % factor != 0 || sample_in.size(-1) % factor != 0;

  auto sample = config_.center_input_sample ? 2 * sample_in - 1.0 : sample_in;  // [B, Cin, H, W]
  auto t = timestep.dim() == 0 ? timestep.reshape({1}) : timestep;
  t = t.to(sample.device()).expand({b});                                          // [B]
  auto t_emb = nn::timestep_embedding(t, config_.block_out_channels[0], config_.flip_sin_to_cos,
                                      config_.freq_shift).to(sample.scalar_type());  // [B, C0]
  auto emb = time_embedding->forward(t_emb);                                          // [B, 4*C0]

  sample = conv_in->forward(sample);                                                  // [B, C0, H, W]
  std::vector<torch::Tensor> skips{sample};
  for (auto& d : down_) sample = d->forward(sample, emb, ehs, skips);
  sample = mid_block->forward(sample, emb, ehs);                                      // [B, Cn, H/f, W/f]
  for (size_t i = 0; i < up_.size(); ++i) {
    std::optional<std::vector<int64_t>> size;
    const bool is_final = i + 1 == up_.size();
    if (!is_final && forward_upsample_size) {
      const auto idx = static_cast<int64_t>(skips.size()) - up_[i]->num_layers() - 1;
      if (idx >= 0) size = skips[idx].sizes().slice(2).vec();
    }
    sample = up_[i]->forward(sample, emb, ehs, skips, size);
  }
  if (config_.reference_net) return sample;                                           // [B, C0, H, W]
  sample = torch::silu(conv_norm_out->forward(sample));
  return conv_out->forward(sample);                                                   // [B, Cout, H, W]
}

namespace {
void append_blocks(std::vector<nn::BasicTransformerBlock>& out, const std::vector<nn::Transformer2DModel>& ts) {
  for (const auto& t : ts)
    for (const auto& blk : t->blocks()) out.push_back(blk);
}
}  // namespace

std::vector<nn::BasicTransformerBlock> UNet2DConditionModelImpl::transformer_blocks_in_bank_order() const {
  std::vector<nn::BasicTransformerBlock> out;
  for (const auto& d : down_) append_blocks(out, d->transformers());
  for (const auto& u : up_) append_blocks(out, u->transformers());
  append_blocks(out, mid_block->transformers());
  std::stable_sort(out.begin(), out.end(), [](const nn::BasicTransformerBlock& a, const nn::BasicTransformerBlock& b) {
    return a->dim() > b->dim();
  });
  return out;
}

std::vector<torch::Tensor> UNet2DConditionModelImpl::write_banks(const torch::Tensor& sample,
                                                                 const torch::Tensor& timestep,
                                                                 const torch::Tensor& ehs) {
  auto blocks = transformer_blocks_in_bank_order();
  struct Reset {  // back to plain mode even when forward throws
    std::vector<nn::BasicTransformerBlock>& blocks;
    ~Reset() {
      for (auto& b : blocks) {
        b->set_reference_mode(nn::ReferenceMode::kOff);
        b->clear_bank();
      }
    }
  } reset{blocks};
  for (auto& blk : blocks) blk->set_reference_mode(nn::ReferenceMode::kWrite);
  // The forward's output is not used: the block that runs last (forward order down, mid, up) only writes its bank.
  std::vector<nn::BasicTransformerBlock> run_order;
  for (const auto& d : down_) append_blocks(run_order, d->transformers());
  append_blocks(run_order, mid_block->transformers());
  for (const auto& u : up_) append_blocks(run_order, u->transformers());
  if (!run_order.empty()) run_order.back()->set_reference_mode(nn::ReferenceMode::kWriteBankOnly);
  forward(sample, timestep, ehs);
  std::vector<torch::Tensor> banks;
  banks.reserve(blocks.size());
  for (auto& blk : blocks) banks.push_back(blk->bank());  // [B, H*W, C]
  return banks;
}

}  // namespace emo::models
