// hallo.models.motion_module.VanillaTemporalModule vs ../shared/golden/motion_module.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "emo/weight_loader.h"
#include "models/unet3d/motion_module.h"
#include "support/golden.h"

TEST(GoldenMotionModule, MatchesHallo) {
  EMO_GOLDEN_FIXTURE(fx, "motion_module");
  c10::InferenceMode guard;
  auto cfg = emo::models::MotionModuleConfig::from_json(fx.config().at("in_channels").get<int64_t>(),
                                                        fx.config().at("motion_module_kwargs"));
  emo::models::VanillaTemporalModule mm(cfg);
  emo::io::load_module(*mm, fx.weights(), {"", true, {}, fx.path("weights.safetensors")});
  auto out = mm->forward(fx.input("hidden_states"));
  RecordProperty("max_abs_diff", std::to_string((out - fx.output("hidden_states")).abs().max().item<double>()));
  EXPECT_TRUE(emo::test::AllClose(out, fx.output("hidden_states"), 1e-4));
}
