// Issue 16 "nothing bad gets through", end to end with the tiny random-weight model: parameters validated before
// any work (one message, exit 2), truncated / corrupt images refused (exit 3, the file named), EXIF orientation
// applied once (paste-back), outputs atomic with their sidecar (exit 5, nothing under the final names), and
// `emo batch` failing only the bad jobs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "emo/audio.h"
#include "emo/generate.h"
#include "emo/model_spec.h"
#include "emo/video.h"
#include "support/run_cli.h"

namespace fs = std::filesystem;
using emo::test::run_cli;

namespace {

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}
void write_bytes(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f.write(s.data(), static_cast<std::streamsize>(s.size()));
}

// A busy 120x120 picture with a face-coloured ellipse: its JPEG is far above 3000 bytes.
cv::Mat portrait(int w = 120, int h = 120) {
  cv::Mat img(h, w, CV_8UC3);
  cv::theRNG().state = 7;
  cv::randu(img, 0, 255);
  cv::ellipse(img, {w / 2, h / 2}, {w / 4, h / 3}, 0, 0, 360, cv::Scalar(120, 160, 220), -1);
  return img;
}

// A JPEG carrying an EXIF APP1 segment with the given orientation tag (big-endian TIFF, IFD0 with one entry).
std::string jpeg_with_orientation(const cv::Mat& bgr, int orientation) {
  std::vector<unsigned char> jpg;
  cv::imencode(".jpg", bgr, jpg);
  std::string tiff = std::string("MM\0\x2a", 4) + std::string("\0\0\0\x08", 4) + std::string("\0\x01", 2) +
                     std::string("\x01\x12\0\x03\0\0\0\x01", 8) + std::string(1, '\0') +
                     std::string(1, static_cast<char>(orientation)) + std::string("\0\0", 2) + std::string("\0\0\0\0", 4);
  std::string payload = std::string("Exif\0\0", 6) + tiff;
  const size_t len = payload.size() + 2;
  std::string app1 = std::string("\xff\xe1", 2) + static_cast<char>(len >> 8) + static_cast<char>(len & 0xff) + payload;
  std::string bytes(jpg.begin(), jpg.end());
  return bytes.substr(0, 2) + app1 + bytes.substr(2);
}

struct Assets {
  fs::path dir, model, image, jpeg, audio;
};

const Assets& assets() {
  static Assets a = [] {
    Assets x;
    x.dir = fs::temp_directory_path() / ("emo_robust_" + std::to_string(::getpid()));
    fs::remove_all(x.dir);
    fs::create_directories(x.dir);
    x.model = x.dir / "model";
    auto made = run_cli("-q make-test-model " + q(x.model));
    if (made.code != 0) throw std::runtime_error("make-test-model failed: " + made.output);
    x.image = x.dir / "face.png";
    cv::imwrite(x.image.string(), portrait());
    x.jpeg = x.dir / "face.jpg";
    cv::imwrite(x.jpeg.string(), portrait(), {cv::IMWRITE_JPEG_QUALITY, 95});
    std::vector<float> pcm(16000 * 7 / 10);  // 0.7 s: one clip of the tiny model
    for (size_t i = 0; i < pcm.size(); ++i) pcm[i] = 0.3f * std::sin(2 * M_PI * 220 * i / 16000.0);
    x.audio = x.dir / "voice.wav";
    emo::audio::write_wav_pcm16(x.audio.string(), pcm, 16000, 1);
    return x;
  }();
  return a;
}

bool has_partial_files(const fs::path& dir) {
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".part-") != std::string::npos) return true;
  return false;
}

int count_lines_with(const std::string& text, const std::string& needle) {
  int n = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (text.substr(start, end - start).find(needle) != std::string::npos) ++n;
    start = end + 1;
  }
  return n;
}

}  // namespace

// --width 520 used to pass (520 % 8 == 0) and fail after face analysis, audio, VAE and ReferenceNet had run;
// negative values silently became the preset's.
TEST(RobustParams, GenerateRefusesEveryBadValueInOneMessageBeforeAnyWork) {
  const auto& a = assets();
  const auto out = a.dir / "params.mp4";
  const std::string base = "generate -i " + q(a.image) + " -a " + q(a.audio) + " -o " + q(out);
  auto r = run_cli(base + " -m " + q(a.model) + " --width 520");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("width 520"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("multiple of 64"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("loaded"), std::string::npos) << "the model must not be loaded: " << r.output;

  r = run_cli(base + " -m " + q(a.model) + " --width=-64 --steps=-3 --cfg-scale=0.5 --fps=-1 --crf=60 --lip-weight=-1");
  EXPECT_EQ(r.code, 2) << r.output;
  for (const char* what : {"width -64", "steps -3", "cfg_scale 0.5", "fps -1", "crf 60", "lip_weight -1"}) {
    EXPECT_NE(r.output.find(what), std::string::npos) << what << ": " << r.output;
    EXPECT_EQ(count_lines_with(r.output, what), 1) << "one message lists every bad value: " << r.output;
  }
  EXPECT_EQ(count_lines_with(r.output, "width -64"), 1);
  EXPECT_EQ(r.output.find("loaded"), std::string::npos) << r.output;

  // Model-independent checks come before the model folder is even looked at.
  r = run_cli(base + " -m " + q(a.dir / "no-such-model") + " --steps=-1");
  EXPECT_EQ(r.code, 2) << r.output;
  // The tiny model is a Hallo model: no speed layers, so --speed would do nothing.
  r = run_cli(base + " -m " + q(a.model) + " --speed 0.5");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("speed"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
}

// A JPEG cut short used to render (libjpeg printed "Premature end of JPEG file" and filled the rest grey).
TEST(RobustImages, TruncatedOrCorruptImagesAreRefusedNamingTheFile) {
  const auto& a = assets();
  const auto out = a.dir / "img.mp4";
  const auto cut = a.dir / "cut.jpg";
  const std::string jpg = read_bytes(a.jpeg);
  ASSERT_GT(jpg.size(), 6000u);
  write_bytes(cut, jpg.substr(0, 3000));
  auto r = run_cli("generate -i " + q(cut) + " -a " + q(a.audio) + " -o " + q(out) + " -m " + q(a.model));
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_EQ(count_lines_with(r.output, "cut.jpg"), 1) << r.output;
  EXPECT_NE(r.output.find("Premature end of JPEG file"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));

  // A PNG with a damaged image chunk (CRC mismatch) and one cut before IEND.
  std::string png = read_bytes(a.image);
  const size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  std::string damaged = png;
  damaged[idat + 20] = static_cast<char>(damaged[idat + 20] ^ 0x5a);
  write_bytes(a.dir / "damaged.png", damaged);
  write_bytes(a.dir / "short.png", png.substr(0, png.size() - 12));  // without IEND
  for (const char* name : {"damaged.png", "short.png"}) {
    r = run_cli("generate -i " + q(a.dir / name) + " -a " + q(a.audio) + " -o " + q(out) + " -m " + q(a.model));
    EXPECT_EQ(r.code, 3) << name << ": " << r.output;
    EXPECT_EQ(count_lines_with(r.output, name), 1) << r.output;
  }
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(has_partial_files(a.dir));
}

// A phone photo stored sideways with EXIF orientation 6: the analysis used to see the stored pixels and
// paste-back the rotated ones, so the crop rectangle pointed outside the frame.
TEST(RobustImages, PasteBackOnAnExifRotatedPhotoUsesTheSameUprightPixels) {
  const auto& a = assets();
  const auto photo = a.dir / "sideways.jpg";
  write_bytes(photo, jpeg_with_orientation(portrait(160, 96), 6));  // stored 160x96, upright 96x160
  const auto out = a.dir / "sideways.mp4";
  auto r = run_cli("-q generate -i " + q(photo) + " -a " + q(a.audio) + " -o " + q(out) + " -m " + q(a.model) +
                   " --paste-back");
  ASSERT_EQ(r.code, 0) << r.output;
  auto p = emo::video::probe(out.string());
  ASSERT_NE(p.first("video"), nullptr);
  EXPECT_EQ(p.first("video")->width, 96);
  EXPECT_EQ(p.first("video")->height, 160);
}

// The sidecar could not be written, yet the video already sat under its final name.
TEST(RobustOutputs, SidecarNameTakenByADirectoryLeavesNothingAndExits5) {
  const auto& a = assets();
  const auto out = a.dir / "blocked.mp4";
  fs::create_directories(a.dir / "blocked.json");
  auto r = run_cli("-q generate -i " + q(a.image) + " -a " + q(a.audio) + " -o " + q(out) + " -m " + q(a.model));
  EXPECT_EQ(r.code, 5) << r.output;
  EXPECT_NE(r.output.find("blocked.json"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(has_partial_files(a.dir));
  fs::remove_all(a.dir / "blocked.json");
}

// The same failure when it happens only after the video is complete (the directory appears while rendering):
// neither the video nor the sidecar reaches its final name, and no temporary file is left.
TEST(RobustOutputs, SidecarFailureAfterTheVideoIsCompleteLeavesNothing) {
  const auto& a = assets();
  const auto dir = a.dir / "late";
  fs::create_directories(dir);
  emo::RuntimeOptions rt;
  rt.threads = 1;
  auto pipeline = emo::Pipeline::load(emo::resolve_model(a.model.string()), rt);
  emo::GenerateRequest req;
  req.image = a.image.string();
  req.audio = a.audio.string();
  req.output = (dir / "late.mp4").string();
  bool made = false;
  auto progress = [&](const emo::Progress& p) {
    if (!made && p.stage == "decode") {
      fs::create_directories(dir / "late.json");
      made = true;
    }
  };
  try {
    pipeline->generate(req, progress);
    ADD_FAILURE() << "generate succeeded although the sidecar could not be written";
  } catch (const emo::Error& e) {
    EXPECT_EQ(e.code(), emo::ExitCode::kOutput) << e.what();
  }
  EXPECT_TRUE(made);
  EXPECT_FALSE(fs::exists(dir / "late.mp4"));
  EXPECT_TRUE(fs::is_directory(dir / "late.json"));
  EXPECT_FALSE(has_partial_files(dir));
  // And with the name free again, the same pipeline renders the job (video and sidecar).
  fs::remove_all(dir / "late.json");
  auto res = pipeline->generate(req);
  EXPECT_TRUE(fs::is_regular_file(dir / "late.mp4"));
  EXPECT_TRUE(fs::is_regular_file(dir / "late.json"));
  EXPECT_GT(res.frames, 0);
}

// `emo batch`: a truncated JPEG and parameters the model's preset rejects fail their own jobs; the others render.
TEST(RobustBatch, TruncatedJpegAndBadParametersFailOnlyTheirJobs) {
  const auto& a = assets();
  const auto dir = a.dir / "batch";
  fs::create_directories(dir);
  write_bytes(dir / "cut.jpg", read_bytes(a.jpeg).substr(0, 3000));
  std::ofstream(dir / "jobs.jsonl")
      << "{\"image\": " << nlohmann::json(a.jpeg.string()) << ", \"audio\": " << nlohmann::json(a.audio.string())
      << ", \"output\": \"good.mp4\"}\n"
      << "{\"image\": \"cut.jpg\", \"audio\": " << nlohmann::json(a.audio.string()) << ", \"output\": \"cut.mp4\"}\n"
      << "{\"image\": " << nlohmann::json(a.image.string()) << ", \"audio\": " << nlohmann::json(a.audio.string())
      << ", \"output\": \"speed.mp4\", \"speed\": 0.5}\n";
  auto r = run_cli("-q batch --manifest " + q(dir / "jobs.jsonl") + " --model " + q(a.model) + " --report " +
                   q(dir / "report.jsonl"));
  EXPECT_EQ(r.code, 6) << r.output;
  std::vector<nlohmann::json> rep;
  std::ifstream f(dir / "report.jsonl");
  for (std::string line; std::getline(f, line);) rep.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rep.size(), 3u) << r.output;
  EXPECT_EQ(rep[0]["status"], "ok") << rep[0].dump();
  EXPECT_EQ(rep[1]["status"], "failed") << rep[1].dump();
  EXPECT_EQ(rep[1]["error_code"], 3) << rep[1].dump();
  EXPECT_NE(rep[1]["error"].get<std::string>().find("cut.jpg"), std::string::npos) << rep[1].dump();
  EXPECT_EQ(rep[2]["status"], "failed") << rep[2].dump();
  EXPECT_EQ(rep[2]["error_code"], 2) << rep[2].dump();
  EXPECT_TRUE(fs::is_regular_file(dir / "good.mp4"));
  EXPECT_TRUE(fs::is_regular_file(dir / "good.json"));
  EXPECT_FALSE(fs::exists(dir / "cut.mp4"));
  EXPECT_FALSE(fs::exists(dir / "speed.mp4"));
}
