// FaceLocator and ImageProjModel (hallo) against fixtures face_locator / image_proj: config from the
// fixture's config.json (constructor kwargs), strict weight loading, outputs within 1e-4.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "emo/weight_loader.h"
#include "models/face_locator.h"
#include "models/image_proj.h"
#include "support/golden.h"

TEST(GoldenFaceLocator, Embedding) {
  EMO_GOLDEN_FIXTURE(fx, "face_locator");
  c10::InferenceMode guard;
  emo::models::FaceLocator model(emo::models::FaceLocatorConfig::from_json(fx.config(), fx.path("config.json")));
  emo::io::LoadOptions opt;
  opt.source = fx.path("weights.safetensors");
  emo::io::load_module(*model, fx.weights(), opt);
  model->eval();
  auto out = model->forward(fx.input("conditioning"));
  EXPECT_TRUE(emo::test::AllClose(out, fx.output("embedding"), 1e-4));
  std::cout << "[face_locator] max|diff| " << (out - fx.output("embedding")).abs().max().item<double>() << "\n";
}

TEST(GoldenImageProj, TokensAndUncondTokens) {
  EMO_GOLDEN_FIXTURE(fx, "image_proj");
  c10::InferenceMode guard;
  emo::models::ImageProjModel model(emo::models::ImageProjModelConfig::from_json(fx.config(), fx.path("config.json")));
  emo::io::LoadOptions opt;
  opt.source = fx.path("weights.safetensors");
  emo::io::load_module(*model, fx.weights(), opt);
  model->eval();
  for (const auto& [in, want] : {std::pair{"face_emb", "tokens"}, std::pair{"face_emb_uncond", "tokens_uncond"}}) {
    auto out = model->forward(fx.input(in));
    EXPECT_TRUE(emo::test::AllClose(out, fx.output(want), 1e-4)) << want;
    std::cout << "[image_proj] " << want << " max|diff| " << (out - fx.output(want)).abs().max().item<double>() << "\n";
  }
}
