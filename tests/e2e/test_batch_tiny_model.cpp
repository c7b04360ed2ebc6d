// `emo batch` end to end with the tiny random-weight model (include/emo/tiny_model.h): mixed good and bad jobs,
// interruption by SIGTERM and --resume, shards through the real binary.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <thread>

#include "emo/batch.h"
#include "emo/tiny_model.h"
#include "support/run_cli.h"

namespace fs = std::filesystem;
using emo::test::run_cli;

namespace {

fs::path fresh_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("emo_batch_e2e_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

// 16 kHz mono 16-bit PCM sine.
void write_wav(const fs::path& p, double seconds, double hz) {
  const int rate = 16000;
  const uint32_t n = static_cast<uint32_t>(seconds * rate);
  std::ofstream f(p, std::ios::binary);
  auto u32 = [&](uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { f.write(reinterpret_cast<const char*>(&v), 2); };
  f.write("RIFF", 4);
  u32(36 + n * 2);
  f.write("WAVEfmt ", 8);
  u32(16);
  u16(1);
  u16(1);
  u32(rate);
  u32(rate * 2);
  u16(2);
  u16(16);
  f.write("data", 4);
  u32(n * 2);
  for (uint32_t i = 0; i < n; ++i) u16(static_cast<uint16_t>(static_cast<int16_t>(8000 * std::sin(2 * M_PI * hz * i / rate))));
}

void write_png(const fs::path& p, int seed) {
  cv::Mat img(96, 80, CV_8UC3);
  cv::theRNG().state = static_cast<uint64_t>(seed);
  cv::randu(img, 0, 255);
  ASSERT_TRUE(cv::imwrite(p.string(), img));
}

// Shared fixture data: one tiny model for the whole suite.
const fs::path& tiny_model() {
  static fs::path dir = [] {
    auto d = fresh_dir("model");
    fs::create_directories(d / "hallo");  // write_tiny_model (main 0286705) does not create hallo/ itself
    emo::write_tiny_model(d.string());
    return d;
  }();
  return dir;
}

std::vector<nlohmann::json> read_report(const fs::path& p) {
  std::vector<nlohmann::json> v;
  std::ifstream f(p);
  for (std::string line; std::getline(f, line);) v.push_back(nlohmann::json::parse(line));
  return v;
}

std::vector<std::string> part_files(const fs::path& d) {
  std::vector<std::string> v;
  for (auto& e : fs::recursive_directory_iterator(d))
    if (e.path().filename().string().find(".part-") != std::string::npos) v.push_back(e.path().string());
  return v;
}

// n good jobs: images img0..2 (shared), audios of `seconds`, outputs out/jN.mp4.
std::string good_jobs(const fs::path& d, int n, double seconds) {
  std::string text;
  for (int i = 0; i < 3; ++i) write_png(d / ("img" + std::to_string(i) + ".png"), i + 1);
  for (int i = 0; i < 2; ++i) write_wav(d / ("a" + std::to_string(i) + ".wav"), seconds, 220.0 * (i + 1));
  for (int i = 0; i < n; ++i)
    text += "{\"image\": \"img" + std::to_string(i % 3) + ".png\", \"audio\": \"a" + std::to_string(i % 2) +
            ".wav\", \"output\": \"out/j" + std::to_string(i) + ".mp4\", \"seed\": " + std::to_string(i) + "}\n";
  return text;
}

}  // namespace

TEST(BatchTinyModel, GoodJobsCompleteBadJobsAreReported) {
  auto d = fresh_dir("mixed");
  std::string text = good_jobs(d, 3, 0.4);
  std::ofstream(d / "corrupt.png") << "this is not an image";
  text += "{\"image\": \"img0.png\", \"audio\": \"missing.wav\", \"output\": \"out/missing_audio.mp4\"}\n";
  text += "{\"image\": \"corrupt.png\", \"audio\": \"a0.wav\", \"output\": \"out/corrupt_image.mp4\"}\n";
  std::ofstream(d / "jobs.jsonl") << text;

  auto r = run_cli("batch --manifest " + q(d / "jobs.jsonl") + " --model " + q(tiny_model()) + " --report " +
                   q(d / "report.jsonl"));
  EXPECT_EQ(r.code, 6) << r.output;
  auto rep = read_report(d / "report.jsonl");
  ASSERT_EQ(rep.size(), 5u) << r.output;
  // Progress without a terminal: a line at the end of every clip of every good job ("clip 1/N step S/S").
  int progress_lines = 0;
  for (size_t pos = 0; (pos = r.output.find(" it/s ETA ", pos)) != std::string::npos; ++pos) ++progress_lines;
  EXPECT_GE(progress_lines, 3) << r.output;
  EXPECT_NE(r.output.find("] clip 1/"), std::string::npos) << r.output;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(rep[i]["status"], "ok") << rep[i].dump();
    EXPECT_GT(rep[i]["frames"].get<int>(), 0);
    auto chk = emo::batch::check_output((d / ("out/j" + std::to_string(i) + ".mp4")).string());
    EXPECT_TRUE(chk.complete) << chk.reason;
    EXPECT_EQ(chk.frames, rep[i]["frames"].get<int>());
  }
  EXPECT_EQ(rep[3]["status"], "failed");
  EXPECT_NE(rep[3]["error"].get<std::string>().find("missing.wav"), std::string::npos);
  EXPECT_EQ(rep[4]["status"], "failed");
  EXPECT_NE(rep[4]["error"].get<std::string>().find("corrupt.png"), std::string::npos) << rep[4].dump();
  EXPECT_FALSE(fs::exists(d / "out/missing_audio.mp4"));
  EXPECT_FALSE(fs::exists(d / "out/corrupt_image.mp4"));
  EXPECT_TRUE(part_files(d).empty());

  // --resume: the good ones are skipped (checked complete), the bad ones fail again.
  auto again = run_cli("batch --manifest " + q(d / "jobs.jsonl") + " --model " + q(tiny_model()) + " --resume --report " +
                       q(d / "resume.jsonl"));
  EXPECT_EQ(again.code, 6) << again.output;
  auto rep2 = read_report(d / "resume.jsonl");
  ASSERT_EQ(rep2.size(), 5u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(rep2[i]["status"], "skipped") << rep2[i].dump();
}

TEST(BatchTinyModel, SigtermStopsCleanlyAndResumeCompletesTheRest) {
  auto d = fresh_dir("interrupt");
  const int kJobs = 4;
  std::ofstream(d / "jobs.jsonl") << good_jobs(d, kJobs, 0.4);
  const std::string log = (d / "run1.log").string();
  std::vector<std::string> args = {emo::test::cli_path(), "batch", "--manifest", (d / "jobs.jsonl").string(),
                                   "--model", tiny_model().string(), "--report", (d / "r1.jsonl").string()};
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "w", stderr);
    (void)f;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  // Wait until the first job has finished (its sidecar exists), then interrupt.
  int status = 0;
  bool exited = false;
  for (int i = 0; i < 3000 && !fs::exists(d / "out/j0.json"); ++i) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(exited) << "emo batch ended before it could be interrupted";
  ::kill(pid, SIGTERM);
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  std::ifstream lf(log);
  std::string out((std::istreambuf_iterator<char>(lf)), std::istreambuf_iterator<char>());
  ASSERT_EQ(WEXITSTATUS(status), 130) << out;

  // No partial file anywhere, and every output under a final name is complete.
  EXPECT_TRUE(part_files(d).empty());
  int complete_before = 0;
  for (int i = 0; i < kJobs; ++i) {
    auto p = d / ("out/j" + std::to_string(i) + ".mp4");
    if (!fs::exists(p)) continue;
    auto chk = emo::batch::check_output(p.string());
    EXPECT_TRUE(chk.complete) << p << ": " << chk.reason;
    ++complete_before;
  }
  EXPECT_GE(complete_before, 1);
  EXPECT_LT(complete_before, kJobs);
  auto rep = read_report(d / "r1.jsonl");
  ASSERT_EQ(rep.size(), static_cast<size_t>(kJobs));
  int ok1 = 0, cancelled1 = 0;
  for (auto& l : rep) {
    ok1 += l["status"] == "ok";
    cancelled1 += l["status"] == "cancelled";
  }
  EXPECT_EQ(ok1, complete_before);
  EXPECT_EQ(ok1 + cancelled1, kJobs);

  // Resume: exactly the missing jobs are rendered (no duplicate work), then everything is complete.
  auto r = run_cli("batch --manifest " + q(d / "jobs.jsonl") + " --model " + q(tiny_model()) + " --resume --report " +
                   q(d / "r2.jsonl"));
  EXPECT_EQ(r.code, 0) << r.output;
  auto rep2 = read_report(d / "r2.jsonl");
  ASSERT_EQ(rep2.size(), static_cast<size_t>(kJobs));
  int ok2 = 0, skipped2 = 0;
  for (auto& l : rep2) {
    ok2 += l["status"] == "ok";
    skipped2 += l["status"] == "skipped";
  }
  EXPECT_EQ(skipped2, complete_before);
  EXPECT_EQ(ok2, kJobs - complete_before);
  for (int i = 0; i < kJobs; ++i)
    EXPECT_TRUE(emo::batch::check_output((d / ("out/j" + std::to_string(i) + ".mp4")).string()).complete) << i;
}

TEST(BatchTinyModel, TwoShardsRenderEveryJobOnce) {
  auto d = fresh_dir("shards");
  const int kJobs = 3;
  std::ofstream(d / "jobs.csv") << "image,audio,output,seed\n";
  std::string jsonl = good_jobs(d, kJobs, 0.2);
  std::ofstream csv(d / "jobs.csv", std::ios::app);
  for (int i = 0; i < kJobs; ++i)
    csv << "img" << i % 3 << ".png,a" << i % 2 << ".wav,out/j" << i << ".mp4," << i << "\n";
  csv.close();
  std::map<int, int> seen;
  for (int k = 0; k < 2; ++k) {
    auto rp = d / ("r" + std::to_string(k) + ".jsonl");
    auto r = run_cli("batch --manifest " + q(d / "jobs.csv") + " --model " + q(tiny_model()) + " --shard " +
                     std::to_string(k) + "/2 --report " + q(rp));
    EXPECT_EQ(r.code, 0) << r.output;
    for (auto& l : read_report(rp)) {
      EXPECT_EQ(l["status"], "ok");
      seen[l["index"].get<int>()]++;
    }
  }
  ASSERT_EQ(seen.size(), static_cast<size_t>(kJobs));
  for (auto& [i, n] : seen) EXPECT_EQ(n, 1) << i;
  for (int i = 0; i < kJobs; ++i)
    EXPECT_TRUE(emo::batch::check_output((d / ("out/j" + std::to_string(i) + ".mp4")).string()).complete) << i;
}
