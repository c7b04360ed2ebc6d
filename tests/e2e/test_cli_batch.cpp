// `emo batch` through the real binary: flags, exit codes, and validation that happens before any model load.
// (Rendering end to end needs the pipeline and the tiny test model; the runner itself is unit-tested with a
// fake pipeline in tests/unit/test_batch.cpp.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <cstdlib>
#include <fstream>
#include <vector>

#include "support/run_cli.h"

namespace fs = std::filesystem;
using emo::test::run_cli;

namespace {
fs::path fresh_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("emo_cli_batch_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}
std::string q(const fs::path& p) { return "'" + p.string() + "'"; }
}  // namespace

TEST(CliBatch, HelpShowsFlagsAndDefaults) {
  auto r = run_cli("batch --help");
  EXPECT_EQ(r.code, 0) << r.output;
  for (const char* s : {"--manifest", "--model", "--report", "--resume", "--shard", "--device", "--dtype", "--attention", "--dry-run",
                        "--steps", "--cfg-scale", "--seed", "--fps", "--width", "--height", "--pose-weight",
                        "--face-weight", "--lip-weight", "--speed", "--crf", "--paste-back", "--require-face"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s;
  EXPECT_NE(r.output.find("0/1"), std::string::npos) << r.output;   // --shard default
  EXPECT_NE(r.output.find("18"), std::string::npos) << r.output;    // --crf default
  EXPECT_NE(r.output.find("fp32"), std::string::npos) << r.output;  // --dtype default
}

TEST(CliBatch, MissingManifestIsInputError) {
  auto r = run_cli("batch --manifest /nonexistent/jobs.jsonl --model /nonexistent/model");
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("/nonexistent/jobs.jsonl"), std::string::npos) << r.output;
}

TEST(CliBatch, MalformedLinesAreReportedBeforeTheModel) {
  auto d = fresh_dir("malformed");
  write_text(d / "jobs.jsonl",
             "{\"image\": \"a.png\", \"audio\": \"a.wav\", \"output\": \"a.mp4\"}\n"
             "{\"image\": \"b.png\", \"audio\": \"b.wav\"}\n"
             "{\"image\": \"c.png\", \"audio\": \"c.wav\", \"output\": \"c.mp4\", \"steps\": -3}\n");
  auto r = run_cli("batch --manifest " + q(d / "jobs.jsonl") + " --model /nonexistent/model --report " + q(d / "r.jsonl"));
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("line 2: missing \"output\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("line 3: steps"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(d / "r.jsonl"));  // nothing started
}

TEST(CliBatch, BadFlagsAreUsageErrors) {
  auto d = fresh_dir("usage");
  write_text(d / "jobs.jsonl", "{\"image\": \"a.png\", \"audio\": \"a.wav\", \"output\": \"a.mp4\"}\n");
  EXPECT_EQ(run_cli("batch --manifest " + q(d / "jobs.jsonl") + " --shard 4/4 --dry-run").code, 2);
  EXPECT_EQ(run_cli("batch --manifest " + q(d / "jobs.jsonl") + " --shard x --dry-run").code, 2);
  EXPECT_EQ(run_cli("batch --manifest " + q(d / "jobs.jsonl") + " --crf 80 --dry-run").code, 2);
  EXPECT_EQ(run_cli("batch --manifest " + q(d / "jobs.jsonl") + " --dtype fp64 --dry-run").code, 2);
  EXPECT_EQ(run_cli("batch --dry-run").code, 2);  // --manifest is required
}

TEST(CliBatch, MissingModelFolderIsModelError) {
  auto d = fresh_dir("nomodel");
  write_text(d / "a.png", "x");
  write_text(d / "a.wav", "x");
  write_text(d / "jobs.jsonl", "{\"image\": \"a.png\", \"audio\": \"a.wav\", \"output\": \"out/a.mp4\"}\n");
  auto r = run_cli("batch --manifest " + q(d / "jobs.jsonl") + " --model " + q(d / "no_model"));
  EXPECT_EQ(r.code, 4) << r.output;
  EXPECT_FALSE(fs::exists(d / "out"));
}

TEST(CliBatch, DryRunPlansShardsAndWritesTheReport) {
  auto d = fresh_dir("dry");
  std::string text = "image,audio,output,seed\n";
  for (int i = 0; i < 5; ++i) {
    write_text(d / ("p" + std::to_string(i) + ".png"), "x");
    text += "p" + std::to_string(i) + ".png,v.wav,out/" + std::to_string(i) + ".mp4," + std::to_string(i) + "\n";
  }
  write_text(d / "v.wav", "x");
  write_text(d / "jobs.csv", text);
  auto r = run_cli("batch --manifest " + q(d / "jobs.csv") + " --dry-run --shard 1/2 --report " + q(d / "r.jsonl"));
  EXPECT_EQ(r.code, 0) << r.output;
  std::ifstream f(d / "r.jsonl");
  std::string line;
  int n = 0;
  while (std::getline(f, line)) {
    ++n;
    EXPECT_NE(line.find("\"status\":\"pending\""), std::string::npos) << line;
    EXPECT_NE(line.find("\"shard\":\"1/2\""), std::string::npos) << line;
  }
  EXPECT_EQ(n, 2);  // jobs 1 and 3
  EXPECT_FALSE(fs::exists(d / "out"));

  fs::remove(d / "v.wav");  // every job now lacks its audio: planned as failed, exit 6
  auto m = run_cli("batch --manifest " + q(d / "jobs.csv") + " --dry-run");
  EXPECT_EQ(m.code, 6) << m.output;
  EXPECT_NE(m.output.find("v.wav: audio not found"), std::string::npos) << m.output;
}

TEST(CliBatch, RenderBulkBuildsTheCrossProductManifest) {
  auto d = fresh_dir("bulk");
  for (const char* f : {"faces/alice.png", "faces/bob.JPG", "faces/notes.txt", "voices/hello.wav", "voices/song.mp3"})
    write_text(d / f, "x");
  std::string cmd = std::string("'") + EMO_SOURCE_DIR + "/scripts/render_bulk.sh' --portraits " + q(d / "faces") +
                    " --audios " + q(d / "voices") + " --out " + q(d / "out") + " --manifest-only 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream f(d / "out/manifest.jsonl");
  std::vector<std::string> lines;
  for (std::string l; std::getline(f, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_NE(lines[0].find("out/alice__hello.mp4"), std::string::npos) << lines[0];
  EXPECT_NE(lines[3].find("out/bob__song.mp4"), std::string::npos) << lines[3];
  // The manifest is valid for emo batch (dry run: every input exists, so exit 0).
  auto r = run_cli("batch --manifest " + q(d / "out/manifest.jsonl") + " --dry-run");
  EXPECT_EQ(r.code, 0) << r.output;
}
