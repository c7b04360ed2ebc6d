// The real `emo download` binary against the in-process fake Hub (tests/support/fake_hub.h): a Hallo-layout
// repository end to end (download, final model-folder check, cheap re-run) and the documented exit codes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/fake_hub.h"
#include "support/run_cli.h"

// A named namespace: unity builds put several test files into one translation unit.
namespace emo::cli_download_test {

namespace fs = std::filesystem;
using emo::test::FakeHubRepo;
using emo::test::FakeHubServer;
using emo::test::run_cli;


std::string blob(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 31 + (i >> 7));
  return s;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Hallo's pretrained_models/ layout with small stand-ins (resolve_model checks presence and the JSON configs).
FakeHubRepo hallo_like(const std::string& id) {
  FakeHubRepo r;
  r.id = id;
  r.files = {{"hallo/net.pth", blob(200000, 1), true},
             {"motion_module/mm_sd_v15_v2.ckpt", blob(50000, 2), true},
             {"sd-vae-ft-mse/config.json", R"({"_class_name": "AutoencoderKL"})", false},
             {"sd-vae-ft-mse/diffusion_pytorch_model.safetensors", blob(40000, 3), true},
             {"stable-diffusion-v1-5/unet/config.json", R"({"_class_name": "UNet2DConditionModel"})", false},
             {"wav2vec/wav2vec2-base-960h/config.json", R"({"model_type": "wav2vec2"})", false},
             {"wav2vec/wav2vec2-base-960h/model.safetensors", blob(30000, 4), true},
             {"README.md", "# fake hallo\n", false}};
  return r;
}

// The error line is the last line, and it is one line.
std::string last_line(const std::string& out) {
  std::string s = out;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

class CliDownload : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("HF_TOKEN");
    ::unsetenv("HF_ENDPOINT");
    ::unsetenv("EMO_MODEL_DIR");
    ::setenv("no_proxy", "127.0.0.1,localhost", 1);
    ::setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    char tmpl[] = "/tmp/emo_cli_download_XXXXXX";
    root_ = ::mkdtemp(tmpl);
    dir_ = root_ / "pretrained_models";
    server_.add_repo(hallo_like("fudan-generative-vision/hallo"));
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  emo::test::CliResult download(const std::string& extra, const std::string& endpoint = "") {
    return run_cli("download --dir '" + dir_.string() + "' --endpoint " + (endpoint.empty() ? server_.endpoint() : endpoint) +
                   " " + extra);
  }
  fs::path root_, dir_;
  FakeHubServer server_;
};


TEST(CliDownloadHelp, DocumentsEveryOptionWithDefaults) {
  auto r = run_cli("download --help");
  EXPECT_EQ(r.code, 0) << r.output;
  for (const char* s : {"--dir", "--repo", "fudan-generative-vision/hallo", "--revision", "main", "--include", "--endpoint",
                        "--verify", "--retries", "--no-check", "EMO_MODEL_DIR", "pretrained_models", "HF_TOKEN", "HF_ENDPOINT",
                        "https_proxy"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;
}

TEST_F(CliDownload, FetchesHalloLayoutThenChecksTheFolder) {
  auto r = download("");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read(dir_ / "hallo/net.pth"), blob(200000, 1));
  EXPECT_NE(r.output.find("model folder " + dir_.string()), std::string::npos) << r.output;  // the `emo inspect DIR` list
  EXPECT_NE(r.output.find("[found]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ready: emo generate"), std::string::npos) << r.output;
  EXPECT_EQ(server_.count("/cdn-lfs/"), 4u);  // the four LFS weight files
  // Without a terminal, progress is plain lines: file n/N, bytes, total, rate, ETA.
  EXPECT_NE(r.output.find("/8 hallo/net.pth: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ETA"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find('\r'), std::string::npos) << "no bar redraws without a terminal";

  // `emo inspect DIR` agrees, and a re-run transfers nothing.
  auto insp = run_cli("inspect '" + dir_.string() + "'");
  EXPECT_EQ(insp.code, 0) << insp.output;
  server_.clear_requests();
  r = download("");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("0 fetched"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("8 already present and verified"), std::string::npos) << r.output;
  EXPECT_EQ(server_.count("/resolve/"), 0u);
}

TEST_F(CliDownload, DefaultsToEmoModelDirAndHfEndpoint) {
  FakeHubServer mirror("/mirror");
  mirror.add_repo(hallo_like("fudan-generative-vision/hallo"));
  ::setenv("HF_ENDPOINT", mirror.endpoint().c_str(), 1);
  ::setenv("EMO_MODEL_DIR", dir_.c_str(), 1);
  auto r = run_cli("download -q");
  ::unsetenv("HF_ENDPOINT");
  ::unsetenv("EMO_MODEL_DIR");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir_ / "hallo/net.pth"));
  EXPECT_EQ(server_.requests().size(), 0u);
  EXPECT_GE(mirror.count("/mirror/fudan-generative-vision/hallo/resolve/"), 8u);
}

TEST_F(CliDownload, InterruptedTransferResumesOnTheNextRun) {
  server_.cut_after("hallo/net.pth", 64000);
  auto r = download("--retries 0");
  EXPECT_EQ(r.code, 8) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "hallo/net.pth"));
  r = download("");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read(dir_ / "hallo/net.pth"), blob(200000, 1));
  EXPECT_EQ(server_.count_ranged("/cdn-lfs/"), 1u);
}

TEST_F(CliDownload, ExitCodes) {
  // 10: unknown repository / revision
  auto r = download("--repo org/nothing-here");
  EXPECT_EQ(r.code, 10) << r.output;
  EXPECT_NE(last_line(r.output).find("org/nothing-here"), std::string::npos) << r.output;
  r = download("--revision v0");
  EXPECT_EQ(r.code, 10) << r.output;

  // 9: private repository without / with a wrong token; 0 with the right one
  auto priv = hallo_like("org/private");
  priv.token = "hf_ok";
  server_.add_repo(priv);
  r = download("--repo org/private");
  EXPECT_EQ(r.code, 9) << r.output;
  EXPECT_NE(last_line(r.output).find("HF_TOKEN"), std::string::npos) << r.output;
  ::setenv("HF_TOKEN", "hf_bad", 1);
  EXPECT_EQ(download("--repo org/private").code, 9);
  ::setenv("HF_TOKEN", "hf_ok", 1);
  r = download("--repo org/private --no-check");
  ::unsetenv("HF_TOKEN");
  EXPECT_EQ(r.code, 0) << r.output;

  // 8: nothing listening
  r = download("--retries 0", emo::test::unreachable_endpoint());
  EXPECT_EQ(r.code, 8) << r.output;
  EXPECT_NE(last_line(r.output).find("no network?"), std::string::npos) << r.output;
}

TEST_F(CliDownload, ChecksumMismatchIsExit11AndKeepsTheGoodFile) {
  ASSERT_EQ(download("").code, 0);
  const std::string good = read(dir_ / "sd-vae-ft-mse/diffusion_pytorch_model.safetensors");
  server_.replace_content("sd-vae-ft-mse/diffusion_pytorch_model.safetensors", blob(40001, 9));
  server_.corrupt("sd-vae-ft-mse/diffusion_pytorch_model.safetensors");
  auto r = download("");
  EXPECT_EQ(r.code, 11) << r.output;
  const std::string err = last_line(r.output);
  EXPECT_NE(err.find("checksum mismatch"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("checksum mismatch"), r.output.rfind("checksum mismatch")) << "reported once:\n" << r.output;
  EXPECT_EQ(read(dir_ / "sd-vae-ft-mse/diffusion_pytorch_model.safetensors"), good);
  for (const auto& e : fs::recursive_directory_iterator(dir_))
    EXPECT_EQ(e.path().string().find(".part-"), std::string::npos) << e.path();
}

TEST_F(CliDownload, DiskSpaceAndIncompleteFolders) {
  // 5: the listing wants more than the disk has; nothing is fetched
  server_.set_listed_size("hallo/net.pth", uint64_t{1} << 60);
  auto r = download("");
  EXPECT_EQ(r.code, 5) << r.output;
  EXPECT_NE(last_line(r.output).find("not enough disk space"), std::string::npos) << r.output;
  EXPECT_EQ(server_.count("/resolve/"), 0u);

  // 4: a full download of a repository that is not a complete model folder
  FakeHubRepo partial = hallo_like("org/partial");
  partial.files.erase(partial.files.begin());  // no hallo/net.pth
  server_.add_repo(partial);
  r = download("--repo org/partial");
  EXPECT_EQ(r.code, 4) << r.output;
  EXPECT_NE(last_line(r.output).find("hallo/net.pth"), std::string::npos) << r.output;
  // ... which --no-check skips, and --include only warns about
  EXPECT_EQ(download("--repo org/partial --no-check").code, 0);
  r = download("--repo org/partial --include 'wav2vec/'");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("not a complete model folder"), std::string::npos) << r.output;
  // 2: --include that matches nothing is a usage error
  EXPECT_EQ(download("--include 'nothing/*'").code, 2);
}

}  // namespace emo::cli_download_test
