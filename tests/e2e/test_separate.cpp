// `emo separate` on an mp3 and `emo generate` recording the vocal separation in its sidecar, with the stand-in
// Kim_Vocal_2 of tests/data/mdx/ (random weights, the real file's signature).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "emo/audio.h"
#include "emo/separator.h"
#include "support/audio_encode.h"
#include "support/run_cli.h"

namespace fs = std::filesystem;
using emo::test::run_cli;

namespace {

const std::string kData = std::string(EMO_SOURCE_DIR) + "/tests/data/mdx";

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

fs::path work_dir() {
  static fs::path d = [] {
    auto x = fs::temp_directory_path() / ("emo_sep_" + std::to_string(::getpid()));
    fs::remove_all(x);
    fs::create_directories(x);
    return x;
  }();
  return d;
}

// 3 s of the fixture's mix, encoded as a 44.1 kHz stereo mp3.
fs::path song_mp3() {
  static fs::path p = [] {
    emo::audio::DecodeOptions o;
    o.sample_rate = 44100;
    o.channels = 2;
    auto d = emo::audio::decode_audio(kData + "/mix.wav", o);
    const size_t n = 3 * 44100;
    std::vector<float> pcm(n * 2);
    for (size_t i = 0; i < n; ++i) {
      pcm[2 * i] = d.planes[0][i];
      pcm[2 * i + 1] = d.planes[1][i];
    }
    auto path = work_dir() / "song.mp3";
    if (!emo::test::encode_audio(path.string(), "libmp3lame", pcm, 44100, 2)) return fs::path();
    return path;
  }();
  return p;
}

bool leftovers(const fs::path& dir) {
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".part") != std::string::npos ||
        e.path().filename().string().find(".tmp") != std::string::npos)
      return true;
  return false;
}

TEST(CliSeparate, WritesTheVocalsStemOfAnMp3) {
  const auto mp3 = song_mp3();
  if (mp3.empty()) GTEST_SKIP() << "libmp3lame encoder not available in this libavcodec";
  const auto out = work_dir() / "out" / "vocals.wav";
  fs::create_directories(out.parent_path());
  auto r = run_cli("separate -i " + q(mp3) + " -o " + q(out) + " --model " + q(kData + "/model.onnx"));
  ASSERT_EQ(r.code, 0) << r.output;
  ASSERT_TRUE(fs::exists(out));
  EXPECT_FALSE(leftovers(out.parent_path()));
  emo::audio::DecodeOptions o;
  o.sample_rate = 44100;
  o.channels = 0;
  auto wav = emo::audio::decode_audio(out.string(), o);
  EXPECT_EQ(wav.source.codec, "pcm_s16le");
  EXPECT_EQ(wav.source.sample_rate, 44100);
  EXPECT_EQ(wav.channels(), 2);
  // as long as the mix audio-separator would load from the mp3
  EXPECT_EQ(wav.num_samples(), emo::audio::load_mix(mp3.string()).size(1));
  float peak = 0;
  for (const auto& pl : wav.planes)
    for (float v : pl) peak = std::max(peak, std::abs(v));
  EXPECT_GT(peak, 0.01f);
  EXPECT_LE(peak, 0.9f + 1e-4f);
}

TEST(CliSeparate, ModelFolderInHallosLayoutIsFound) {
  const auto mp3 = song_mp3();
  if (mp3.empty()) GTEST_SKIP() << "libmp3lame encoder not available in this libavcodec";
  const auto models = work_dir() / "pretrained";
  fs::create_directories(models / "audio_separator");
  fs::copy_file(kData + "/identity.onnx", models / "audio_separator" / "Kim_Vocal_2.onnx", fs::copy_options::overwrite_existing);
  const auto out = work_dir() / "identity_vocals.wav";
  auto r = run_cli("separate -i " + q(mp3) + " -o " + q(out) + " -m " + q(models));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(out));
}

TEST(CliSeparate, ErrorsNameTheFileAndUseTheDocumentedExitCodes) {
  const auto model = q(kData + "/model.onnx");
  auto r = run_cli("separate -i " + q(work_dir() / "nope.mp3") + " -o " + q(work_dir() / "v.wav") + " --model " + model);
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("nope.mp3"), std::string::npos) << r.output;
  r = run_cli("separate -i " + q(kData + "/mix.wav") + " -o " + q(work_dir() / "v.mp3") + " --model " + model);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("v.mp3"), std::string::npos) << r.output;
  r = run_cli("separate -i " + q(kData + "/mix.wav") + " -o " + q(work_dir() / "v.wav") + " --model " + q(work_dir() / "no_models"));
  EXPECT_EQ(r.code, 4) << r.output;
  EXPECT_NE(r.output.find("no_models"), std::string::npos) << r.output;
  r = run_cli("separate -i " + q(kData + "/mix.wav") + " -o " + q(work_dir() / "missing_dir" / "v.wav") + " --model " + model);
  EXPECT_EQ(r.code, 5) << r.output;
  const auto garbage = work_dir() / "garbage.onnx";
  std::ofstream(garbage) << "not an onnx file";
  r = run_cli("separate -i " + q(kData + "/mix.wav") + " -o " + q(work_dir() / "v.wav") + " --model " + q(garbage));
  EXPECT_EQ(r.code, 4) << r.output;
  EXPECT_NE(r.output.find("garbage.onnx"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(work_dir() / "v.wav"));
}

// generate: on by default when the folder has audio_separator/Kim_Vocal_2.onnx, recorded in the sidecar.
TEST(GenerateVocalSeparation, SidecarRecordsTheSeparator) {
  const auto dir = work_dir() / "gen";
  fs::create_directories(dir);
  const auto model = dir / "model";
  auto made = run_cli("-q make-test-model " + q(model));
  ASSERT_EQ(made.code, 0) << made.output;
  cv::Mat img(96, 96, CV_8UC3, cv::Scalar(90, 120, 200));
  cv::ellipse(img, {48, 48}, {24, 32}, 0, 0, 360, cv::Scalar(120, 160, 220), -1);
  cv::imwrite((dir / "face.png").string(), img);
  std::vector<float> pcm(16000);
  for (size_t i = 0; i < pcm.size(); ++i) pcm[i] = 0.3f * std::sin(2 * M_PI * 220 * i / 16000.0) * (i % 4000 < 2500);
  emo::audio::write_wav_pcm16((dir / "voice.wav").string(), pcm, 16000, 1);
  const std::string base = "-q generate -m " + q(model) + " -i " + q(dir / "face.png") + " -a " + q(dir / "voice.wav") +
                           " --steps 1 --fps 8 -o ";

  auto read_side = [](const fs::path& mp4) {
    std::ifstream f(fs::path(mp4).replace_extension(".json"));
    return nlohmann::json::parse(f);
  };
  // no separator in the folder: off, recorded as false
  auto r = run_cli(base + q(dir / "plain.mp4"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_side(dir / "plain.mp4")["vocal_separation"], false);

  fs::create_directories(model / "audio_separator");
  fs::copy_file(kData + "/model.onnx", model / "audio_separator" / "Kim_Vocal_2.onnx");
  r = run_cli(base + q(dir / "sep.mp4"));
  ASSERT_EQ(r.code, 0) << r.output;
  auto side = read_side(dir / "sep.mp4");
  ASSERT_TRUE(side["vocal_separation"].is_object()) << side.dump(1);
  EXPECT_EQ(side["vocal_separation"]["model"], "audio_separator/Kim_Vocal_2.onnx");
  EXPECT_EQ(side["vocal_separation"]["sha256"].get<std::string>().size(), 64u);
  EXPECT_TRUE(side["timings_s"].contains("vocal_separation"));

  r = run_cli(base + q(dir / "off.mp4") + " --no-vocal-separation");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_side(dir / "off.mp4")["vocal_separation"], false);
}

}  // namespace
