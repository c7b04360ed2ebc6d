#include <gtest/gtest.h>

#include "support/golden.h"
#include "support/run_cli.h"

using emo::test::run_cli;

TEST(Cli, HelpListsSubcommandsAndDefaults) {
  auto r = run_cli("--help");
  EXPECT_EQ(r.code, 0) << r.output;
  for (const char* sub : {"generate", "batch", "inspect", "bench"}) EXPECT_NE(r.output.find(sub), std::string::npos) << sub;
  EXPECT_NE(r.output.find("--threads"), std::string::npos);
}

TEST(Cli, VersionPrintsTorchVersion) {
  auto r = run_cli("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("libtorch"), std::string::npos) << r.output;
}

TEST(Cli, UnknownFlagIsUsageError) {
  auto r = run_cli("inspect --no-such-flag x");
  EXPECT_EQ(r.code, 2) << r.output;
}

TEST(Cli, InspectMissingFileIsInputError) {
  auto r = run_cli("inspect /nonexistent/weights.safetensors");
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("/nonexistent/weights.safetensors"), std::string::npos) << r.output;
}

TEST(Cli, InspectGoldenSafetensors) {
  EMO_GOLDEN_FIXTURE(fx, "unet2d");
  auto r = run_cli("inspect '" + fx.path("weights.safetensors") + "'");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("conv_in.weight"), std::string::npos);
  EXPECT_NE(r.output.find("440 tensors"), std::string::npos) << r.output.substr(0, 300);
  EXPECT_NE(r.output.find("419588 parameters"), std::string::npos);
}

TEST(Cli, InspectPthAndHostileFile) {
  EMO_GOLDEN_FIXTURE(fx, "pth");
  auto ok = run_cli("inspect --json '" + fx.path("state_dict_legacy.pth") + "'");
  EXPECT_EQ(ok.code, 0) << ok.output;
  EXPECT_NE(ok.output.find("torch.save (legacy)"), std::string::npos);
  auto bad = run_cli("inspect '" + fx.path("malicious.pth") + "'");
  EXPECT_EQ(bad.code, 4) << bad.output;
  EXPECT_NE(bad.output.find("malicious.pth"), std::string::npos);
  EXPECT_EQ(bad.output.find('\n'), bad.output.size() - 1) << "error should be one line: " << bad.output;
}
