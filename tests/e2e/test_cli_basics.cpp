#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "emo/compat.h"
#include "support/golden.h"
#include "support/run_cli.h"

using emo::test::run_cli;

TEST(Cli, HelpListsSubcommandsAndDefaults) {
  auto r = run_cli("--help");
  EXPECT_EQ(r.code, 0) << r.output;
  for (const char* sub : {"generate", "batch", "inspect", "bench"}) EXPECT_NE(r.output.find(sub), std::string::npos) << sub;
  EXPECT_NE(r.output.find("--threads"), std::string::npos);
}

// emo, torch, the CUDA and cuDNN versions libtorch was built against, and the CUDA devices (none on CI machines).
TEST(Cli, VersionPrintsTorchCudaCudnnAndDevices) {
  auto r = run_cli("--version");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("emo " EMO_VERSION), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("torch " + emo::compat::torch_version()), std::string::npos) << r.output;
  const auto info = emo::compat::build_info();
  EXPECT_TRUE(info.cuda_built) << "this build should link libtorch_cuda (scripts/setup.sh installs the CUDA wheel)";
  EXPECT_NE(r.output.find("CUDA " + info.cuda + " (built against)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cuDNN "), std::string::npos) << r.output;
  if (info.devices.empty()) EXPECT_NE(r.output.find("no CUDA device"), std::string::npos) << r.output;
  else EXPECT_NE(r.output.find("cuda:0 " + info.devices[0].name), std::string::npos) << r.output;
}

// The CUDA code paths are compiled and linked on every build, GPU or not.
TEST(Cli, BinaryLinksLibtorchCuda) {
  FILE* f = ::popen("ldd '" EMO_CLI_PATH "' 2>&1", "r");
  ASSERT_NE(f, nullptr);
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  ::pclose(f);
  EXPECT_NE(out.find("libtorch_cuda.so"), std::string::npos) << out;
  EXPECT_EQ(out.find("not found"), std::string::npos) << out;
}

TEST(Cli, ProbeReportsStreamsAndRejectsNonMedia) {
  auto r = run_cli("probe /nonexistent/file.mp4");
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("/nonexistent/file.mp4"), std::string::npos) << r.output;
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
