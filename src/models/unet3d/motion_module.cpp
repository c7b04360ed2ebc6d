#include "models/unet3d/motion_module.h"

#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "emo/compat.h"
#include "emo/error.h"
#include "nn/resnet.h"

namespace emo::models {

namespace {
constexpr const char* kFile_motion_module = "motion_module.cpp";
}

MotionModuleConfig MotionModuleConfig::from_json(int64_t in_channels, const nlohmann::json& j) {
  MotionModuleConfig c;
  c.in_channels = in_channels;
  c.num_attention_heads = j.value("num_attention_heads", c.num_attention_heads);
  c.num_transformer_block = j.value("num_transformer_block", c.num_transformer_block);
  if (j.contains("attention_block_types")) c.attention_block_types = j.at("attention_block_types").get<std::vector<std::string>>();
  c.temporal_position_encoding = j.value("temporal_position_encoding", c.temporal_position_encoding);
  c.temporal_position_encoding_max_len = j.value("temporal_position_encoding_max_len", c.temporal_position_encoding_max_len);
  c.temporal_attention_dim_div = j.value("temporal_attention_dim_div", c.temporal_attention_dim_div);
  if (j.contains("cross_frame_attention_mode") && !j.at("cross_frame_attention_mode").is_null())
    throw ModelError(std::string(kFile_motion_module) + ": cross_frame_attention_mode is not supported");
  return c;
}

// ---- PositionalEncoding -------------------------------------------------------------------------

PositionalEncodingImpl::PositionalEncodingImpl(int64_t d_model, int64_t max_len) {
  auto position = torch::arange(max_len, torch::kFloat).unsqueeze(1);                                  // [L, 1]
  auto div_term = torch::exp(torch::arange(0, d_model, 2, torch::kFloat) * (-std::log(10000.0) / d_model));  // [C/2]
  auto table = torch::zeros({1, max_len, d_model});
  table.index_put_({0, torch::indexing::Slice(), torch::indexing::Slice(0, torch::indexing::None, 2)},
                   torch::sin(position * div_term));
  table.index_put_({0, torch::indexing::Slice(), torch::indexing::Slice(1, torch::indexing::None, 2)},
                   torch::cos(position * div_term));
  pe = register_buffer("pe", table);
}

torch::Tensor PositionalEncodingImpl::forward(const torch::Tensor& x) {
  if (x.size(1) > pe.size(1))
    throw InputError(std::string(kFile_motion_module) + ": " + std::to_string(x.size(1)) +
                     " frames exceed the positional encoding length " + std::to_string(pe.size(1)));
  return x + pe.slice(1, 0, x.size(1));  // [N, F, C]
}

// ---- VersatileAttention -------------------------------------------------------------------------

VersatileAttentionImpl::VersatileAttentionImpl(const emo::nn::AttentionConfig& config, bool position_encoding,
                                               int64_t max_len)
    : emo::nn::AttentionImpl(config) {
  if (position_encoding) pos_encoder = register_module("pos_encoder", PositionalEncoding(config.query_dim, max_len));
}

torch::Tensor VersatileAttentionImpl::forward_temporal(const torch::Tensor& x, int64_t video_length, int64_t skip) {
  const auto bf = x.size(0), d = x.size(1), c = x.size(2), b = bf / video_length, kept = video_length - skip;
  // '(b f) d c -> (b d) f c'
  auto h = x.view({b, video_length, d, c}).permute({0, 2, 1, 3}).reshape({b * d, video_length, c});
  if (pos_encoder) h = pos_encoder->forward(h);
  // Self-attention over the frames, [(B D), kept, C]; with skip, the kept frames query every frame's keys/values.
  h = skip > 0 ? AttentionImpl::forward(h.slice(1, skip), h) : AttentionImpl::forward(h);
  // '(b d) f c -> (b f) d c'
  return h.view({b, d, kept, c}).permute({0, 2, 1, 3}).reshape({b * kept, d, c});
}

// ---- TemporalTransformerBlock -------------------------------------------------------------------

TemporalTransformerBlockImpl::TemporalTransformerBlockImpl(const MotionModuleConfig& c) {
  const int64_t dim = c.inner_dim();
  attention_blocks = register_module("attention_blocks", torch::nn::ModuleList());
  norms = register_module("norms", torch::nn::ModuleList());
  for (const auto& type : c.attention_block_types) {
    if (type != "Temporal_Self")
      throw ModelError(std::string(kFile_motion_module) + ": attention block type '" + type + "' is not supported (Temporal_Self only)");
    emo::nn::AttentionConfig ac;
    ac.query_dim = dim;
    ac.heads = c.num_attention_heads;
    ac.dim_head = c.head_dim();
    ac.bias = false;
    VersatileAttention a(ac, c.temporal_position_encoding, c.temporal_position_encoding_max_len);
    torch::nn::LayerNorm n(torch::nn::LayerNormOptions({dim}));
    attention_blocks->push_back(a);
    norms->push_back(n);
    attn_.push_back(a);
    norm_.push_back(n);
  }
  ff = register_module("ff", emo::nn::FeedForward(emo::nn::FeedForwardConfig{dim, 0, 4}));
  ff_norm = register_module("ff_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
}

namespace {
// [(B F), D, C] -> the rows of frames skip.. : [(B (F - skip)), D, C]
torch::Tensor drop_leading_frames(const torch::Tensor& x, int64_t frames, int64_t skip) {
  if (skip == 0) return x;
  const auto b = x.size(0) / frames;
  return x.view({b, frames, x.size(1), x.size(2)}).slice(1, skip).reshape({b * (frames - skip), x.size(1), x.size(2)});
}
}  // namespace

torch::Tensor TemporalTransformerBlockImpl::forward(const torch::Tensor& x, int64_t video_length, int64_t skip) {
  if (skip < 0 || skip >= video_length)
    throw InputError(std::string(kFile_motion_module) + ": cannot skip " + std::to_string(skip) + " of " +
                     std::to_string(video_length) + " frames");
  auto h = x;  // [(B F), D, C]
  for (size_t i = 0; i < attn_.size(); ++i) {
    const bool last = i + 1 == attn_.size();
    if (last && skip > 0) {  // the dropped frames still give this attention's keys and values
      h = attn_[i]->forward_temporal(norm_[i]->forward(h), video_length, skip) +
          drop_leading_frames(h, video_length, skip);  // [(B (F - skip)), D, C]
    } else {
      h = attn_[i]->forward_temporal(norm_[i]->forward(h), video_length) + h;
    }
  }
  if (attn_.empty()) h = drop_leading_frames(h, video_length, skip);
  return ff->forward(ff_norm->forward(h), h);
}

// ---- TemporalTransformer3DModel -----------------------------------------------------------------

TemporalTransformer3DModelImpl::TemporalTransformer3DModelImpl(const MotionModuleConfig& c) : config_(c) {
  if (c.in_channels <= 0 || c.num_attention_heads <= 0 || c.head_dim() <= 0)
    throw ModelError(std::string(kFile_motion_module) + ": invalid motion module widths");
  const int64_t inner = c.inner_dim();
  norm = register_module("norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(c.norm_num_groups, c.in_channels).eps(1e-6)));
  proj_in = register_module("proj_in", emo::nn::Linear(c.in_channels, inner));
  transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_transformer_block; ++i) {
    TemporalTransformerBlock b(c);
    transformer_blocks->push_back(b);
    blocks_.push_back(b);
  }
  if (c.speed_embed_dim > 0) {
    speed_norm = register_module("speed_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({inner})));
    emo::nn::AttentionConfig ac;
    ac.query_dim = inner;
    ac.cross_attention_dim = c.speed_embed_dim;
    ac.heads = c.num_attention_heads;
    ac.dim_head = c.head_dim();
    speed_attn = register_module("speed_attn", emo::nn::Attention(ac));
    torch::NoGradGuard no_grad;  // zero-initialised output: an untrained speed layer is the identity
    auto out = speed_attn->to_out[0]->as<emo::nn::Linear>();
    out->weight.zero_();
    out->bias.zero_();
  }
  proj_out = register_module("proj_out", emo::nn::Linear(inner, c.in_channels));
}

torch::Tensor speed_cross_attention(emo::nn::AttentionImpl& attn, const torch::Tensor& h, const torch::Tensor& speed) {
  const auto b = speed.size(0), f = speed.size(1), bd = h.size(0), d = bd / b;
  const auto heads = attn.config().heads;
  auto q = emo::nn::split_heads(attn.to_q->forward(h), heads);  // [(B D), H, F, Dh]
  // Keys/values depend only on the clip, not on the pixel: project once per clip, then broadcast over pixels.
  auto k = emo::nn::split_heads(attn.to_k->forward(speed), heads);  // [B, H, F, Dh]
  auto v = emo::nn::split_heads(attn.to_v->forward(speed), heads);
  k = k.unsqueeze(1).expand({b, d, heads, f, k.size(3)}).reshape({bd, heads, f, k.size(3)});
  v = v.unsqueeze(1).expand({b, d, heads, f, v.size(3)}).reshape({bd, heads, f, v.size(3)});
  auto o = emo::compat::attention(q, k, v);  // [(B D), H, F, Dh]
  return attn.to_out[0]->as<emo::nn::Linear>()->forward(emo::nn::merge_heads(o));  // [(B D), F, C]
}

torch::Tensor TemporalTransformer3DModelImpl::forward(const torch::Tensor& x, const torch::Tensor& speed, int64_t skip) {
  if (x.dim() != 5) throw InputError(std::string(kFile_motion_module) + ": expected [B, C, F, H, W] input");
  const auto b = x.size(0), f = x.size(2), hh = x.size(3), ww = x.size(4), kept = f - skip;
  if (skip < 0 || kept <= 0)
    throw InputError(std::string(kFile_motion_module) + ": cannot skip " + std::to_string(skip) + " of " +
                     std::to_string(f) + " frames");
  auto folded = emo::nn::fold_frames(x);  // [(B F), C, H, W]
  const auto n = folded.size(0), c = folded.size(1), nk = b * kept;
  auto h = norm->forward(folded);
  h = h.permute({0, 2, 3, 1}).reshape({n, hh * ww, c});  // [(B F), D, C]
  h = proj_in->forward(h);                                // [(B F), D, inner]
  // Only the last block drops the skipped frames: every earlier block's rows are keys/values of the next one.
  for (size_t i = 0; i < blocks_.size(); ++i) h = blocks_[i]->forward(h, f, i + 1 == blocks_.size() ? skip : 0);
  if (blocks_.empty()) h = drop_leading_frames(h, f, skip);  // [(B kept), D, inner]
  if (speed_attn && speed.defined()) {
    if (speed.size(0) != b || speed.size(1) != f)
      throw InputError(std::string(kFile_motion_module) + ": speed tokens " + std::to_string(speed.size(0)) + "x" +
                       std::to_string(speed.size(1)) + " do not match the clip (" + std::to_string(b) + "x" +
                       std::to_string(f) + " frames)");
    const auto d = hh * ww, inner = h.size(2);
    auto t = h.view({b, kept, d, inner}).permute({0, 2, 1, 3}).reshape({b * d, kept, inner});  // [(B D), kept, inner]
    // The kept frames query the speed tokens of every frame (skipped ones included), as in the full computation.
    t = speed_cross_attention(*speed_attn, speed_norm->forward(t), speed.to(t.dtype()));
    h = h + t.view({b, d, kept, inner}).permute({0, 2, 1, 3}).reshape({nk, d, inner});
  }
  h = proj_out->forward(h);                                                   // [(B kept), D, C]
  h = h.reshape({nk, hh, ww, c}).permute({0, 3, 1, 2});                       // [(B kept), C, H, W]
  auto residual = skip > 0 ? emo::nn::fold_frames(x.slice(2, skip)) : folded;  // [(B kept), C, H, W]
  return emo::nn::unfold_frames(h + residual, kept);                          // [B, C, kept, H, W]
}

// ---- VanillaTemporalModule ----------------------------------------------------------------------

VanillaTemporalModuleImpl::VanillaTemporalModuleImpl(const MotionModuleConfig& c) : config_(c) {
  temporal_transformer = register_module("temporal_transformer", TemporalTransformer3DModel(c));
}

torch::Tensor VanillaTemporalModuleImpl::forward(const torch::Tensor& x, const torch::Tensor& speed, int64_t skip) {
  return temporal_transformer->forward(x, speed, skip);
}

}  // namespace emo::models
