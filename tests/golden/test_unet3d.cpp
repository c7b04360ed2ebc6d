// hallo.models.unet_3d.UNet3DConditionModel (reader mode, CFG) vs ../shared/golden/unet3d:
// `sample` = the training-mode + gradient-checkpointing path hallo's inference runs, `sample_eval_mode` = .eval().
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <torch/torch.h>

#include <cstdio>

#include "emo/weight_loader.h"
#include "models/unet3d/unet_3d.h"
#include "support/golden.h"

namespace {

using emo::models::UNet3DConditionModel;
using emo::models::UNet3DConditionModelConfig;
using emo::models::UNet3DConditions;

UNet3DConditionModel build(const emo::test::Fixture& fx) {
  auto cfg = UNet3DConditionModelConfig::from_json(fx.config().at("config"), fx.config().at("unet_additional_kwargs"));
  cfg.read_widths_from(fx.weights());
  UNet3DConditionModel unet(cfg);
  emo::io::load_module(*unet, fx.weights(), {"", true, {}, fx.path("weights.safetensors")});
  std::vector<torch::Tensor> banks;
  for (size_t i = 0;; ++i) {
    char key[32];
    std::snprintf(key, sizeof key, "input.bank.%02zu", i);
    if (!fx.has(key)) break;
    banks.push_back(fx.input(key + 6));
  }
  unet->set_reference_banks(banks);
  return unet;
}

UNet3DConditions conditions(const emo::test::Fixture& fx) {
  UNet3DConditions c;
  c.encoder_hidden_states = fx.input("encoder_hidden_states");
  c.audio_embedding = fx.input("audio_embedding");
  c.mask_cond_fea = fx.input("mask_cond_fea");
  for (int l = 0; l < 4; ++l) {
    c.full_mask.push_back(fx.input("full_mask." + std::to_string(l)));
    c.face_mask.push_back(fx.input("face_mask." + std::to_string(l)));
    c.lip_mask.push_back(fx.input("lip_mask." + std::to_string(l)));
  }
  auto s = fx.input("motion_scale").to(torch::kDouble);
  c.motion_scale = std::array<double, 3>{s[0].item<double>(), s[1].item<double>(), s[2].item<double>()};
  return c;
}

}  // namespace

// The reader order (ReferenceAttentionControl: torch_dfs order, stably sorted by descending width) is read from the
// fixture README's "Reader block order" table, so another valid configuration checks its own order.
TEST(GoldenUNet3D, ReaderOrderMatchesFixture) {
  EMO_GOLDEN_FIXTURE(fx, "unet3d");
  auto unet = build(fx);
  std::ifstream readme(fx.path("README.md"));
  ASSERT_TRUE(readme.good()) << fx.path("README.md");
  const std::regex row(R"(^\|\s*(\d+)\s*\|\s*`([^`]+)`\s*\|)");
  std::vector<std::string> expected;
  std::string line;
  std::smatch m;
  while (std::getline(readme, line))
    if (std::regex_search(line, m, row) && m[2].str().find("transformer_blocks") != std::string::npos) {
      ASSERT_EQ(std::stoul(m[1].str()), expected.size()) << line;
      expected.push_back(m[2].str());
    }
  ASSERT_FALSE(expected.empty()) << "no reader table in " << fx.path("README.md");
  EXPECT_EQ(unet->reader_block_names(), expected);
}

TEST(GoldenUNet3D, HalloInferencePath) {
  EMO_GOLDEN_FIXTURE(fx, "unet3d");
  c10::InferenceMode guard;
  auto unet = build(fx);
  auto cond = conditions(fx);
  cond.hallo_training_path = true;
  auto out = unet->forward(fx.input("sample"), fx.input("timestep"), cond);
  RecordProperty("max_abs_diff", std::to_string((out - fx.output("sample")).abs().max().item<double>()));
  EXPECT_TRUE(emo::test::AllClose(out, fx.output("sample"), 1e-4));
  EXPECT_FALSE(emo::test::AllClose(out, fx.output("sample_eval_mode"), 1e-2));  // the two paths really differ
}

TEST(GoldenUNet3D, EvalModePath) {
  EMO_GOLDEN_FIXTURE(fx, "unet3d");
  c10::InferenceMode guard;
  auto unet = build(fx);
  auto cond = conditions(fx);
  cond.hallo_training_path = false;
  auto out = unet->forward(fx.input("sample"), fx.input("timestep"), cond);
  RecordProperty("max_abs_diff", std::to_string((out - fx.output("sample_eval_mode")).abs().max().item<double>()));
  EXPECT_TRUE(emo::test::AllClose(out, fx.output("sample_eval_mode"), 1e-4));
}

// The second denoising step of ../shared/golden/pipeline_step, assembled from that fixture's intermediates the way
// FaceAnimatePipeline does it (CFG batch [uncond, cond], banks of step 0 reused): checks the batch layout the
// pipeline has to build around UNet3DConditionModel::forward.
TEST(GoldenUNet3D, PipelineSecondStep) {
  EMO_GOLDEN_FIXTURE(fx, "unet3d");
  EMO_GOLDEN_FIXTURE(ps, "pipeline_step");
  c10::InferenceMode guard;
  auto unet = build(fx);  // same denoiser weights and banks (reference UNet of the same set, step 0)
  const auto f = ps.config().at("pipeline").at("video_length").get<int64_t>();
  UNet3DConditions c;
  c.encoder_hidden_states = ps.output("encoder_hidden_states");  // [uncond, cond]
  auto audio = ps.output("audio_tokens");
  c.audio_embedding = torch::cat({torch::zeros_like(audio), audio});
  auto fl = ps.output("face_locator");
  c.mask_cond_fea = torch::cat({torch::zeros_like(fl), fl});
  for (int l = 0; l < 4; ++l) {
    for (auto [name, dst] : {std::pair{"full_mask.", &c.full_mask}, {"face_mask.", &c.face_mask}, {"lip_mask.", &c.lip_mask}}) {
      auto m = ps.input(name + std::to_string(l)).repeat({f, 1});  // per image -> per frame
      dst->push_back(torch::cat({m, m}));                           // CFG halves
    }
  }
  const auto& ms = ps.config().at("pipeline").at("motion_scale");
  c.motion_scale = std::array<double, 3>{ms[0].get<double>(), ms[1].get<double>(), ms[2].get<double>()};
  auto latents = ps.output("latents.step0");
  auto t = ps.output("timesteps")[1];
  auto out = unet->forward(torch::cat({latents, latents}), t, c);
  RecordProperty("max_abs_diff", std::to_string((out - ps.output("unet_out.step1")).abs().max().item<double>()));
  EXPECT_TRUE(emo::test::AllClose(out, ps.output("unet_out.step1"), 1e-4));
}
