// `emo face`: the no-model / no-face paths, --require-face, JSON, the debug picture, and (with the golden
// stand-in pack) the full SCRFD + ArcFace + 2d106det path on a real photo.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "support/golden.h"
#include "support/run_cli.h"

namespace fs = std::filesystem;
using emo::test::run_cli;

namespace {
struct TempDir {
  fs::path path;
  TempDir() : path(fs::temp_directory_path() / ("emo_face_e2e_" + std::to_string(::getpid()))) { fs::create_directories(path); }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& f) const { return (path / f).string(); }
};

std::string q(const std::string& s) { return "'" + s + "'"; }
}  // namespace

TEST(FaceCli, NoModelsNoFaceWholeImageAndDebugPicture) {
  TempDir t;
  cv::Mat flat(240, 320, CV_8UC3, cv::Scalar(120, 140, 160));
  ASSERT_TRUE(cv::imwrite(t / "flat.png", flat));
  auto r = run_cli("face " + q(t / "flat.png") + " -o " + q(t / "debug.png") + " --masks-dir " + q(t / "masks"));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("picked: none"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("whole image"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("masks from whole_image"), std::string::npos) << r.output;
  cv::Mat dbg = cv::imread(t / "debug.png");
  ASSERT_FALSE(dbg.empty());
  EXPECT_EQ(dbg.cols, 320);
  EXPECT_GT(dbg.rows, 240);  // image + mask strip
  cv::Mat sep = cv::imread(t / "masks/sep_background.png", cv::IMREAD_GRAYSCALE);
  EXPECT_EQ(sep.size(), cv::Size(64, 64));
}

TEST(FaceCli, RequireFaceIsInputError) {
  TempDir t;
  ASSERT_TRUE(cv::imwrite(t / "flat.png", cv::Mat(100, 100, CV_8UC3, cv::Scalar(0, 0, 0))));
  auto r = run_cli("face --require-face " + q(t / "flat.png"));
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("no face"), std::string::npos) << r.output;
  // Without --require-face: the whole image is used, with one warning that names the file.
  r = run_cli("face " + q(t / "flat.png"));
  EXPECT_EQ(r.code, 0) << r.output;
  const auto first = r.output.find("flat.png: no face found");
  ASSERT_NE(first, std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("no face found", first + 23), std::string::npos) << r.output;  // only once
}

TEST(FaceCli, JsonAndErrors) {
  TempDir t;
  ASSERT_TRUE(cv::imwrite(t / "wide.png", cv::Mat(120, 300, CV_8UC3, cv::Scalar(30, 60, 90))));
  auto r = run_cli("-q face --json --square-crop " + q(t / "wide.png"));
  ASSERT_EQ(r.code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(j["width"], 120);
  EXPECT_EQ(j["height"], 120);
  EXPECT_EQ(j["crop"], nlohmann::json({90, 0, 120, 120}));
  EXPECT_EQ(j["picked"], -1);
  EXPECT_EQ(j["mask_source"], "whole_image");
  EXPECT_FALSE(j["has_embedding"].get<bool>());
  EXPECT_EQ(run_cli("face " + q(t / "missing.png")).code, 3);
  EXPECT_EQ(run_cli("face --model " + q(t / "no_such_models") + " " + q(t / "wide.png")).code, 4);
}

TEST(FaceCli, StandInPackOnRealPhoto) {
  EMO_GOLDEN_FIXTURE(fx, "face/scrfd_decode");
  TempDir t;
  fs::path golden = fs::absolute(fs::path(fx.dir()).parent_path());
  fs::create_directories(t.path / "pm/face_analysis/models");
  fs::create_symlink(golden / "scrfd_decode/model.onnx", t.path / "pm/face_analysis/models/scrfd_10g_bnkps.onnx");
  fs::create_symlink(golden / "arcface_align_embed/model.onnx", t.path / "pm/face_analysis/models/glintr100.onnx");
  fs::create_symlink(golden / "landmark106/model.onnx", t.path / "pm/face_analysis/models/2d106det.onnx");
  auto img = fx.input("image_0").contiguous();  // messi5.jpg, BGR
  cv::Mat bgr(static_cast<int>(img.size(0)), static_cast<int>(img.size(1)), CV_8UC3, img.data_ptr());
  ASSERT_TRUE(cv::imwrite(t / "photo.png", bgr));
  auto r = run_cli("face " + q(t / "photo.png") + " --model " + q((t.path / "pm").string()) + " -o " + q(t / "dbg.png"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("detector: scrfd, " + std::to_string(fx.output("det_0").size(0)) + " face(s)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("picked: #" + std::to_string(fx.output("hallo_pick_0").item<int64_t>())), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("512-d ArcFace"), std::string::npos);
  EXPECT_NE(r.output.find("landmarks: 106"), std::string::npos);
  EXPECT_NE(r.output.find("masks from landmark_2d_106"), std::string::npos);
  EXPECT_FALSE(cv::imread(t / "dbg.png").empty());
  // Precomputed MediaPipe points (normalised) give Hallo's exact-mask path.
  {
    std::ofstream l(t / "lmk.txt");
    for (int i = 0; i < 478; ++i) l << 0.3 + 0.4 * (i % 20) / 19.0 << " " << 0.2 + 0.6 * (i % 7) / 6.0 << "\n";
  }
  auto m = run_cli("face --json --landmarks " + q(t / "lmk.txt") + " --model " + q((t.path / "pm").string()) + " " + q(t / "photo.png"));
  ASSERT_EQ(m.code, 0) << m.output;
  auto mj = nlohmann::json::parse(m.output.substr(m.output.find('{')));
  EXPECT_EQ(mj["mask_source"], "mediapipe");
  EXPECT_TRUE(mj["has_embedding"].get<bool>());
  // Without models the Haar cascade runs on the same photo.
  auto h = run_cli("face --json " + q(t / "photo.png"));
  ASSERT_EQ(h.code, 0) << h.output;
  auto j = nlohmann::json::parse(h.output.substr(h.output.find('{')));
  EXPECT_EQ(j["detector"], "haar");
  if (j["picked"].get<int>() >= 0) EXPECT_EQ(j["mask_source"], "haar_estimate");
}
