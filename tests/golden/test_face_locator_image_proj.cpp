// hallo.models.face_locator.FaceLocator and hallo.models.image_proj.ImageProjModel vs their fixtures.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "emo/weight_loader.h"
#include "models/unet3d/face_locator.h"
#include "models/unet3d/image_proj.h"
#include "support/golden.h"

TEST(GoldenFaceLocator, MatchesHallo) {
  EMO_GOLDEN_FIXTURE(fx, "face_locator");
  c10::InferenceMode guard;
  emo::models::FaceLocator fl(emo::models::FaceLocatorConfig::from_json(fx.config()));
  emo::io::load_module(*fl, fx.weights(), {"", true, {}, fx.path("weights.safetensors")});
  EXPECT_TRUE(emo::test::AllClose(fl->forward(fx.input("conditioning")), fx.output("embedding"), 1e-4));
}

TEST(GoldenImageProj, MatchesHallo) {
  EMO_GOLDEN_FIXTURE(fx, "image_proj");
  c10::InferenceMode guard;
  emo::models::ImageProjModel ip(emo::models::ImageProjModelConfig::from_json(fx.config()));
  emo::io::load_module(*ip, fx.weights(), {"", true, {}, fx.path("weights.safetensors")});
  EXPECT_TRUE(emo::test::AllClose(ip->forward(fx.input("face_emb")), fx.output("tokens"), 1e-4));
  EXPECT_TRUE(emo::test::AllClose(ip->forward(fx.input("face_emb_uncond")), fx.output("tokens_uncond"), 1e-4));
}
