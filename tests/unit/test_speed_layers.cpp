// EMO speed layers (our definition, docs/speed-layers.md): buckets, windows, identity when zero-initialised,
// speed-dependence and gradient flow when trained.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "emo/error.h"
#include "emo/weight_loader.h"
#include "models/unet3d/motion_module.h"
#include "models/unet3d/speed_encoder.h"
#include "models/unet3d/unet_3d.h"

namespace {

using namespace emo::models;

emo::io::StateDict state_of(torch::nn::Module& m) {
  emo::io::StateDict sd;
  for (const auto& p : m.named_parameters()) sd[p.key()] = p.value().detach().clone();
  for (const auto& b : m.named_buffers()) sd[b.key()] = b.value().detach().clone();
  return sd;
}

void randomize(torch::nn::Module& m, const std::string& contains, double scale = 0.2) {
  torch::NoGradGuard g;
  for (auto& p : m.named_parameters())
    if (p.key().find(contains) != std::string::npos) p.value().normal_(0.0, scale);
}

MotionModuleConfig tiny_motion(int64_t speed_dim) {
  MotionModuleConfig c;
  c.in_channels = 32;
  c.num_attention_heads = 4;
  c.num_transformer_block = 1;
  c.temporal_position_encoding = true;
  c.temporal_position_encoding_max_len = 32;
  c.speed_embed_dim = speed_dim;
  return c;
}

UNet3DConditionModelConfig tiny_unet(bool speed) {
  UNet3DConditionModelConfig c;
  c.block_out_channels = {32, 32, 64, 64};
  c.attention_head_dim = {4, 4, 4, 4};
  c.layers_per_block = 1;
  c.norm_num_groups = 16;
  c.cross_attention_dim = 48;
  c.use_audio_module = false;
  c.motion = tiny_motion(0);
  c.motion.num_attention_heads = 4;
  c.clip_frames = 4;
  c.motion_frames = 2;
  c.speed.enabled = speed;
  c.speed.centers = {0, 2, 4};
  c.speed.radii = {1, 1, 2};
  c.speed.window = 1;
  c.speed.hidden_dim = 16;
  c.speed.embed_dim = 24;
  return c;
}

// Random banks for every reader block: [2 * (1 + M), L, C] with L from the block's level on a 16x16 latent.
std::vector<torch::Tensor> random_banks(UNet3DConditionModelImpl& unet, int64_t m) {
  std::vector<torch::Tensor> banks;
  auto names = unet.reader_block_names();
  auto blocks = unet.reader_blocks();
  for (size_t i = 0; i < names.size(); ++i) {
    int level = 3;
    if (names[i].rfind("down_blocks.", 0) == 0) level = names[i][12] - '0';
    if (names[i].rfind("up_blocks.", 0) == 0) level = 3 - (names[i][10] - '0');
    const int64_t side = 16 >> level;
    banks.push_back(torch::randn({2 * (1 + m), side * side, blocks[i]->width()}));
  }
  return banks;
}

UNet3DConditions random_conditions(int64_t frames) {
  UNet3DConditions c;
  c.encoder_hidden_states = torch::randn({2, 4, 48});
  c.head_speed = torch::tensor({0.5f, 1.f, 3.f, 6.f}).repeat({2, 1}).slice(1, 0, frames);
  return c;
}

}  // namespace

TEST(SpeedLayers, BucketsAndWindows) {
  SpeedLayersConfig c;
  c.centers = {0, 2, 4};
  c.radii = {1, 1, 2};
  auto s = speed_buckets(torch::tensor({{0.f, 2.f, 10.f}}), c);
  ASSERT_EQ(s.sizes(), (std::vector<int64_t>{1, 3, 3}));
  EXPECT_NEAR(s[0][0][0].item<float>(), 0.f, 1e-6);
  EXPECT_NEAR(s[0][1][1].item<float>(), 0.f, 1e-6);
  EXPECT_NEAR(s[0][1][0].item<float>(), std::tanh(6.f), 1e-6);    // (2 - 0) / 1 * 3
  EXPECT_NEAR(s[0][2][2].item<float>(), std::tanh(9.f), 1e-6);    // (10 - 4) / 2 * 3
  auto w = speed_windows(torch::arange(4, torch::kFloat).view({1, 4, 1}), 1);
  ASSERT_EQ(w.sizes(), (std::vector<int64_t>{1, 4, 3}));
  EXPECT_TRUE(torch::equal(w[0][0], torch::tensor({0.f, 0.f, 1.f})));  // clamped at the start
  EXPECT_TRUE(torch::equal(w[0][3], torch::tensor({2.f, 3.f, 3.f})));  // clamped at the end
  c.window = 1;
  c.hidden_dim = 8;
  c.embed_dim = 5;
  SpeedEncoder enc(c);
  EXPECT_EQ(enc->forward(torch::rand({2, 6})).sizes(), (std::vector<int64_t>{2, 6, 5}));
  EXPECT_THROW(SpeedLayersConfig::from_json({{"centers", {1, 2}}, {"radii", {1, 2, 3}}}), emo::ModelError);
}

TEST(SpeedLayers, ZeroInitialisedMotionModuleIsIdentity) {
  torch::manual_seed(1);
  c10::InferenceMode guard;
  VanillaTemporalModule plain(tiny_motion(0)), speed(tiny_motion(24));
  randomize(*plain, "");  // incl. proj_out (zero in AnimateDiff) so the module is not trivially the identity
  auto report = emo::io::load_module(*speed, state_of(*plain), {"", false});
  EXPECT_EQ(report.missing.size(), 7u);  // speed_norm.{weight,bias}, speed_attn.{to_q,to_k,to_v}.weight, to_out.0.{weight,bias}
  EXPECT_TRUE(report.unexpected.empty());
  auto x = torch::randn({2, 32, 5, 4, 4});
  auto tokens = torch::randn({2, 5, 24});
  EXPECT_TRUE(torch::allclose(speed->forward(x, tokens), plain->forward(x), 0, 0));
  EXPECT_TRUE(torch::equal(speed->forward(x), plain->forward(x)));  // no speed input -> layers skipped
  EXPECT_THROW(speed->forward(x, torch::randn({2, 4, 24})), emo::InputError);
}

TEST(SpeedLayers, TrainedMotionModuleDependsOnSpeed) {
  torch::manual_seed(2);
  c10::InferenceMode guard;
  VanillaTemporalModule mm(tiny_motion(24));
  randomize(*mm, "");
  auto x = torch::randn({2, 32, 5, 4, 4});
  auto a = mm->forward(x, torch::randn({2, 5, 24}));
  auto b = mm->forward(x, torch::randn({2, 5, 24}));
  EXPECT_EQ(a.sizes(), x.sizes());
  EXPECT_GT((a - b).abs().max().item<float>(), 1e-3);
}

TEST(SpeedLayers, UNetWithUntrainedSpeedLayersEqualsHallo) {
  torch::manual_seed(3);
  c10::InferenceMode guard;
  UNet3DConditionModel plain(tiny_unet(false)), speed(tiny_unet(true));
  randomize(*plain, "proj_out");  // motion modules' proj_out are zero-initialised; make them matter
  auto report = emo::io::load_module(*speed, state_of(*plain), {"", false});
  EXPECT_TRUE(report.unexpected.empty());
  EXPECT_FALSE(report.missing.empty());
  auto banks = random_banks(*plain, 2);
  plain->set_reference_banks(banks);
  speed->set_reference_banks(banks);
  auto cond = random_conditions(4);
  auto sample = torch::randn({2, 4, 4, 16, 16});
  auto t = torch::tensor(500);
  auto a = plain->forward(sample, t, cond);
  auto b = speed->forward(sample, t, cond);
  EXPECT_EQ(a.sizes(), sample.sizes());
  EXPECT_TRUE(torch::equal(a, b));
  cond.hallo_training_path = false;
  EXPECT_TRUE(torch::equal(plain->forward(sample, t, cond), speed->forward(sample, t, cond)));
}

TEST(SpeedLayers, TrainedUNetSpeedChangesOutputAndPassesGradient) {
  torch::manual_seed(4);
  UNet3DConditionModel unet(tiny_unet(true));
  randomize(*unet, "proj_out");
  randomize(*unet, "speed_attn.to_out");
  unet->set_reference_banks(random_banks(*unet, 2));
  auto cond = random_conditions(4);
  auto sample = torch::randn({2, 4, 4, 16, 16});
  auto t = torch::tensor(500);
  auto a = unet->forward(sample, t, cond);
  auto cond2 = cond;
  cond2.head_speed = torch::tensor({5.f, 0.f, 0.f, 2.f, 1.f, 4.f}).repeat({2, 1});  // [B, M + F]
  auto b = unet->forward(sample, t, cond2);
  EXPECT_GT((a - b).abs().max().item<float>(), 1e-4);
  a.pow(2).mean().backward();
  auto grad = unet->speed_encoder->net[0]->as<emo::nn::Linear>()->weight.grad();
  ASSERT_TRUE(grad.defined());
  EXPECT_GT(grad.abs().max().item<float>(), 0.f);
}
