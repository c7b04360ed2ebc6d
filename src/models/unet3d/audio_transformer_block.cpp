#include "models/unet3d/audio_transformer_block.h"

#include <torch/torch.h>

#include "emo/compat.h"
#include "emo/error.h"

namespace emo::models {

namespace {
constexpr const char* kFile_audio_transformer_block = "audio_transformer_block.cpp";

emo::nn::Conv2d zero_conv(int64_t dim) {
  emo::nn::Conv2d conv(torch::nn::Conv2dOptions(dim, dim, 1));
  torch::NoGradGuard g;
  conv->weight.zero_();
  conv->bias.zero_();
  return conv;
}

// A 1x1 conv over the (square) token map == a per-token linear map on channels. [N, L, C] -> [N, L, C]
torch::Tensor pointwise(const emo::nn::Conv2d& conv, const torch::Tensor& x) {
  return compat::linear(x, conv->weight.flatten(1), conv->bias);
}

const torch::Tensor& level_mask(const std::vector<torch::Tensor>& masks, int64_t level, const char* name,
                                const torch::Tensor& x) {
  if (level >= static_cast<int64_t>(masks.size()) || !masks[level].defined())
    throw InputError(std::string(kFile_audio_transformer_block) + ": " + name + " mask for level " + std::to_string(level) + " is missing");
  const auto& m = masks[level];
  if (m.dim() != 2 || m.size(0) != x.size(0) || m.size(1) != x.size(1))
    throw InputError(std::string(kFile_audio_transformer_block) + ": " + name + " mask level " + std::to_string(level) +
                     " must be [(B F), L] = [" + std::to_string(x.size(0)) + ", " + std::to_string(x.size(1)) + "]");
  return m;
}
// The cross-attention of a row whose tokens are all zero: every key is to_k(0) and every value to_v(0), so the
// softmax average is to_v(0) and the output to_out(to_v(0)), the same for every query. [1, 1, C]
torch::Tensor zero_token_output(emo::nn::AttentionImpl& attn, const torch::Tensor& audio) {
  auto zero = torch::zeros({1, 1, audio.size(2)}, audio.options());
  return attn.to_out[0]->as<emo::nn::Linear>()->forward(attn.to_v->forward(zero));
}

// attn(n, audio) where the first z rows of `audio` are all zero: [(B F), L, C]
torch::Tensor audio_attention(emo::nn::AttentionImpl& attn, const torch::Tensor& n, const torch::Tensor& audio, int64_t z,
                              emo::nn::ContextKvCache* cache) {
  auto live = emo::nn::cross_attention(attn, n.slice(0, z), audio.slice(0, z), cache);  // [(B F) - z, L, C]
  if (z == 0) return live;
  return torch::cat({zero_token_output(attn, audio).expand({z, n.size(1), live.size(2)}), live}, 0);
}

// The fold of `attn`'s to_out and `conv` (FoldedBranchOutput), refreshed when a weight changed.
const FoldedBranchOutput& folded_output(FoldedBranchOutput& f, emo::nn::AttentionImpl& attn, const emo::nn::Conv2d& conv) {
  const auto& out = *attn.to_out[0]->as<emo::nn::Linear>();
  const auto& wo = out.weight;   // [C, inner]
  const auto wz = conv->weight.flatten(1);  // [C, C]
  auto version = [](const torch::Tensor& t) { return t.is_inference() ? int64_t{0} : static_cast<int64_t>(t._version()); };
  if (f.w.defined() && f.src_o == wo.data_ptr() && f.src_zc == conv->weight.data_ptr() && f.version_o == version(wo) &&
      f.version_zc == version(conv->weight) && f.dtype == wo.scalar_type())
    return f;
  torch::NoGradGuard no_grad;
  const auto wz32 = wz.to(torch::kFloat);
  f.w = torch::mm(wz32, wo.to(torch::kFloat)).to(wo.scalar_type());                           // [C, inner]
  f.b = out.bias.defined() ? torch::mv(wz32, out.bias.to(torch::kFloat)).to(wo.scalar_type())  // [C]
                           : torch::zeros({wz.size(0)}, wo.options());
  f.src_o = wo.data_ptr();
  f.src_zc = conv->weight.data_ptr();
  f.version_o = version(wo);
  f.version_zc = version(conv->weight);
  f.dtype = wo.scalar_type();
  return f;
}

// zero_conv(attn(n, audio) * mask) with the same zero rows; for them, conv(o * m) = m * (W o) + bias per token.
// Under inference the live rows take the folded map: m * (W_zc W_o a + W_zc b_o) + b_zc, one matmul instead of two.
torch::Tensor masked_audio_branch(emo::nn::AttentionImpl& attn, const emo::nn::Conv2d& conv, FoldedBranchOutput& fold,
                                  const torch::Tensor& n, const torch::Tensor& audio, const torch::Tensor& mask,
                                  int64_t z, emo::nn::ContextKvCache* cache) {
  const bool grads = torch::GradMode::is_enabled() &&
                     (conv->weight.requires_grad() || attn.to_out[0]->as<emo::nn::Linear>()->weight.requires_grad());
  torch::Tensor live;  // [(B F) - z, L, C]
  if (grads) {
    live = pointwise(conv, emo::nn::cross_attention(attn, n.slice(0, z), audio.slice(0, z), cache) * mask.slice(0, z));
  } else {
    const auto& f = folded_output(fold, attn, conv);
    const auto xs = n.slice(0, z), as = audio.slice(0, z);
    if (cache && emo::nn::folding_pays(attn, xs, as.size(0), as.size(1), f.w.size(0))) {  // and the keys too
      const auto& fc = cache->folded(&attn, [&] {
        return emo::nn::fold_context(attn, cache->get(&attn, [&] { return attn.project_kv(as); }), f.w);
      });
      live = emo::nn::attend_folded(fc, xs, f.b);
    } else {
      live = compat::linear(emo::nn::cross_attend(attn, xs, as, cache), f.w, f.b);
    }
    live = torch::addcmul(conv->bias, mask.slice(0, z), live);
  }
  if (z == 0) return live;
  auto wo = compat::linear(zero_token_output(attn, audio), conv->weight.flatten(1), {});           // [1, 1, C]
  auto dead = torch::addcmul(conv->bias, mask.slice(0, 0, z), wo);                                // [z, L, C]
  return torch::cat({dead, live}, 0);
}
}  // namespace

AudioTemporalBasicTransformerBlockImpl::AudioTemporalBasicTransformerBlockImpl(
    const AudioTemporalBasicTransformerBlockConfig& c)
    : config_(c) {
  zero_conv_full = register_module("zero_conv_full", zero_conv(c.dim));
  zero_conv_face = register_module("zero_conv_face", zero_conv(c.dim));
  zero_conv_lip = register_module("zero_conv_lip", zero_conv(c.dim));
  emo::nn::AttentionConfig a1;
  a1.query_dim = c.dim;
  a1.heads = c.num_attention_heads;
  a1.dim_head = c.attention_head_dim;
  attn1 = register_module("attn1", emo::nn::Attention(a1));
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dim})));
  auto a2 = a1;
  a2.cross_attention_dim = c.cross_attention_dim;
  if (c.stack_enabled) {
    attn2_0 = register_module("attn2_0", emo::nn::Attention(a2));
    attn2_1 = register_module("attn2_1", emo::nn::Attention(a2));
    attn2_2 = register_module("attn2_2", emo::nn::Attention(a2));
  } else {
    attn2 = register_module("attn2", emo::nn::Attention(a2));
  }
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dim})));
  ff = register_module("ff", emo::nn::FeedForward(emo::nn::FeedForwardConfig{c.dim, 0, 4}));
  norm3 = register_module("norm3", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dim})));
}

torch::Tensor AudioTemporalBasicTransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& audio,
                                                              const std::vector<torch::Tensor>& full_mask,
                                                              const std::vector<torch::Tensor>& face_mask,
                                                              const std::vector<torch::Tensor>& lip_mask,
                                                              const std::optional<std::array<double, 3>>& motion_scale,
                                                              int64_t zero_audio_rows,
                                                              emo::nn::ContextKvCache* kv_cache) {
  const auto z = zero_audio_rows;
  if (z < 0 || z > x.size(0) || audio.size(0) != x.size(0))
    throw InputError(std::string(kFile_audio_transformer_block) + ": " + std::to_string(z) + " zero-audio rows of " +
                     std::to_string(x.size(0)) + " (audio rows " + std::to_string(audio.size(0)) + ")");
  auto h = attn1->forward(norm1->forward(x)) + x;  // per-frame self-attention, no reference
  auto n = norm2->forward(h);                       // [(B F), L, C]
  if (attn2) {  // block not stack-enabled: one plain cross-attention on the audio tokens
    h = audio_attention(*attn2, n, audio, z, kv_cache) + h;
    return ff->forward(norm3->forward(h), h);
  }
  const auto level = config_.depth;
  auto fm = level_mask(full_mask, level, "full", n).to(n.dtype()).unsqueeze(-1);  // [(B F), L, 1]
  auto am = level_mask(face_mask, level, "face", n).to(n.dtype()).unsqueeze(-1);
  auto lm = level_mask(lip_mask, level, "lip", n).to(n.dtype()).unsqueeze(-1);
  auto full = masked_audio_branch(*attn2_0, zero_conv_full, folded_[0], n, audio, fm, z, kv_cache);  // [(B F), L, C]
  auto face = masked_audio_branch(*attn2_1, zero_conv_face, folded_[1], n, audio, am, z, kv_cache);
  auto lip = masked_audio_branch(*attn2_2, zero_conv_lip, folded_[2], n, audio, lm, z, kv_cache);
  if (motion_scale) {
    const auto& s = *motion_scale;
    h = s[0] * full + s[1] * face + s[2] * lip + h;
  } else {
    h = full + face + lip + h;
  }
  return ff->forward(norm3->forward(h), h);
}

}  // namespace emo::models
