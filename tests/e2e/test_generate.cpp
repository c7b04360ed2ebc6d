// `emo generate` end to end with a tiny random-weight model folder: real files in, a real MP4 out,
// probed with libavformat.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "emo/audio.h"
#include "emo/compat.h"
#include "emo/video.h"
#include "support/run_cli.h"

namespace fs = std::filesystem;
using emo::test::run_cli;

namespace {

struct Assets {
  fs::path dir, model, image, wide_image, audio;
  double seconds = 2.3;  // ceil(2.3 * 25) = 58 frames: several clips and a partial last one
};

const Assets& assets() {
  static Assets a = [] {
    Assets x;
    x.dir = fs::temp_directory_path() / ("emo_gen_" + std::to_string(::getpid()));
    fs::remove_all(x.dir);
    fs::create_directories(x.dir);
    x.model = x.dir / "model";
    auto made = run_cli("-q make-test-model '" + x.model.string() + "'");
    if (made.code != 0) throw std::runtime_error("make-test-model failed: " + made.output);
    // A portrait-ish picture: skin-coloured ellipse on a gradient.
    cv::Mat img(120, 120, CV_8UC3);
    for (int y = 0; y < img.rows; ++y)
      for (int xx = 0; xx < img.cols; ++xx) img.at<cv::Vec3b>(y, xx) = cv::Vec3b(40 + y, 60, 200 - xx);
    cv::ellipse(img, {60, 60}, {30, 40}, 0, 0, 360, cv::Scalar(120, 160, 220), -1);
    x.image = x.dir / "face.png";
    cv::imwrite(x.image.string(), img);
    cv::Mat wide;
    cv::copyMakeBorder(img, wide, 0, 0, 40, 40, cv::BORDER_REPLICATE);  // 200 x 120
    x.wide_image = x.dir / "wide.png";
    cv::imwrite(x.wide_image.string(), wide);
    std::vector<float> pcm(static_cast<size_t>(16000 * x.seconds));
    for (size_t i = 0; i < pcm.size(); ++i) pcm[i] = 0.3f * std::sin(2 * M_PI * 220 * i / 16000.0);
    x.audio = x.dir / "voice.wav";
    emo::audio::write_wav_pcm16(x.audio.string(), pcm, 16000, 1);
    return x;
  }();
  return a;
}

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

bool has_partial_files(const fs::path& dir) {
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".part-") != std::string::npos) return true;
  return false;
}

}  // namespace

TEST(Generate, WritesMp4WithAudioExactlyAsLongAsTheAudio) {
  const auto& a = assets();
  auto out = a.dir / "out.mp4";
  auto r = run_cli("-q generate -i " + q(a.image) + " -a " + q(a.audio) + " -o " + q(out) + " -m " + q(a.model));
  ASSERT_EQ(r.code, 0) << r.output;
  auto p = emo::video::probe(out.string());
  ASSERT_EQ(p.count("video"), 1u);
  ASSERT_EQ(p.count("audio"), 1u);
  const auto* v = p.first("video");
  EXPECT_EQ(v->codec, "h264");
  EXPECT_EQ(p.first("audio")->codec, "aac");
  const int64_t expected_frames = static_cast<int64_t>(std::ceil(a.seconds * 25));  // hallo: ceil(seconds * fps)
  EXPECT_EQ(v->frames, expected_frames);
  EXPECT_EQ(v->width, 64);
  EXPECT_NEAR(v->duration, expected_frames / 25.0, 1e-3);
  EXPECT_NEAR(p.first("audio")->duration, expected_frames / 25.0, 1024.0 / 44100 + 1e-3);
  EXPECT_NE(p.metadata["comment"].find("\"seed\":42"), std::string::npos) << p.metadata["comment"];
  // Sidecar with parameters, hashes and timings.
  std::ifstream side((a.dir / "out.json").string());
  ASSERT_TRUE(side.good());
  auto j = nlohmann::json::parse(side);
  EXPECT_EQ(j.at("frames").get<int64_t>(), expected_frames);
  EXPECT_TRUE(j.at("model").contains("hallo/net.pth"));
  EXPECT_TRUE(j.at("timings_s").contains("denoise"));
  EXPECT_EQ(j.at("attention").get<std::string>(), "sdpa");
  EXPECT_EQ(j.at("vae_layout").get<std::string>(), "nchw");  // --vae-layout auto
  EXPECT_FALSE(has_partial_files(a.dir));
}

TEST(Generate, SameSeedSameVideoDifferentSeedDifferentVideo) {
  const auto& a = assets();
  auto gen = [&](const std::string& name, int seed) {
    auto out = a.dir / name;
    auto r = run_cli("-q generate -i " + q(a.image) + " -a " + q(a.audio) + " -o " + q(out) + " -m " + q(a.model) +
                     " --no-sidecar --crf 0 -s " + std::to_string(seed));
    EXPECT_EQ(r.code, 0) << r.output;
    emo::video::VideoReader rd(out.string());
    return rd.read_all();
  };
  auto x = gen("s1.mp4", 7), y = gen("s2.mp4", 7), z = gen("s3.mp4", 8);
  ASSERT_EQ(x.size(), y.size());
  ASSERT_FALSE(x.empty());
  double same = 0, diff = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    same += cv::norm(x[i], y[i], cv::NORM_L1);
    diff += cv::norm(x[i], z[i], cv::NORM_L1);
  }
  EXPECT_EQ(same, 0.0);
  EXPECT_GT(diff, 0.0);
  EXPECT_FALSE(fs::exists(a.dir / "s1.json"));
}

TEST(Generate, MkvAndPasteBackIntoNonSquarePortrait) {
  const auto& a = assets();
  auto out = a.dir / "wide.mkv";
  auto r = run_cli("-q generate -i " + q(a.wide_image) + " -a " + q(a.audio) + " -o " + q(out) + " -m " + q(a.model) +
                   " --paste-back --attention math");
  ASSERT_EQ(r.code, 0) << r.output;
  std::ifstream side((a.dir / "wide.json").string());
  ASSERT_TRUE(side.good());
  EXPECT_EQ(nlohmann::json::parse(side).at("attention").get<std::string>(), "math");
  auto p = emo::video::probe(out.string());
  ASSERT_NE(p.first("video"), nullptr);
  EXPECT_EQ(p.first("video")->width, 200);
  EXPECT_EQ(p.first("video")->height, 120);
  EXPECT_NE(p.format.find("matroska"), std::string::npos);
}

TEST(Generate, BadInputsGiveOneLineErrorsAndDocumentedCodes) {
  const auto& a = assets();
  auto out = a.dir / "bad.mp4";
  auto base = " -o " + q(out) + " -m " + q(a.model);
  auto r = run_cli("generate -i /nope/face.png -a " + q(a.audio) + base);
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("/nope/face.png"), std::string::npos);
  r = run_cli("generate -i " + q(a.image) + " -a /nope/voice.wav" + base);
  EXPECT_EQ(r.code, 3) << r.output;
  auto junk = a.dir / "junk.wav";
  std::ofstream(junk.string()) << "not audio at all";
  r = run_cli("generate -i " + q(a.image) + " -a " + q(junk) + base);
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("junk.wav"), std::string::npos);
  r = run_cli("generate -i " + q(a.image) + " -a " + q(a.audio) + " -o " + q(out) + " -m " + q(a.dir / "nomodel"));
  EXPECT_EQ(r.code, 4) << r.output;
  auto corrupt = a.dir / "corrupt.png";
  std::ofstream(corrupt.string()) << "\x89PNG\r\n\x1a\n but not really";
  r = run_cli("generate -i " + q(corrupt) + " -a " + q(a.audio) + base);
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("corrupt.png"), std::string::npos) << r.output;
  {  // a video file without an audio track given as --audio
    auto silent = a.dir / "silent.mp4";
    emo::video::VideoWriter w(silent.string(), 64, 64, {});
    cv::Mat f(64, 64, CV_8UC3, cv::Scalar(1, 2, 3));
    for (int i = 0; i < 5; ++i) w.write(f);
    w.finish();
    r = run_cli("generate -i " + q(a.image) + " -a " + q(silent) + base);
    EXPECT_EQ(r.code, 3) << r.output;
    EXPECT_NE(r.output.find("silent.mp4"), std::string::npos) << r.output;
  }
  r = run_cli("generate -i " + q(a.image) + " -a " + q(a.audio) + base + " --dtype fp8");
  EXPECT_EQ(r.code, 2) << r.output;
  std::vector<std::string> bad_runtime{" --device tpu", " --device cuda:x", " --attention fast", " --sampler euler",
                                       " --vae-layout nhcw"};
  if (!emo::compat::cuda_available()) bad_runtime.push_back(" --device cuda");  // no CUDA here: a usage error
  for (const auto& flag : bad_runtime) {
    r = run_cli("generate -i " + q(a.image) + " -a " + q(a.audio) + base + flag);
    EXPECT_EQ(r.code, 2) << flag << ": " << r.output;
  }
  r = run_cli("generate -i " + q(a.image) + " -a " + q(a.audio) + " -o /nonexistent-dir/x.mp4 -m " + q(a.model));
  EXPECT_EQ(r.code, 5) << r.output;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(has_partial_files(a.dir));
}

TEST(Generate, MultistepSamplersRenderFromTheSameNoiseAndAreRecorded) {
  const auto& a = assets();
  auto gen = [&](const std::string& name, const std::string& flags) {
    auto out = a.dir / name;
    auto r = run_cli("-q generate -i " + q(a.image) + " -a " + q(a.audio) + " -o " + q(out) + " -m " + q(a.model) +
                     " --crf 0 -s 3 --steps 3" + flags);
    EXPECT_EQ(r.code, 0) << r.output;
    std::ifstream side((a.dir / (fs::path(name).stem().string() + ".json")).string());
    EXPECT_TRUE(side.good());
    auto j = nlohmann::json::parse(side);
    emo::video::VideoReader rd(out.string());
    return std::make_pair(j, rd.read_all());
  };
  auto [jd, ddim] = gen("ddim3.mp4", "");
  EXPECT_EQ(jd.at("sampler").get<std::string>(), "ddim") << jd.dump();
  ASSERT_EQ(ddim.size(), static_cast<size_t>(std::ceil(a.seconds * 25)));
  for (const std::string sampler : {"dpmpp-2m", "unipc"}) {
    SCOPED_TRACE(sampler);
    auto [j, frames] = gen(sampler + "3.mp4", " --sampler " + sampler);
    EXPECT_EQ(j.at("sampler").get<std::string>(), sampler) << j.dump();
    ASSERT_EQ(frames.size(), ddim.size());
    double diff = 0;
    for (size_t i = 0; i < frames.size(); ++i) diff += cv::norm(frames[i], ddim[i], cv::NORM_L1);
    EXPECT_GT(diff, 0.0);  // a different solver over the same 3 timesteps
  }
}

TEST(Generate, VaeLayoutsRenderTheSameVideo) {
  const auto& a = assets();
  // One clip (0.2 s = 5 frames): over chained clips the random-weight tiny model amplifies float rounding
  // differences (motion frames feed back), so only the first clip is comparable between layouts.
  std::vector<float> pcm(3200);
  for (size_t i = 0; i < pcm.size(); ++i) pcm[i] = 0.3f * std::sin(2 * M_PI * 220 * i / 16000.0);
  const auto short_audio = a.dir / "short.wav";
  emo::audio::write_wav_pcm16(short_audio.string(), pcm, 16000, 1);
  auto gen = [&](const std::string& name, const std::string& layout) {
    auto out = a.dir / name;
    auto r = run_cli("-q generate -i " + q(a.image) + " -a " + q(short_audio) + " -o " + q(out) + " -m " + q(a.model) +
                     " --crf 0 -s 5 --vae-layout " + layout);
    EXPECT_EQ(r.code, 0) << r.output;
    std::ifstream side((a.dir / (fs::path(name).stem().string() + ".json")).string());
    EXPECT_EQ(nlohmann::json::parse(side).at("vae_layout").get<std::string>(), layout);
    emo::video::VideoReader rd(out.string());
    return rd.read_all();
  };
  auto nhwc = gen("nhwc.mp4", "nhwc"), nchw = gen("nchw.mp4", "nchw");
  ASSERT_EQ(nhwc.size(), nchw.size());
  ASSERT_FALSE(nhwc.empty());
  double total = 0, pixels = 0;
  for (size_t i = 0; i < nhwc.size(); ++i) {
    total += cv::norm(nhwc[i], nchw[i], cv::NORM_L1);
    pixels += static_cast<double>(nhwc[i].total() * nhwc[i].channels());
  }
  EXPECT_LT(total / pixels, 0.5);  // float rounding only (measured 0.10; a wrong layout gives tens)
}

TEST(Generate, HelpShowsDefaults) {
  auto r = run_cli("generate --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("--cfg-scale"), std::string::npos);
  EXPECT_NE(r.output.find("--seed"), std::string::npos);
  EXPECT_NE(r.output.find("=42"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("dpmpp-2m"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("unipc"), std::string::npos) << r.output;
}

TEST(Generate, EmoPresetWithSpeedLayersAndZeroFirstMotionFrames) {
  const auto& a = assets();
  auto model = a.dir / "emo_model";
  auto made = run_cli("-q make-test-model --preset emo --seed 5 " + q(model));
  ASSERT_EQ(made.code, 0) << made.output;
  auto gen = [&](const std::string& name, double speed) {
    auto out = a.dir / name;
    auto r = run_cli("-q generate -i " + q(a.image) + " -a " + q(a.audio) + " -o " + q(out) + " -m " + q(model) +
                     " --crf 0 --speed " + std::to_string(speed));
    EXPECT_EQ(r.code, 0) << r.output;
    emo::video::VideoReader rd(out.string());
    return rd.read_all();
  };
  auto slow = gen("emo_slow.mp4", 0.2), fast = gen("emo_fast.mp4", 1.3);
  ASSERT_EQ(slow.size(), static_cast<size_t>(std::ceil(a.seconds * 25)));
  double diff = 0;
  for (size_t i = 0; i < slow.size(); ++i) diff += cv::norm(slow[i], fast[i], cv::NORM_L1);
  EXPECT_GT(diff, 0.0) << "--speed must change the output when the model has speed layers";
}

// Device guard (pipeline::check_placement): every tensor handed to the networks must already be on their device and
// in their dtype. No GPU here, so bf16 on the CPU stands in for a second device: a host fp32 tensor that reaches the
// networks unplaced (as the motion frames of clip 2+ did on CUDA before the clip loop placed them) fails the job.
// Four clips (58 frames of 16) so that chained motion frames cross the boundary three times.
TEST(Generate, DeviceGuardHoldsOverFourChainedClipsInBf16) {
  const auto& a = assets();
  auto out = a.dir / "bf16.mp4";
  auto r = run_cli("-q generate -i " + q(a.image) + " -a " + q(a.audio) + " -o " + q(out) + " -m " + q(a.model) +
                   " --dtype bf16 --steps 2");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output.find("device guard"), std::string::npos) << r.output;
  auto p = emo::video::probe(out.string());
  const int64_t expected_frames = static_cast<int64_t>(std::ceil(a.seconds * 25));
  ASSERT_NE(p.first("video"), nullptr);
  EXPECT_EQ(p.first("video")->frames, expected_frames);
  std::ifstream side((a.dir / "bf16.json").string());
  auto j = nlohmann::json::parse(side);
  EXPECT_EQ(j.at("dtype").get<std::string>(), "BFloat16");
  EXPECT_EQ(j.at("frames").get<int64_t>(), expected_frames);
}

// Non-square portraits: Hallo resizes the whole image to SxS (a squash); --crop animates a square around the face.
TEST(Generate, NonSquarePortraitIsResizedAsHalloUnlessCrop) {
  const auto& a = assets();
  auto run = [&](const std::string& name, const std::string& flags) {
    auto out = a.dir / (name + ".mp4");
    auto r = run_cli("-q generate -i " + q(a.wide_image) + " -a " + q(a.audio) + " -o " + q(out) + " -m " + q(a.model) +
                     " --steps 1 --crf 0" + flags);
    EXPECT_EQ(r.code, 0) << r.output;
    std::ifstream side((a.dir / (name + ".json")).string());
    auto j = nlohmann::json::parse(side);
    emo::video::VideoReader rd(out.string());
    auto frames = rd.read_all();
    return std::make_pair(j.value("portrait", std::string("?")), frames.at(0).clone());
  };
  auto [mode_resize, f_resize] = run("wide_resize", "");
  auto [mode_crop, f_crop] = run("wide_crop", " --crop");
  EXPECT_EQ(mode_resize, "resize");
  EXPECT_EQ(mode_crop, "crop");
  EXPECT_EQ(f_resize.cols, 64);  // the tiny model's size, in both modes
  EXPECT_EQ(f_crop.cols, 64);
  EXPECT_GT(cv::norm(f_resize, f_crop, cv::NORM_L1), 0.0);  // different pixels reached the networks
}
