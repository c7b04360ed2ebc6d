#include "models/unet3d/unet_3d.h"

#include <torch/torch.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "emo/error.h"
#include "nn/resnet.h"

namespace emo::models {

namespace {
constexpr const char* kFile_unet_3d = "unet_3d.cpp";

template <typename T>
void read(const nlohmann::json& j, const char* key, T& out) {
  if (j.contains(key) && !j.at(key).is_null()) out = j.at(key).get<T>();
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}
bool contains(const std::vector<int64_t>& v, int64_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

void require_false(const nlohmann::json& j, const char* key) {
  if (j.contains(key) && !j.at(key).is_null() && j.at(key).get<bool>())
    throw ModelError(std::string(kFile_unet_3d) + ": " + key + "=true is not supported");
}
}  // namespace

UNet3DConditionModelConfig UNet3DConditionModelConfig::from_json(const nlohmann::json& j, const nlohmann::json& k) {
  UNet3DConditionModelConfig c;
  read(j, "in_channels", c.in_channels);
  read(j, "out_channels", c.out_channels);
  read(j, "flip_sin_to_cos", c.flip_sin_to_cos);
  read(j, "freq_shift", c.freq_shift);
  read(j, "down_block_types", c.down_block_types);
  read(j, "mid_block_type", c.mid_block_type);
  read(j, "up_block_types", c.up_block_types);
  read(j, "block_out_channels", c.block_out_channels);
  read(j, "layers_per_block", c.layers_per_block);
  read(j, "downsample_padding", c.downsample_padding);
  read(j, "mid_block_scale_factor", c.mid_block_scale_factor);
  read(j, "norm_num_groups", c.norm_num_groups);
  read(j, "norm_eps", c.norm_eps);
  read(j, "cross_attention_dim", c.cross_attention_dim);
  read(j, "center_input_sample", c.center_input_sample);
  // hallo's from_pretrained_2d builds the denoiser from the SD1.5 2-D unet config.json with the block types replaced
  // by their 3-D versions; accept both spellings.
  auto to_3d = [](std::string& t) {
    static const std::pair<const char*, const char*> map[] = {{"CrossAttnDownBlock2D", "CrossAttnDownBlock3D"},
                                                              {"DownBlock2D", "DownBlock3D"},
                                                              {"UpBlock2D", "UpBlock3D"},
                                                              {"CrossAttnUpBlock2D", "CrossAttnUpBlock3D"},
                                                              {"UNetMidBlock2DCrossAttn", "UNetMidBlock3DCrossAttn"}};
    for (const auto& [from, to] : map)
      if (t == from) t = to;
  };
  for (auto& t : c.down_block_types) to_3d(t);
  for (auto& t : c.up_block_types) to_3d(t);
  to_3d(c.mid_block_type);
  if (j.contains("num_class_embeds") && !j.at("num_class_embeds").is_null())
    throw ModelError(std::string(kFile_unet_3d) + ": num_class_embeds is not supported");
  if (j.contains("attention_head_dim")) {
    const auto& a = j.at("attention_head_dim");
    if (a.is_number()) c.attention_head_dim.assign(c.down_block_types.size(), a.get<int64_t>());
    else c.attention_head_dim = a.get<std::vector<int64_t>>();
  } else {
    c.attention_head_dim.assign(c.down_block_types.size(), 8);
  }
  if (j.contains("act_fn") && j.at("act_fn").get<std::string>() != "silu")
    throw ModelError(std::string(kFile_unet_3d) + ": act_fn must be silu");
  require_false(j, "use_linear_projection");
  require_false(j, "dual_cross_attention");
  require_false(j, "only_cross_attention");
  if (j.contains("class_embed_type") && !j.at("class_embed_type").is_null())
    throw ModelError(std::string(kFile_unet_3d) + ": class_embed_type is not supported");
  if (j.contains("resnet_time_scale_shift") && j.at("resnet_time_scale_shift").get<std::string>() != "default")
    throw ModelError(std::string(kFile_unet_3d) + ": resnet_time_scale_shift must be default");

  if (k.contains("use_inflated_groupnorm") && !k.at("use_inflated_groupnorm").get<bool>())
    throw ModelError(std::string(kFile_unet_3d) + ": use_inflated_groupnorm=false (GroupNorm over all frames) is not supported");
  require_false(k, "unet_use_cross_frame_attention");
  require_false(k, "unet_use_temporal_attention");
  read(k, "use_motion_module", c.use_motion_module);
  read(k, "motion_module_resolutions", c.motion_module_resolutions);
  read(k, "motion_module_mid_block", c.motion_module_mid_block);
  read(k, "motion_module_decoder_only", c.motion_module_decoder_only);
  if (c.use_motion_module) {
    if (k.contains("motion_module_type") && k.at("motion_module_type").get<std::string>() != "Vanilla")
      throw ModelError(std::string(kFile_unet_3d) + ": motion_module_type must be Vanilla");
    c.motion = MotionModuleConfig::from_json(0, k.value("motion_module_kwargs", nlohmann::json::object()));
  }
  read(k, "use_audio_module", c.use_audio_module);
  read(k, "audio_attention_dim", c.audio_attention_dim);
  read(k, "stack_enable_blocks_name", c.stack_enable_blocks_name);
  read(k, "stack_enable_blocks_depth", c.stack_enable_blocks_depth);
  read(k, "n_sample_frames", c.clip_frames);
  read(k, "n_motion_frames", c.motion_frames);
  if (k.contains("speed_layers")) c.speed = SpeedLayersConfig::from_json(k.at("speed_layers"));
  if (c.block_out_channels.size() != c.down_block_types.size() || c.up_block_types.size() != c.down_block_types.size() ||
      c.attention_head_dim.size() != c.down_block_types.size())
    throw ModelError(std::string(kFile_unet_3d) + ": block lists of different lengths");
  return c;
}

void UNet3DConditionModelConfig::read_widths_from(const io::StateDict& w, const std::string& prefix) {
  auto widths = [&](const std::string& block) {
    std::vector<int64_t> out;
    for (int64_t i = 0;; ++i) {
      auto it = w.find(prefix + block + ".audio_modules." + std::to_string(i) + ".proj_in.weight");
      if (it == w.end()) break;
      out.push_back(it->second.size(0));
    }
    if (!out.empty()) audio_inner_dims[block] = out;
  };
  for (size_t i = 0; i < down_block_types.size(); ++i) widths("down_blocks." + std::to_string(i));
  widths("mid_block");
  for (size_t i = 0; i < up_block_types.size(); ++i) widths("up_blocks." + std::to_string(i));
  // Speed layers exist exactly when their weights do (a Hallo checkpoint has none: the model is then exactly Hallo).
  auto fc1 = w.find(prefix + "speed_encoder.net.0.weight");
  auto fc2 = w.find(prefix + "speed_encoder.net.2.weight");
  speed.enabled = fc1 != w.end() && fc2 != w.end();
  if (speed.enabled) {
    if (fc1->second.size(1) != speed.input_dim())
      throw ModelError(std::string(kFile_unet_3d) + ": speed_encoder.net.0 takes " + std::to_string(fc1->second.size(1)) +
                       " inputs but the config's buckets and window give " + std::to_string(speed.input_dim()));
    speed.hidden_dim = fc1->second.size(0);
    speed.embed_dim = fc2->second.size(0);
  }
}

UNet3DConditionModelImpl::UNet3DConditionModelImpl(const UNet3DConditionModelConfig& c) : config_(c) {
  const auto& boc = c.block_out_channels;
  const int64_t n = static_cast<int64_t>(boc.size());
  const int64_t temb = boc[0] * 4;
  conv_in = register_module("conv_in", emo::nn::Conv2d(torch::nn::Conv2dOptions(c.in_channels, boc[0], 3).padding(1)));
  time_embedding = register_module("time_embedding", emo::nn::TimestepEmbedding(boc[0], temb));
  if (c.speed.enabled) {
    speed_encoder = register_module("speed_encoder", SpeedEncoder(c.speed));
  }
  auto base = [&](int64_t depth, const std::string& block_name, const std::string& path) {
    UNetBlock3DConfig b;
    b.temb_channels = temb;
    b.resnet_eps = c.norm_eps;
    b.resnet_groups = c.norm_num_groups;
    b.cross_attention_dim = c.cross_attention_dim;
    b.audio_attention_dim = c.audio_attention_dim;
    b.motion = c.motion;
    b.motion.speed_embed_dim = c.speed.enabled ? c.speed.embed_dim : 0;
    b.use_audio_module = c.use_audio_module;
    b.depth = depth;
    b.audio_stack_enabled = contains(c.stack_enable_blocks_name, block_name) && contains(c.stack_enable_blocks_depth, depth);
    auto it = c.audio_inner_dims.find(path);
    if (it != c.audio_inner_dims.end()) b.audio_inner_dims = it->second;
    return b;
  };

  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  int64_t output_channel = boc[0];
  for (int64_t i = 0; i < n; ++i) {
    auto b = base(i, "down", "down_blocks." + std::to_string(i));
    b.in_channels = output_channel;
    output_channel = boc[i];
    b.out_channels = output_channel;
    b.num_layers = c.layers_per_block;
    b.add_sample = i != n - 1;
    b.downsample_padding = c.downsample_padding;
    b.attn_num_head_channels = c.attention_head_dim[i];
    b.use_motion_module = c.use_motion_module && contains(c.motion_module_resolutions, int64_t{1} << i) &&
                          !c.motion_module_decoder_only;
    const auto& type = c.down_block_types[i];
    if (type == "CrossAttnDownBlock3D") {
      CrossAttnDownBlock3D blk(b);
      down_blocks->push_back(blk);
      down_xattn_.push_back(blk);
      down_plain_.push_back(nullptr);
    } else if (type == "DownBlock3D") {
      b.use_audio_module = false;
      DownBlock3D blk(b);
      down_blocks->push_back(blk);
      down_xattn_.push_back(nullptr);
      down_plain_.push_back(blk);
    } else {
      throw ModelError(std::string(kFile_unet_3d) + ": unknown down block type " + type);
    }
  }

  // hallo assigns mid_block AFTER registering the (then empty) up_blocks list, so the registration (and DFS) order
  // is down_blocks, up_blocks, mid_block. Registration order does not matter for loading; readers_ keeps it.
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  if (c.mid_block_type != "UNetMidBlock3DCrossAttn")
    throw ModelError(std::string(kFile_unet_3d) + ": unknown mid block type " + c.mid_block_type);
  {
    auto b = base(3, "mid", "mid_block");
    b.in_channels = boc.back();
    b.out_channels = boc.back();
    b.num_layers = 1;
    b.output_scale_factor = c.mid_block_scale_factor;
    b.attn_num_head_channels = c.attention_head_dim.back();
    b.use_motion_module = c.use_motion_module && c.motion_module_mid_block;
    mid_block = UNetMidBlock3DCrossAttn(b);
  }
  std::vector<int64_t> rev(boc.rbegin(), boc.rend());
  std::vector<int64_t> rev_heads(c.attention_head_dim.rbegin(), c.attention_head_dim.rend());
  output_channel = rev[0];
  for (int64_t i = 0; i < n; ++i) {
    auto b = base(3 - i, "up", "up_blocks." + std::to_string(i));
    b.prev_output_channel = output_channel;
    output_channel = rev[i];
    b.out_channels = output_channel;
    b.in_channels = rev[std::min(i + 1, n - 1)];
    b.num_layers = c.layers_per_block + 1;
    b.add_sample = i != n - 1;
    b.attn_num_head_channels = rev_heads[i];
    b.use_motion_module = c.use_motion_module && contains(c.motion_module_resolutions, int64_t{1} << (3 - i));
    const auto& type = c.up_block_types[i];
    if (type == "CrossAttnUpBlock3D") {
      CrossAttnUpBlock3D blk(b);
      up_blocks->push_back(blk);
      up_xattn_.push_back(blk);
      up_plain_.push_back(nullptr);
    } else if (type == "UpBlock3D") {
      b.use_audio_module = false;
      UpBlock3D blk(b);
      up_blocks->push_back(blk);
      up_xattn_.push_back(nullptr);
      up_plain_.push_back(blk);
    } else {
      throw ModelError(std::string(kFile_unet_3d) + ": unknown up block type " + type);
    }
  }
  register_module("mid_block", mid_block);
  conv_norm_out = register_module(
      "conv_norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(c.norm_num_groups, boc[0]).eps(c.norm_eps)));
  conv_out = register_module("conv_out", emo::nn::Conv2d(torch::nn::Conv2dOptions(boc[0], c.out_channels, 3).padding(1)));

  // Reader blocks: DFS (down, up, mid), then stable sort by width descending.
  auto add = [&](const std::string& path, const std::vector<Transformer3DModel>& attns) {
    for (size_t a = 0; a < attns.size(); ++a) {
      const auto& blocks = attns[a]->spatial_blocks();
      for (size_t t = 0; t < blocks.size(); ++t)
        readers_.emplace_back(path + ".attentions." + std::to_string(a) + ".transformer_blocks." + std::to_string(t),
                              blocks[t]);
    }
  };
  for (size_t i = 0; i < down_xattn_.size(); ++i)
    if (down_xattn_[i]) add("down_blocks." + std::to_string(i), down_xattn_[i]->attention_modules());
  for (size_t i = 0; i < up_xattn_.size(); ++i)
    if (up_xattn_[i]) add("up_blocks." + std::to_string(i), up_xattn_[i]->attention_modules());
  add("mid_block", mid_block->attention_modules());
  std::stable_sort(readers_.begin(), readers_.end(),
                   [](const auto& a, const auto& b) { return a.second->width() > b.second->width(); });
}

std::vector<TemporalBasicTransformerBlock> UNet3DConditionModelImpl::reader_blocks() const {
  std::vector<TemporalBasicTransformerBlock> out;
  for (const auto& r : readers_) out.push_back(r.second);
  return out;
}

std::vector<std::string> UNet3DConditionModelImpl::reader_block_names() const {
  std::vector<std::string> out;
  for (const auto& r : readers_) out.push_back(r.first);
  return out;
}

void UNet3DConditionModelImpl::set_reference_banks(const std::vector<torch::Tensor>& banks) {
  if (banks.empty()) {
    for (auto& r : readers_) r.second->set_bank({});
    return;
  }
  if (banks.size() != readers_.size())
    throw InputError(std::string(kFile_unet_3d) + ": " + std::to_string(banks.size()) + " reference banks for " +
                     std::to_string(readers_.size()) + " reader blocks");
  for (size_t i = 0; i < banks.size(); ++i) {
    const auto& bank = banks[i];
    auto& r = readers_[i];
    if (bank.dim() != 3 || bank.size(2) != r.second->width() || bank.size(0) % (1 + config_.motion_frames) != 0)
      throw InputError(std::string(kFile_unet_3d) + ": bank " + std::to_string(i) + " for " + r.first + " must be [B * (1 + " +
                       std::to_string(config_.motion_frames) + "), L, " + std::to_string(r.second->width()) + "]");
    // ReferenceAttentionControl.update(writer, dtype=torch.float16): banks are stored as fp16 and promoted back by
    // torch.cat inside the fp32 attention.
    // In fp16/bf16 runs the bank keeps the run's dtype after the fp16 rounding.
    r.second->set_bank(bank.to(torch::kHalf).to(bank.scalar_type()));
  }
}

torch::Tensor UNet3DConditionModelImpl::speed_tokens(const torch::Tensor& head_speed, int64_t frames, int64_t batch) {
  if (!speed_encoder || !head_speed.defined()) return {};
  auto w = head_speed;
  if (w.dim() == 1) w = w.unsqueeze(0);
  if (w.size(0) == 1 && batch > 1) w = w.expand({batch, w.size(1)});
  const auto m = config_.motion_frames;
  if (w.size(1) == frames && m > 0) {
    // Speeds given for the clip only: the motion frames take the first clip frame's speed.
    w = torch::cat({w.slice(1, 0, 1).expand({w.size(0), m}), w}, 1);
  }
  if (w.size(0) != batch || w.size(1) != frames + m)
    throw InputError(std::string(kFile_unet_3d) + ": head speed must be [B, F] or [B, motion_frames + F]");
  return speed_encoder->forward(w);  // [B, M + F, S]
}

torch::Tensor UNet3DConditionModelImpl::forward(const torch::Tensor& sample_in, const torch::Tensor& timestep,
                                                const UNet3DConditions& cond) {
  if (sample_in.dim() != 5 || sample_in.size(1) != config_.in_channels)
    throw InputError(std::string(kFile_unet_3d) + ": sample must be [B, " + std::to_string(config_.in_channels) + ", F, H, W]");
  if (!cond.encoder_hidden_states.defined())
    throw InputError(std::string(kFile_unet_3d) + ": encoder_hidden_states (image tokens) are required");
  const auto b = sample_in.size(0), f = sample_in.size(2);
  auto sample = config_.center_input_sample ? sample_in * 2.0 - 1.0 : sample_in;

  const int64_t up_factor = int64_t{1} << (config_.block_out_channels.size() - 1);
  const bool forward_upsample_size = sample.size(3) % up_factor != 0 || sample.size(4) % up_factor != 0;

  auto t = timestep.dim() == 0 ? timestep.unsqueeze(0) : timestep;
  t = t.to(sample.device()).expand({b});
  auto t_emb = emo::nn::timestep_embedding(t, config_.block_out_channels[0], config_.flip_sin_to_cos, config_.freq_shift);
  auto emb = time_embedding->forward(t_emb.to(sample.dtype()));  // [B, temb]

  auto h = emo::nn::unfold_frames(conv_in->forward(emo::nn::fold_frames(sample)), f);  // [B, C0, F, H, W]
  if (cond.mask_cond_fea.defined()) h = h + cond.mask_cond_fea.to(h.dtype());

  auto speed = speed_tokens(cond.head_speed, f, b);

  std::vector<torch::Tensor> res{h};
  for (size_t i = 0; i < down_xattn_.size(); ++i) {
    if (down_xattn_[i]) h = down_xattn_[i]->forward(h, emb, cond, speed, res);
    else h = down_plain_[i]->forward(h, emb, cond, speed, res);
  }
  h = mid_block->forward(h, emb, cond, speed);
  for (size_t i = 0; i < up_xattn_.size(); ++i) {
    const bool is_final = i + 1 == up_xattn_.size();
    const size_t used = up_xattn_[i] ? up_xattn_[i]->num_resnets() : up_plain_[i]->num_resnets();
    std::vector<int64_t> upsample_size;
    if (!is_final && forward_upsample_size) {
      const auto& next = res[res.size() - used - 1];  // down_block_res_samples[-1] after this block's skips
      upsample_size = {next.size(3), next.size(4)};
    }
    if (up_xattn_[i]) h = up_xattn_[i]->forward(h, res, emb, cond, speed, upsample_size);
    else h = up_plain_[i]->forward(h, res, emb, cond, speed, upsample_size);
  }
  auto out = torch::silu(conv_norm_out->forward(emo::nn::fold_frames(h)));  // InflatedGroupNorm: per frame
  return emo::nn::unfold_frames(conv_out->forward(out), f);                  // [B, Cout, F, H, W]
}

}  // namespace emo::models
