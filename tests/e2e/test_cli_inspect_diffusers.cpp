// `emo inspect` on a diffusers unet/ or vae/ folder reports the network config it detected.
#include <gtest/gtest.h>

#include "support/golden.h"
#include "support/run_cli.h"

using emo::test::run_cli;

TEST(CliInspectDiffusers, UNetFolderReportsConfig) {
  EMO_GOLDEN_FIXTURE(fx, "unet2d");
  auto r = run_cli("inspect " + fx.dir());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("UNet2DConditionModel"), std::string::npos) << r.output;
  std::string channels = "block_out_channels [";
  for (const auto& c : fx.config().at("block_out_channels")) channels += (channels.back() == '[' ? "" : ", ") + c.dump();
  EXPECT_NE(r.output.find(channels + "]"), std::string::npos) << r.output;
}

TEST(CliInspectDiffusers, VaeFolderReportsConfig) {
  EMO_GOLDEN_FIXTURE(fx, "vae");
  auto r = run_cli("inspect " + fx.dir());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("AutoencoderKL"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("latent " + fx.config().at("latent_channels").dump()), std::string::npos) << r.output;
}
