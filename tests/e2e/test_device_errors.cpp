// Issue 16 item 4: device failures (CUDA out of memory, other CUDA/cuDNN/cuBLAS errors) end a job with one line
// naming the job and a documented exit code (12 out of memory, 13 device error; docs/exit-codes.md), leave nothing
// under the final names, and in `emo batch` fail only their own job: the next job renders after the caches are
// released. No GPU here: the test-only hook EMO_FAULT_INJECT (docs/reliability.md) throws a real
// c10::OutOfMemoryError / c10::Error at a chosen point of the clip loop.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "emo/audio.h"
#include "support/run_cli.h"

namespace fs = std::filesystem;
using emo::test::run_cli;

namespace {

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

struct Assets {
  fs::path dir, model, image, image2, audio;
};

const Assets& assets() {
  static Assets a = [] {
    Assets x;
    x.dir = fs::temp_directory_path() / ("emo_device_errors_" + std::to_string(::getpid()));
    fs::remove_all(x.dir);
    fs::create_directories(x.dir);
    x.model = x.dir / "model";
    auto made = run_cli("-q make-test-model " + q(x.model));
    if (made.code != 0) throw std::runtime_error("make-test-model failed: " + made.output);
    for (int k = 0; k < 2; ++k) {
      cv::Mat img(96, 96, CV_8UC3);
      cv::theRNG().state = 11 + k;
      cv::randu(img, 0, 255);
      cv::ellipse(img, {48, 48}, {24, 32}, 0, 0, 360, cv::Scalar(120, 160, 220), -1);
      (k ? x.image2 : x.image) = x.dir / (k ? "face2.png" : "face.png");
      cv::imwrite((k ? x.image2 : x.image).string(), img);
    }
    std::vector<float> pcm(16000 * 7 / 10);  // 0.7 s: one clip of the tiny model
    for (size_t i = 0; i < pcm.size(); ++i) pcm[i] = 0.3f * std::sin(2 * M_PI * 220 * i / 16000.0);
    x.audio = x.dir / "voice.wav";
    emo::audio::write_wav_pcm16(x.audio.string(), pcm, 16000, 1);
    return x;
  }();
  return a;
}

// Sets EMO_FAULT_INJECT for the emo processes this test starts (they inherit the environment).
struct FaultEnv {
  explicit FaultEnv(const char* spec) { ::setenv("EMO_FAULT_INJECT", spec, 1); }
  ~FaultEnv() { ::unsetenv("EMO_FAULT_INJECT"); }
};

bool has_partial_files(const fs::path& dir) {
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".part-") != std::string::npos) return true;
  return false;
}

std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (line.find(needle) != std::string::npos) out.push_back(line);
    start = end + 1;
  }
  return out;
}

}  // namespace

// Out of memory in the middle of the clip loop: exit 12, one error line naming the job's image, audio and output,
// nothing under the final names and no temporary file.
TEST(DeviceErrors, GenerateOutOfMemoryExits12NamingTheJobAndLeavesNothing) {
  const auto& a = assets();
  const auto dir = a.dir / "oom";
  fs::create_directories(dir);
  const auto out = dir / "out.mp4";
  FaultEnv env("oom@step=2");
  auto r = run_cli("generate -i " + q(a.image) + " -a " + q(a.audio) + " -o " + q(out) + " -m " + q(a.model));
  EXPECT_EQ(r.code, 12) << r.output;
  auto errors = lines_with(r.output, "[error]");
  ASSERT_EQ(errors.size(), 1u) << r.output;
  EXPECT_NE(errors[0].find("out of memory"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find(a.image.string()), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find(a.audio.string()), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find(out.string()), std::string::npos) << errors[0];
  EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(dir / "out.json"));
  EXPECT_FALSE(has_partial_files(dir));
}

// Any other device failure (here a CUDA error as c10 raises it): exit 13, the same one line naming the job.
TEST(DeviceErrors, GenerateCudaErrorExits13NamingTheJob) {
  const auto& a = assets();
  const auto dir = a.dir / "cuda";
  fs::create_directories(dir);
  const auto out = dir / "out.mp4";
  FaultEnv env("cuda@step=1");
  auto r = run_cli("generate -i " + q(a.image) + " -a " + q(a.audio) + " -o " + q(out) + " -m " + q(a.model));
  EXPECT_EQ(r.code, 13) << r.output;
  auto errors = lines_with(r.output, "[error]");
  ASSERT_EQ(errors.size(), 1u) << r.output;
  EXPECT_NE(errors[0].find("CUDA error"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find(out.string()), std::string::npos) << errors[0];
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(has_partial_files(dir));
}

// `emo batch`, out of memory on job 2 of 3: jobs 1 and 3 render, job 2 is reported failed with error_code 12 and
// its error names the job; the batch exits 6 (some jobs failed).
TEST(DeviceErrors, BatchOutOfMemoryOnJob2RendersJobs1And3) {
  const auto& a = assets();
  const auto dir = a.dir / "batch";
  fs::create_directories(dir);
  std::ofstream(dir / "jobs.jsonl")
      << "{\"image\": " << nlohmann::json(a.image.string()) << ", \"audio\": " << nlohmann::json(a.audio.string())
      << ", \"output\": \"one.mp4\"}\n"
      << "{\"image\": " << nlohmann::json(a.image2.string()) << ", \"audio\": " << nlohmann::json(a.audio.string())
      << ", \"output\": \"two.mp4\"}\n"
      << "{\"image\": " << nlohmann::json(a.image.string()) << ", \"audio\": " << nlohmann::json(a.audio.string())
      << ", \"output\": \"three.mp4\", \"seed\": 3}\n";
  FaultEnv env("oom@job=2");
  auto r = run_cli("-q batch --manifest " + q(dir / "jobs.jsonl") + " --model " + q(a.model) + " --report " +
                   q(dir / "report.jsonl"));
  EXPECT_EQ(r.code, 6) << r.output;
  std::vector<nlohmann::json> rep;
  std::ifstream f(dir / "report.jsonl");
  for (std::string line; std::getline(f, line);) rep.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rep.size(), 3u) << r.output;
  EXPECT_EQ(rep[0]["status"], "ok") << rep[0].dump();
  EXPECT_EQ(rep[1]["status"], "failed") << rep[1].dump();
  EXPECT_EQ(rep[1]["error_code"], 12) << rep[1].dump();
  const std::string err = rep[1].value("error", "");
  EXPECT_NE(err.find("out of memory"), std::string::npos) << err;
  EXPECT_NE(err.find(a.image2.string()), std::string::npos) << err;
  EXPECT_NE(err.find("two.mp4"), std::string::npos) << err;
  EXPECT_EQ(rep[2]["status"], "ok") << rep[2].dump();
  EXPECT_TRUE(fs::is_regular_file(dir / "one.mp4"));
  EXPECT_TRUE(fs::is_regular_file(dir / "three.mp4"));
  EXPECT_TRUE(fs::is_regular_file(dir / "three.json"));
  EXPECT_FALSE(fs::exists(dir / "two.mp4"));
  EXPECT_FALSE(fs::exists(dir / "two.json"));
  EXPECT_FALSE(has_partial_files(dir));
  // The failed job is one error line in the log, naming the job.
  auto errors = lines_with(r.output, "[error]");
  ASSERT_EQ(errors.size(), 1u) << r.output;
  EXPECT_NE(errors[0].find("two.mp4"), std::string::npos) << errors[0];
}

// A malformed hook value is a usage error before any work, so a typo cannot silently disable a test.
TEST(DeviceErrors, MalformedFaultSpecIsAUsageError) {
  const auto& a = assets();
  FaultEnv env("oom@sometimes");
  auto r = run_cli("-q generate -i " + q(a.image) + " -a " + q(a.audio) + " -o " + q(a.dir / "x.mp4") + " -m " +
                   q(a.model));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("EMO_FAULT_INJECT"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(a.dir / "x.mp4"));
}
