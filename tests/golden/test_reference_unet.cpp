// hallo's ReferenceNet (UNet2DConditionModel without conv_out) in ReferenceAttentionControl write mode vs the
// reference_unet fixture: output sample and every bank entry, in hallo's bank order.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>

#include "emo/models.h"
#include "emo/weight_loader.h"
#include "models/unet_2d_condition.h"
#include "support/golden.h"

namespace {

// AllClose at the fixture tolerance, printing the max error seen (for reports).
::testing::AssertionResult Close(const char* what, const torch::Tensor& a, const torch::Tensor& b) {
  auto r = emo::test::AllClose(a, b, 1e-4);
  std::printf("  %s: %s\n", what, r.message());
  return r;
}

emo::models::UNet2DConditionModel build(const emo::test::Fixture& fx) {
  auto cfg = emo::models::UNet2DConditionConfig::from_json(fx.config(), fx.path("config.json"));
  cfg.reference_net = true;
  emo::models::UNet2DConditionModel unet(cfg);
  emo::io::load_module(*unet, fx.weights());
  unet->eval();
  return unet;
}

std::string bank_name(size_t i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "bank.%02zu", i);
  return buf;
}

}  // namespace

TEST(GoldenReferenceUNet, SampleAndBanks) {
  EMO_GOLDEN_FIXTURE(fx, "reference_unet");
  auto unet = build(fx);
  c10::InferenceMode mode;
  const auto sample = fx.input("sample"), t = fx.input("timestep"), ehs = fx.input("encoder_hidden_states");

  // write_banks runs the write-mode forward; run the same forward once more for output.sample.
  auto banks = unet->write_banks(sample, t, ehs);
  size_t expected = 0;
  while (fx.has("output." + bank_name(expected))) ++expected;
  ASSERT_GT(expected, 0u);
  ASSERT_EQ(banks.size(), expected);
  for (size_t i = 0; i < banks.size(); ++i) {
    auto want = fx.output(bank_name(i));
    ASSERT_EQ(banks[i].sizes(), want.sizes()) << bank_name(i);
    EXPECT_TRUE(Close(bank_name(i).c_str(), banks[i], want));
  }

  for (auto& blk : unet->transformer_blocks_in_bank_order())
    blk->set_reference_mode(emo::nn::ReferenceMode::kWrite);
  auto out = unet->forward(sample, t, ehs);
  EXPECT_TRUE(Close("sample", out, fx.output("sample")));
}

TEST(GoldenReferenceUNet, PublicLoaderWithPrefix) {
  EMO_GOLDEN_FIXTURE(fx, "reference_unet");
  emo::io::StateDict prefixed;
  for (const auto& [k, v] : fx.weights()) prefixed["reference_unet." + k] = v;
  prefixed["denoising_unet.conv_in.weight"] = torch::zeros({1});  // other sub-networks of net.pth are ignored
  auto net = emo::load_reference_unet(fx.path("config.json"), prefixed, "reference_unet.");
  auto banks = net.write_banks(fx.input("sample"), fx.input("timestep"), fx.input("encoder_hidden_states"));
  ASSERT_FALSE(banks.empty());
  EXPECT_TRUE(Close("last bank", banks.back(), fx.output(bank_name(banks.size() - 1))));
}

// Write mode must pair batch row j with encoder_hidden_states[j % Be]: feeding the repeated ehs in plain mode
// gives the same result, feeding it un-repeated is impossible (batch mismatch).
TEST(GoldenReferenceUNet, WriteModeRepeatsEncoderStates) {
  EMO_GOLDEN_FIXTURE(fx, "reference_unet");
  auto unet = build(fx);
  c10::InferenceMode mode;
  const auto sample = fx.input("sample"), ehs = fx.input("encoder_hidden_states");
  auto repeated = ehs.repeat({sample.size(0) / ehs.size(0), 1, 1});
  auto plain = unet->forward(sample, fx.input("timestep"), repeated);
  EXPECT_TRUE(Close("sample (plain mode, repeated ehs)", plain, fx.output("sample")));
  // Interleaved pairing (repeat_interleave) is NOT what hallo does and must differ.
  auto wrong = unet->forward(sample, fx.input("timestep"), ehs.repeat_interleave(sample.size(0) / ehs.size(0), 0));
  EXPECT_FALSE(Close("sample (interleaved ehs, must differ)", wrong, fx.output("sample")));
}
