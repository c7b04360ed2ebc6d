// `emo eval` on short synthetic clips (frame folders): per-clip SSIM / PSNR, folder-mode pairing, FID with
// the eval/fid_inception fixture weights, and metrics without weights reported as unavailable.
#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "emo/eval.h"
#include "emo/state_dict.h"
#include "emo/video.h"
#include "support/golden.h"
#include "support/run_cli.h"

namespace fs = std::filesystem;
namespace ev = emo::eval;
using emo::test::run_cli;

namespace {
fs::path scratch(const std::string& name) {
  auto d = fs::temp_directory_path() / ("emo_eval_e2e_" + std::to_string(::getpid())) / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// Writes T frames [T, H, W, 3] RGB uint8 as PNGs; returns the frames.
at::Tensor write_clip(const fs::path& dir, int64_t seed, int64_t t, int64_t h, int64_t w, const at::Tensor& base = {}) {
  fs::create_directories(dir);
  torch::manual_seed(seed);
  at::Tensor frames = base.defined()
                          ? (base.to(torch::kInt16) + torch::randint(-12, 13, base.sizes(), torch::kInt16)).clamp(0, 255).to(torch::kUInt8)
                          : torch::randint(0, 256, {t, h, w, 3}, torch::kUInt8);
  for (int64_t i = 0; i < t; ++i) {
    auto f = frames[i].flip(2).contiguous();  // RGB -> BGR for imwrite
    cv::Mat m(static_cast<int>(h), static_cast<int>(w), CV_8UC3, f.data_ptr<uint8_t>());
    char name[32];
    std::snprintf(name, sizeof name, "%06lld.png", static_cast<long long>(i + 1));
    EXPECT_TRUE(cv::imwrite((dir / name).string(), m));
  }
  return frames;
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f);
}
}  // namespace

TEST(CliEval, SingleClipSsimPsnrAndUnavailableMetrics) {
  auto root = scratch("single");
  auto ref = write_clip(root / "ref", 1, 4, 40, 48);
  auto pred = write_clip(root / "pred", 2, 4, 40, 48, ref);
  fs::create_directories(root / "weights");
  auto r = run_cli("eval --pred '" + (root / "pred").string() + "' --ref '" + (root / "ref").string() +
                   "' --weights '" + (root / "weights").string() + "' --json '" + (root / "out.json").string() + "'");
  ASSERT_EQ(r.code, 0) << r.output;
  auto j = read_json(root / "out.json");
  // Weight-less metrics run; the others say which file they need.
  ASSERT_TRUE(j["metrics"]["ssim"]["available"].get<bool>()) << j.dump(2);
  double want_ssim = 0, want_psnr = 0;
  for (int i = 0; i < 4; ++i) {
    want_ssim += ev::ssim(pred[i], ref[i]) / 4;
    want_psnr += ev::psnr(pred[i], ref[i]) / 4;
  }
  EXPECT_NEAR(j["metrics"]["ssim"]["value"].get<double>(), want_ssim, 1e-12);
  EXPECT_NEAR(j["metrics"]["psnr"]["value"].get<double>(), want_psnr, 1e-9);
  EXPECT_FALSE(j["metrics"]["fid"]["available"].get<bool>());
  EXPECT_NE(j["metrics"]["fid"]["reason"].get<std::string>().find(ev::kFidWeightsFile), std::string::npos);
  EXPECT_FALSE(j["metrics"]["sync_c"]["available"].get<bool>());
  EXPECT_NE(j["metrics"]["sync_c"]["reason"].get<std::string>().find(ev::kSyncWeightsFile), std::string::npos);
  EXPECT_FALSE(j["metrics"]["fvd"]["available"].get<bool>());
  EXPECT_NE(j["metrics"]["fvd"]["reason"].get<std::string>().find(ev::kI3dWeightsFile), std::string::npos);
  EXPECT_NE(r.output.find("unavailable"), std::string::npos) << r.output;
}

TEST(CliEval, FolderModePairsByNameAndComputesFid) {
  EMO_GOLDEN_FIXTURE(fx, "eval/fid_inception");
  auto root = scratch("folders");
  // The fixture's weights under the published file name (the reader sniffs the format, not the extension).
  fs::create_directories(root / "weights");
  emo::io::write_safetensors((root / "weights" / ev::kFidWeightsFile).string(), fx.weights());
  std::vector<at::Tensor> preds, refs;
  for (int c = 0; c < 2; ++c) {
    const std::string name = "clip" + std::to_string(c);
    // One frame per clip (2 per FID set, the minimum): Inception at 299x299 dominates this test's time.
    refs.push_back(write_clip(root / "ref" / name, 10 + c, 1, 32, 32));
    preds.push_back(write_clip(root / "pred" / name, 20 + c, 1, 32, 32, refs.back()));
  }
  write_clip(root / "pred" / "unpaired", 30, 2, 32, 32);  // no reference: counted, no ref-based metrics
  auto r = run_cli("--threads 1 eval --pred '" + (root / "pred").string() + "' --ref '" + (root / "ref").string() +
                   "' --metrics fid,ssim --weights '" + (root / "weights").string() + "' --json '" +
                   (root / "out.json").string() + "'");
  ASSERT_EQ(r.code, 0) << r.output;
  auto j = read_json(root / "out.json");
  EXPECT_EQ(j["clips"].size(), 3u) << j.dump(2);
  EXPECT_FALSE(j["metrics"].contains("psnr"));
  ASSERT_TRUE(j["metrics"]["ssim"]["available"].get<bool>());
  EXPECT_EQ(j["metrics"]["ssim"]["per_clip"].size(), 2u);
  ASSERT_TRUE(j["metrics"]["fid"]["available"].get<bool>()) << j.dump(2);
  // FID over all frames of all paired clips, as the library computes it.
  auto model = ev::FidInception::from_state_dict(fx.weights());
  auto fp = model.features(torch::cat(preds)).to(torch::kFloat64), fr = model.features(torch::cat(refs)).to(torch::kFloat64);
  const double want = ev::frechet_distance(ev::feature_statistics(fp), ev::feature_statistics(fr)).distance;
  // The CLI batches frames per clip, this all at once: oneDNN picks other conv kernels per batch size on torch 2.x,
  // and FID (a matrix square root) amplifies that float32 rounding to ~1.2e-6 relative.
  EXPECT_NEAR(j["metrics"]["fid"]["value"].get<double>(), want, 1e-5 * std::max(1.0, std::abs(want)));
}

TEST(CliEval, UnknownMetricIsUsageError) {
  auto root = scratch("usage");
  write_clip(root / "pred", 3, 1, 16, 16);
  auto r = run_cli("eval --pred '" + (root / "pred").string() + "' --metrics nope");
  EXPECT_EQ(r.code, 2) << r.output;
}

// Video files, decoded with emo::video::VideoReader.
TEST(CliEval, VideoFilesSsimPsnr) {
  auto root = scratch("video");
  auto write_video = [&](const fs::path& p, int64_t seed) {
    torch::manual_seed(seed);
    auto frames = torch::randint(0, 256, {12, 48, 64, 3}, torch::kUInt8);
    emo::video::VideoWriter w(p.string(), 64, 48);
    for (int64_t i = 0; i < frames.size(0); ++i) {
      auto f = frames[i].contiguous();
      w.write(f.data_ptr<uint8_t>(), 64, 48);
    }
    w.finish();
  };
  write_video(root / "pred.mp4", 1);
  write_video(root / "ref.mp4", 2);
  auto r = run_cli("eval --pred '" + (root / "pred.mp4").string() + "' --ref '" + (root / "ref.mp4").string() +
                   "' --metrics ssim,psnr --json '" + (root / "out.json").string() + "'");
  ASSERT_EQ(r.code, 0) << r.output;
  auto j = read_json(root / "out.json");
  // Same numbers as the library on the frames the reader decodes.
  auto decode = [](const fs::path& p) {
    emo::video::VideoReader rd(p.string());
    std::vector<at::Tensor> out;
    cv::Mat m;
    while (rd.read(m)) out.push_back(torch::from_blob(m.data, {m.rows, m.cols, 3}, torch::kUInt8).clone());
    return torch::stack(out);
  };
  auto a = decode(root / "pred.mp4"), b = decode(root / "ref.mp4");
  ASSERT_EQ(a.size(0), 12);
  double s = 0;
  for (int64_t i = 0; i < a.size(0); ++i) s += ev::ssim(a[i], b[i]) / static_cast<double>(a.size(0));
  EXPECT_NEAR(j["metrics"]["ssim"]["value"].get<double>(), s, 1e-12);
  EXPECT_TRUE(j["metrics"]["psnr"]["available"].get<bool>());
}
