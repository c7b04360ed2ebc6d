// Work that hallo computes and throws away, and emo does not compute: each shortcut must give what the full
// computation keeps. (The golden pipeline fixtures check the same through the whole pipeline; these pin each
// shortcut on its own, with every weight random so that no term is trivially zero.)
//  - motion modules: the prepended motion frames' output rows (sliced off by hallo) are not computed;
//  - audio modules: the unconditional half attends to all-zero audio tokens, a constant per module;
//  - ReferenceNet: the last bank writer's attentions and feed-forward (the pass's output is not used);
//  - image-token and audio-token keys/values: projected once per clip (ContextKvCache), not once per step.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "emo/error.h"
#include "models/unet3d/audio_transformer_block.h"
#include "models/unet3d/motion_module.h"
#include "models/unet3d/transformer_3d.h"
#include "nn/attention.h"
#include "nn/basic_transformer_block.h"

namespace {

using namespace emo::models;

void randomize_all(torch::nn::Module& m, double scale = 0.2) {
  torch::NoGradGuard g;
  for (auto& p : m.named_parameters()) p.value().normal_(0.0, scale);
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

MotionModuleConfig motion_config(int64_t blocks, int64_t attentions, int64_t speed_dim) {
  MotionModuleConfig c;
  c.in_channels = 32;
  c.num_attention_heads = 4;
  c.num_transformer_block = blocks;
  c.attention_block_types.assign(static_cast<size_t>(attentions), "Temporal_Self");
  c.temporal_position_encoding = true;
  c.temporal_position_encoding_max_len = 32;
  c.speed_embed_dim = speed_dim;
  return c;
}

// A small audio block (dim 32, 4 heads of 8, audio tokens of 24 channels).
AudioTemporalBasicTransformerBlockConfig audio_block_config(int64_t depth, bool stacked = true) {
  AudioTemporalBasicTransformerBlockConfig c;
  c.dim = 32;
  c.num_attention_heads = 4;
  c.attention_head_dim = 8;
  c.cross_attention_dim = 24;
  c.depth = depth;
  c.stack_enabled = stacked;
  return c;
}

// A cross-attention of 48 query channels over tokens of 24 (4 heads of 16).
emo::nn::AttentionConfig cross_attention_config(bool bias) {
  emo::nn::AttentionConfig c;
  c.query_dim = 48;
  c.cross_attention_dim = 24;
  c.heads = 4;
  c.dim_head = 16;
  c.bias = bias;
  return c;
}

}  // namespace

TEST(SkippedWork, MotionModuleWithoutTheMotionFramesRowsKeepsTheClipFrames) {
  c10::InferenceMode guard;
  struct Case {
    int64_t blocks, attentions, speed_dim;
  };
  // Hallo's AnimateDiff v2: 1 block of 2 attentions. Also 2 blocks (only the last may drop rows) and speed layers.
  for (const Case& k : {Case{1, 2, 0}, Case{2, 2, 0}, Case{1, 1, 0}, Case{2, 1, 24}}) {
    SCOPED_TRACE("blocks " + std::to_string(k.blocks) + ", attentions " + std::to_string(k.attentions) +
                 ", speed " + std::to_string(k.speed_dim));
    torch::manual_seed(11);
    VanillaTemporalModule mm(motion_config(k.blocks, k.attentions, k.speed_dim));
    randomize_all(*mm);
    auto x = torch::randn({2, 32, 6, 4, 4});  // [B, C, M + F, H, W], M = 2
    auto speed = k.speed_dim ? torch::randn({2, 6, k.speed_dim}) : torch::Tensor();
    auto full = mm->forward(x, speed).slice(2, 2);  // what hallo keeps
    auto skipped = mm->forward(x, speed, 2);
    ASSERT_EQ(skipped.sizes(), full.sizes());
    EXPECT_LT(max_diff(skipped, full), 1e-5);
    // The motion frames still matter as keys/values: dropping them from the input changes the clip frames.
    EXPECT_GT(max_diff(mm->forward(x.slice(2, 2), k.speed_dim ? speed.slice(1, 2) : speed), full), 1e-3);
  }
  VanillaTemporalModule mm(motion_config(1, 2, 0));
  auto x = torch::randn({1, 32, 3, 2, 2});
  EXPECT_THROW(mm->forward(x, {}, 3), emo::InputError);   // nothing left
  EXPECT_THROW(mm->forward(x, {}, -1), emo::InputError);
}

TEST(SkippedWork, AudioAttentionOfZeroTokensIsTheConstantRow) {
  c10::InferenceMode guard;
  for (bool stacked : {true, false}) {
    SCOPED_TRACE(stacked ? "stacked (full/face/lip)" : "one attn2");
    torch::manual_seed(12);
    AudioTemporalBasicTransformerBlock block(audio_block_config(1, stacked));
    randomize_all(*block);  // zero_conv_* are zero-initialised: random here so the audio branches count
    const int64_t f = 3, l = 16;
    auto x = torch::randn({2 * f, l, 32});  // [(B F), L, C], uncond half first
    auto audio = torch::randn({2 * f, 5, 24});
    audio.slice(0, 0, f).zero_();
    std::vector<torch::Tensor> full(2), face(2), lip(2);
    full[1] = torch::rand({2 * f, l});
    face[1] = (torch::rand({2 * f, l}) > 0.5).to(torch::kFloat);
    lip[1] = (torch::rand({2 * f, l}) > 0.7).to(torch::kFloat);
    const std::array<double, 3> scale{0.9, 1.1, 1.3};
    auto reference = block->forward(x, audio, full, face, lip, scale);
    auto shortcut = block->forward(x, audio, full, face, lip, scale, f);
    EXPECT_LT(max_diff(shortcut, reference), 1e-5);
    // Non-zero tokens in those rows would give another result: the rows count was honoured, not ignored.
    auto live = audio.clone();
    live.slice(0, 0, f).normal_();
    EXPECT_GT(max_diff(block->forward(x, live, full, face, lip, scale), reference), 1e-3);
    EXPECT_THROW(block->forward(x, audio, full, face, lip, scale, 2 * f + 1), emo::InputError);
  }
}

TEST(SkippedWork, LastBankWriterStoresTheSameBankAndPassesItsInputOn) {
  c10::InferenceMode guard;
  torch::manual_seed(13);
  emo::nn::BasicTransformerBlockConfig c;
  c.dim = 32;
  c.num_attention_heads = 4;
  c.attention_head_dim = 8;
  c.cross_attention_dim = 16;
  emo::nn::BasicTransformerBlock block(c);
  randomize_all(*block);
  auto x = torch::randn({2, 9, 32});
  auto ehs = torch::randn({2, 4, 16});
  block->set_reference_mode(emo::nn::ReferenceMode::kWrite);
  auto out = block->forward(x, ehs);
  auto bank = block->bank().clone();
  block->set_reference_mode(emo::nn::ReferenceMode::kWriteBankOnly);
  auto passed = block->forward(x, ehs);
  EXPECT_TRUE(torch::equal(block->bank(), bank));
  EXPECT_TRUE(torch::equal(passed, x));
  EXPECT_GT(max_diff(out, x), 1e-3);  // the full block does change its input
}

TEST(SkippedWork, ContextKeysAndValuesAreProjectedOncePerCache) {
  c10::InferenceMode guard;
  torch::manual_seed(14);
  emo::nn::AttentionConfig c;
  c.query_dim = 32;
  c.cross_attention_dim = 24;
  c.heads = 4;
  c.dim_head = 8;
  emo::nn::Attention a(c), b(c);
  randomize_all(*a);
  randomize_all(*b);
  auto x = torch::randn({3, 9, 32});
  auto tokens = torch::randn({3, 5, 24});
  emo::nn::ContextKvCache cache;
  auto first = emo::nn::cross_attention(*a, x, tokens, &cache);
  EXPECT_LT(max_diff(first, a->forward(x, tokens)), 1e-6);
  EXPECT_EQ(cache.size(), 1u);
  // A later step with new queries reuses the projection: the same as projecting again.
  auto x2 = torch::randn({3, 9, 32});
  EXPECT_LT(max_diff(emo::nn::cross_attention(*a, x2, tokens, &cache), a->forward(x2, tokens)), 1e-6);
  EXPECT_EQ(cache.size(), 1u);
  // One entry per module: another module with the same tokens gets its own keys/values.
  EXPECT_LT(max_diff(emo::nn::cross_attention(*b, x, tokens, &cache), b->forward(x, tokens)), 1e-6);
  EXPECT_EQ(cache.size(), 2u);
  // The cache is per clip: it does not look at the tokens again (a new clip needs a new cache).
  EXPECT_TRUE(torch::equal(emo::nn::cross_attention(*a, x, torch::randn({3, 5, 24}), &cache), first));
  EXPECT_FALSE(torch::equal(emo::nn::cross_attention(*a, x, torch::randn({3, 5, 24}), nullptr), first));
}

// Each masked audio branch is zero_conv(mask * to_out(attention)); under inference emo folds to_out and zero_conv into
// one linear map (the mask is a scalar per token). It must equal the two maps applied in turn (the autograd path,
// which keeps them apart), and follow the weights when they change (a later load).
TEST(SkippedWork, FoldedAudioBranchOutputEqualsToOutThenZeroConv) {
  torch::manual_seed(13);
  AudioTemporalBasicTransformerBlock block(audio_block_config(0));
  randomize_all(*block);
  const int64_t f = 3, l = 16;
  auto x = torch::randn({2 * f, l, 32}), audio = torch::randn({2 * f, 5, 24});
  audio.slice(0, 0, f).zero_();
  std::vector<torch::Tensor> full{torch::rand({2 * f, l})}, face{(torch::rand({2 * f, l}) > 0.5).to(torch::kFloat)},
      lip{(torch::rand({2 * f, l}) > 0.7).to(torch::kFloat)};
  auto reference = [&] {  // autograd on: the weights require gradients, so no fold
    return block->forward(x, audio, full, face, lip, std::nullopt, f).detach();
  };
  auto folded = [&] {
    c10::InferenceMode guard;
    return block->forward(x, audio, full, face, lip, std::nullopt, f);
  };
  const auto want = reference();
  EXPECT_LT(max_diff(folded(), want), 1e-5);
  {  // with the clip's cache the branches' attentions are folded with their context too (5 tokens, 4 heads)
    c10::InferenceMode guard;
    emo::nn::ContextKvCache cache;
    EXPECT_LT(max_diff(block->forward(x, audio, full, face, lip, std::nullopt, f, &cache), want), 1e-5);
    EXPECT_EQ(cache.folded_size(), 3u);
  }
  {
    torch::NoGradGuard g;
    block->zero_conv_face->weight.mul_(-3);
    block->attn2_2->to_out[0]->as<emo::nn::Linear>()->weight.mul_(0.5);
  }
  const auto changed = reference();
  EXPECT_GT(max_diff(changed, want), 1e-3);
  EXPECT_LT(max_diff(folded(), changed), 1e-5);
}

// A cross-attention over few tokens, folded with its context and output map (FoldedContext), gives the attention's
// result, with and without a to_q bias; it is used where it saves work and not under autograd.
TEST(SkippedWork, FoldedCrossAttentionEqualsTheAttention) {
  torch::manual_seed(15);
  for (bool bias : {false, true}) {
    SCOPED_TRACE(bias ? "to_q bias" : "no bias");
    emo::nn::Attention a(cross_attention_config(bias));
    randomize_all(*a);
    auto x = torch::randn({3, 20, 48}), tokens = torch::randn({3, 4, 24});
    const auto want = a->forward(x, tokens).detach();
    {
      c10::InferenceMode guard;
      ASSERT_TRUE(emo::nn::folding_pays(*a, x, 3, 4, 48));
      emo::nn::ContextKvCache cache;
      EXPECT_LT(max_diff(emo::nn::cross_attention(*a, x, tokens, &cache), want), 1e-5);
      EXPECT_EQ(cache.folded_size(), 1u);
      const auto f = emo::nn::fold_context(*a, a->project_kv(tokens), a->to_out[0]->as<emo::nn::Linear>()->weight);
      EXPECT_EQ(f.qk.sizes(), (std::vector<int64_t>{3, 48, 16}));
      EXPECT_EQ(f.vo.sizes(), (std::vector<int64_t>{3, 16, 48}));
      EXPECT_EQ(f.qk_bias.defined(), bias);
      // Many tokens: the plain attention is cheaper, no fold.
      EXPECT_FALSE(emo::nn::folding_pays(*a, x, 3, 64, 48));
      EXPECT_FALSE(emo::nn::folding_pays(*a, x, 1, 4, 48));  // context rows must match the queries'
    }
    EXPECT_FALSE(emo::nn::folding_pays(*a, x, 3, 4, 48));  // autograd on
    emo::nn::ContextKvCache cache;
    EXPECT_LT(max_diff(emo::nn::cross_attention(*a, x, tokens, &cache).detach(), want), 1e-6);
    EXPECT_EQ(cache.folded_size(), 0u);
  }
}

// Image tokens are one row per clip, shared by its F frames (hallo repeats them: "b n c -> (b f) n c"). emo does not
// repeat them: query row i reads context row i / F, so the keys, values and folds are made once per distinct row. The
// result must be what the repeated context gives, folded or not, cached or not; row counts that do not divide throw.
TEST(SkippedWork, ContextSharedByFramesIsNotRepeated) {
  torch::manual_seed(16);
  emo::nn::Attention a(cross_attention_config(false));
  randomize_all(*a);
  const int64_t b = 2, f = 3;
  auto x = torch::randn({b * f, 20, 48});
  for (int64_t lk : {4, 64}) {  // folded (few tokens) and plain attention (many)
    SCOPED_TRACE(lk);
    auto tokens = torch::randn({b, lk, 24});
    c10::InferenceMode guard;
    const auto want = a->forward(x, tokens.repeat_interleave(f, 0));  // [(B F), L, C]
    EXPECT_LT(max_diff(emo::nn::cross_attention(*a, x, tokens, nullptr), want), 1e-5);
    emo::nn::ContextKvCache cache;
    EXPECT_LT(max_diff(emo::nn::cross_attention(*a, x, tokens, &cache), want), 1e-5);
    ASSERT_EQ(cache.size(), 1u);
    EXPECT_EQ(cache.get(a.get(), [] { return emo::nn::KeyValue{}; }).k.size(0), b);  // projected for B rows only
    EXPECT_EQ(cache.folded_size(), lk == 4 ? 1u : 0u);
    if (lk == 4) EXPECT_EQ(cache.folded(a.get(), [] { return emo::nn::FoldedContext{}; }).qk.size(0), b);
    auto x2 = torch::randn({b * f, 20, 48});  // a later step reuses them
    EXPECT_LT(max_diff(emo::nn::cross_attention(*a, x2, tokens, &cache), a->forward(x2, tokens.repeat_interleave(f, 0))),
              1e-5);
    EXPECT_THROW(emo::nn::cross_attention(*a, x, torch::randn({4, lk, 24}), nullptr), emo::InputError);
  }
}

// The spatial transformer takes the image tokens as one row per clip ([B, T, D], shared by the F frames) or one per
// frame ([(B F), T, D]) with the same result; any other row count is refused.
TEST(SkippedWork, SpatialTransformerTakesImageTokensPerClipOrPerFrame) {
  torch::manual_seed(17);
  Transformer3DModelConfig c;
  c.num_attention_heads = 2;
  c.attention_head_dim = 16;
  c.in_channels = 32;
  c.norm_num_groups = 8;
  c.cross_attention_dim = 24;
  Transformer3DModel t(c);
  randomize_all(*t);
  c10::InferenceMode guard;
  const int64_t b = 2, f = 3;
  auto x = torch::randn({b, 32, f, 4, 4}), tokens = torch::randn({b, 4, 24});
  const auto per_frame = t->forward_spatial(x, tokens.repeat_interleave(f, 0), false).first;  // [B, C, F, H, W]
  emo::nn::ContextKvCache cache;
  EXPECT_LT(max_diff(t->forward_spatial(x, tokens, false, &cache).first, per_frame), 1e-5);
  EXPECT_LT(max_diff(t->forward_spatial(x, tokens, false).first, per_frame), 1e-5);
  EXPECT_THROW(t->forward_spatial(x, torch::randn({3, 4, 24}), false), emo::InputError);
}
