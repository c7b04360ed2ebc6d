// emo batch with a FAKE pipeline: manifests (errors with line numbers), shards, runner, report, resume,
// cancellation. The fake writes "FAKEVIDEO frames=N\n" + N bytes through a temporary name and a sidecar; its
// probe counts those bytes, so a truncated file is caught exactly as a truncated video would be.
#include <gtest/gtest.h>
#include <unistd.h>

#include <opencv2/core.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "emo/batch.h"
#include "emo/error.h"
#include "emo/video.h"
#include "util/atomic_file.h"

namespace fs = std::filesystem;
using namespace emo::batch;

namespace {

fs::path fresh_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("emo_batch_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}
std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

constexpr int kFakeFrames = 7;

// Reads back what FakePipeline writes; throws when the file is truncated or not one of ours.
std::optional<int64_t> fake_probe(const std::string& path) {
  std::string s = read_text(path);
  const std::string magic = "FAKEVIDEO frames=";
  if (s.compare(0, magic.size(), magic) != 0) throw emo::InputError(path + ": not a fake video");
  auto nl = s.find('\n');
  if (nl == std::string::npos) throw emo::InputError(path + ": truncated header");
  int64_t n = std::stoll(s.substr(magic.size(), nl - magic.size()));
  if (static_cast<int64_t>(s.size() - nl - 1) != n) throw emo::InputError(path + ": truncated");
  return n;
}

// What the fake pipelines of one factory did; outlives them (run_batch owns and destroys the pipeline).
struct FakeStats {
  int calls = 0;                      // generate() attempts, failing and cancelled ones included
  std::vector<std::string> rendered;  // outputs completed
};

class FakePipeline : public emo::Pipeline {
 public:
  explicit FakePipeline(FakeStats& stats) : stats_(stats) {}
  // When calls reaches cancel_on_call, the job "receives a signal" halfway: *trigger is set.
  int cancel_on_call = -1;
  std::atomic<bool>* trigger = nullptr;

  emo::GenerateResult generate(const emo::GenerateRequest& rq, const emo::ProgressCallback& progress,
                               const std::atomic<bool>* cancel) override {
    const int calls = ++stats_.calls;
    if (rq.image.find("CORRUPT") != std::string::npos) throw emo::InputError(rq.image + ": cannot decode image");
    std::string temp = emo::util::temp_path_for(rq.output);
    std::ofstream f(temp, std::ios::binary);
    f << "FAKEVIDEO frames=" << kFakeFrames << "\n";
    for (int i = 0; i < kFakeFrames; ++i) {
      if (i == kFakeFrames / 2 && calls == cancel_on_call) {
        if (trigger) trigger->store(true);
      }
      if (cancel && cancel->load()) {
        f.close();
        fs::remove(temp);
        throw emo::CancelledError(rq.output + ": cancelled");
      }
      f << static_cast<char>('a' + i);
      f.flush();
      if (progress) progress({"denoise", i + 1, kFakeFrames, 1, 1, 0});
    }
    f.close();
    emo::util::commit_rename(temp, rq.output);
    write_text(sidecar_path(rq.output), "{\"frames\": " + std::to_string(kFakeFrames) + ", \"seed\": " +
                                            std::to_string(rq.params.seed) + "}");
    stats_.rendered.push_back(rq.output);
    emo::GenerateResult r;
    r.output = rq.output;
    r.sidecar = sidecar_path(rq.output);
    r.frames = kFakeFrames;
    return r;
  }
  const emo::ModelSpec& spec() const override { return spec_; }

 private:
  FakeStats& stats_;
  emo::ModelSpec spec_;
};

// A factory handing out one FakePipeline that the test keeps looking at.
struct FakeFactory {
  FakeStats stats;
  int loads = 0;
  std::function<void(FakePipeline&)> setup;
  PipelineFactory get() {
    return [this]() -> std::unique_ptr<emo::Pipeline> {
      ++loads;
      auto p = std::make_unique<FakePipeline>(stats);
      if (setup) setup(*p);
      return p;
    };
  }
};

// A folder with N good jobs (images/audios exist) written as JSON Lines; returns the manifest path.
fs::path make_jobs(const fs::path& d, int n, const std::string& extra_lines = "") {
  std::string text;
  for (int i = 0; i < n; ++i) {
    std::string id = std::to_string(i);
    write_text(d / ("img" + id + ".png"), "png");
    write_text(d / ("a" + id + ".wav"), "wav");
    text += "{\"image\": \"img" + id + ".png\", \"audio\": \"a" + id + ".wav\", \"output\": \"out/clip" + id + ".mp4\"}\n";
  }
  text += extra_lines;
  write_text(d / "jobs.jsonl", text);
  return d / "jobs.jsonl";
}

std::vector<std::string> part_files(const fs::path& d) {
  std::vector<std::string> v;
  for (auto& e : fs::recursive_directory_iterator(d))
    if (e.path().filename().string().find(".part-") != std::string::npos) v.push_back(e.path().string());
  return v;
}

std::vector<nlohmann::json> read_report(const fs::path& p) {
  std::vector<nlohmann::json> v;
  std::ifstream f(p);
  std::string line;
  while (std::getline(f, line)) v.push_back(nlohmann::json::parse(line));
  return v;
}

emo::GenerateParams defaults() { return emo::GenerateParams{}; }

}  // namespace

// ---- Manifest parsing -----------------------------------------------------------------------------

TEST(BatchManifest, JsonLinesResolvesPathsAndAppliesOverrides) {
  emo::GenerateParams def;
  def.steps = 25;
  def.seed = 7;
  auto m = parse_manifest_text(
      "# comment\n"
      "{\"image\": \"faces/a.png\", \"audio\": \"/abs/a.wav\", \"output\": \"out/a.mp4\"}\n"
      "\n"
      "{\"image\": \"b.png\", \"audio\": \"b.wav\", \"output\": \"../b.mkv\", \"seed\": 123, \"cfg-scale\": 4.5,"
      " \"steps\": 10, \"fps\": 30, \"width\": 256, \"height\": 256, \"pose_weight\": 0.5, \"face_weight\": 0.25,"
      " \"lip_weight\": 2, \"speed\": 1.25, \"crf\": 23, \"paste_back\": true, \"require_face\": true,"
      " \"max_audio_seconds\": 60, \"sampler\": \"dpmpp-2m\"}\n",
      "m.jsonl", "/data/batch", def);
  EXPECT_EQ(m.format, ManifestFormat::kJsonLines);
  ASSERT_EQ(m.jobs.size(), 2u);
  const auto& a = m.jobs[0];
  EXPECT_EQ(a.index, 0u);
  EXPECT_EQ(a.line, 2);
  EXPECT_EQ(a.request.image, "/data/batch/faces/a.png");
  EXPECT_EQ(a.request.audio, "/abs/a.wav");
  EXPECT_EQ(a.request.output, "/data/batch/out/a.mp4");
  EXPECT_EQ(a.request.params.steps, 25);  // defaults kept
  EXPECT_EQ(a.request.params.seed, 7);
  EXPECT_TRUE(a.request.params.write_sidecar);
  const auto& b = m.jobs[1];
  EXPECT_EQ(b.index, 1u);
  EXPECT_EQ(b.line, 4);
  EXPECT_EQ(b.request.output, "/data/b.mkv");
  const auto& p = b.request.params;
  EXPECT_EQ(p.seed, 123);
  EXPECT_DOUBLE_EQ(p.cfg_scale, 4.5);
  EXPECT_EQ(p.steps, 10);
  EXPECT_EQ(p.fps, 30);
  EXPECT_EQ(p.width, 256);
  EXPECT_EQ(p.height, 256);  // width and height must agree (emo::validate)
  EXPECT_DOUBLE_EQ(p.pose_weight, 0.5);
  EXPECT_DOUBLE_EQ(p.face_weight, 0.25);
  EXPECT_DOUBLE_EQ(p.lip_weight, 2.0);
  EXPECT_DOUBLE_EQ(p.speed, 1.25);  // within 0.1-1.3
  EXPECT_EQ(p.crf, 23);
  EXPECT_TRUE(p.paste_back);
  EXPECT_TRUE(p.require_face);
  EXPECT_DOUBLE_EQ(p.max_audio_seconds, 60);
  EXPECT_EQ(p.sampler, "dpmpp-2m");
  EXPECT_EQ(a.request.params.sampler, "ddim");  // the default
}

TEST(BatchManifest, CsvWithHeaderQuotesAndEmptyCells) {
  emo::GenerateParams def;
  def.crf = 20;
  auto m = parse_manifest_text(
      "\xEF\xBB\xBFimage,audio,output,seed,crf,paste-back\r\n"
      "a.png,a.wav,out/a.mp4,5,,yes\r\n"
      "# skipped\r\n"
      "\"dir, with comma/b.png\", \"b \"\"q\"\".wav\" ,out/b.mp4,,30,false\r\n",
      "jobs.csv", "/m", def);
  EXPECT_EQ(m.format, ManifestFormat::kCsv);
  ASSERT_EQ(m.jobs.size(), 2u);
  EXPECT_EQ(m.jobs[0].line, 2);
  EXPECT_EQ(m.jobs[0].request.params.seed, 5);
  EXPECT_EQ(m.jobs[0].request.params.crf, 20);  // empty cell keeps the default
  EXPECT_TRUE(m.jobs[0].request.params.paste_back);
  EXPECT_EQ(m.jobs[1].line, 4);
  EXPECT_EQ(m.jobs[1].request.image, "/m/dir, with comma/b.png");
  EXPECT_EQ(m.jobs[1].request.audio, "/m/b \"q\".wav");
  EXPECT_EQ(m.jobs[1].request.params.seed, 42);
  EXPECT_EQ(m.jobs[1].request.params.crf, 30);
  EXPECT_FALSE(m.jobs[1].request.params.paste_back);
}

TEST(BatchManifest, EveryMalformedJsonLineIsReportedWithItsNumber) {
  const std::string text =
      "{\"image\": \"a.png\", \"audio\": \"a.wav\", \"output\": \"a.mp4\"}\n"           // 1 ok
      "{\"image\": \"b.png\", \"audio\": \"b.wav\", \"output\": \"b.mp4\"\n"            // 2 bad JSON
      "[1, 2]\n"                                                                         // 3 not an object
      "{\"image\": \"c.png\", \"output\": \"c.mp4\"}\n"                                 // 4 missing audio
      "{\"image\": \"d.png\", \"audio\": \"d.wav\", \"output\": \"d.mp4\", \"sead\": 1}\n"  // 5 unknown key
      "{\"image\": \"e.png\", \"audio\": \"e.wav\", \"output\": \"e.mp4\", \"steps\": \"ten\"}\n"  // 6 type
      "{\"image\": \"f.png\", \"audio\": \"f.wav\", \"output\": \"./a.mp4\", \"lips\": 1}\n"  // 7 dup + key
      "{\"image\": \"g.png\", \"audio\": \"g.wav\", \"output\": \"g.avi\"}\n"           // 8 container
      "{\"image\": \"h.png\", \"audio\": \"h.wav\", \"output\": \"h.mp4\", \"crf\": 99}\n"  // 9 range
      "{\"image\": \"i.png\", \"audio\": \"i.wav\", \"output\": \"i.mp4\", \"paste_back\": 1}\n"  // 10 bool type
      "{\"image\": \"j.png\", \"audio\": \"j.wav\", \"output\": \"j.mp4\", \"seed\": 1.5}\n"  // 11 integer
      "{\"image\": \"k.png\", \"audio\": \"k.wav\", \"output\": \"a.mkv\"}\n";  // 12 a.json = sidecar of 1
  try {
    parse_manifest_text(text, "bad.jsonl", "/x", defaults());
    FAIL() << "expected InputError";
  } catch (const emo::InputError& e) {
    std::string msg = e.what();
    EXPECT_EQ(e.code(), emo::ExitCode::kInput);
    EXPECT_NE(msg.find("bad.jsonl"), std::string::npos) << msg;
    EXPECT_NE(msg.find("11 malformed lines"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("line 1:"), std::string::npos) << msg;
    for (int l : {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
      EXPECT_NE(msg.find("line " + std::to_string(l) + ":"), std::string::npos) << "line " << l << ": " << msg;
    EXPECT_NE(msg.find("missing \"audio\""), std::string::npos) << msg;
    EXPECT_NE(msg.find("unknown key 'sead'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("steps: expected an integer"), std::string::npos) << msg;
    EXPECT_NE(msg.find("line 7: unknown key 'lips', output './a.mp4' is also the output of line 1"), std::string::npos) << msg;
    EXPECT_NE(msg.find(".mp4 or .mkv"), std::string::npos) << msg;
    EXPECT_NE(msg.find("line 12: output 'a.mkv' would share its sidecar a.json with the output of line 1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("crf"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  }
}

TEST(BatchManifest, CsvErrorsCarryLineNumbers) {
  try {
    parse_manifest_text("image,audio,output,sped\n", "h.csv", "/x", defaults());
    FAIL() << "expected InputError";
  } catch (const emo::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("line 1: header: unknown column 'sped'"), std::string::npos) << e.what();
  }
  try {
    parse_manifest_text("image,output\n", "h.csv", "/x", defaults());
    FAIL() << "expected InputError";
  } catch (const emo::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("missing column 'audio'"), std::string::npos) << e.what();
  }
  try {
    parse_manifest_text("image,audio,output,steps\n"
                        "a.png,a.wav,a.mp4,10\n"
                        "b.png,b.wav,b.mp4\n"
                        "c.png,c.wav,c.mp4,x\n"
                        "\"d.png,d.wav,d.mp4,1\n"
                        ",e.wav,e.mp4,1\n",
                        "rows.csv", "/x", defaults());
    FAIL() << "expected InputError";
  } catch (const emo::InputError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("4 malformed lines"), std::string::npos) << msg;
    EXPECT_NE(msg.find("line 3: expected 4 fields, got 3"), std::string::npos) << msg;
    EXPECT_NE(msg.find("line 4: steps: expected an integer, got 'x'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("line 5: unterminated quoted field"), std::string::npos) << msg;
    EXPECT_NE(msg.find("line 6: missing \"image\""), std::string::npos) << msg;
  }
}

TEST(BatchManifest, FileLevelErrors) {
  EXPECT_THROW(parse_manifest("/nonexistent/jobs.jsonl", defaults()), emo::InputError);
  auto d = fresh_dir("filelevel");
  write_text(d / "empty.csv", "");
  EXPECT_THROW(parse_manifest((d / "empty.csv").string(), defaults()), emo::InputError);
  write_text(d / "empty.jsonl", "# nothing\n");
  EXPECT_TRUE(parse_manifest((d / "empty.jsonl").string(), defaults()).jobs.empty());
  // Content sniffing: no extension, JSON Lines or CSV by the first non-blank character.
  write_text(d / "jobs", "\n{\"image\": \"a.png\", \"audio\": \"a.wav\", \"output\": \"a.mp4\"}\n");
  auto m = parse_manifest((d / "jobs").string(), defaults());
  EXPECT_EQ(m.format, ManifestFormat::kJsonLines);
  EXPECT_EQ(m.jobs.at(0).request.image, (d / "a.png").string());
  write_text(d / "jobs2", "image,audio,output\na.png,a.wav,a.mp4\n");
  EXPECT_EQ(parse_manifest((d / "jobs2").string(), defaults()).format, ManifestFormat::kCsv);
  // Bad defaults (CLI flags) are a usage error, not an input error.
  emo::GenerateParams bad;
  bad.width = 100;
  EXPECT_THROW(parse_manifest((d / "jobs").string(), bad), emo::UsageError);
}

TEST(BatchManifest, SamplerMustBeAStringNamingAKnownSampler) {
  auto bad = [](const std::string& line, const std::string& want) {
    try {
      parse_manifest_text(line, "s.jsonl", "/x", defaults());
      ADD_FAILURE() << "accepted " << line;
    } catch (const emo::InputError& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  bad("{\"image\": \"a.png\", \"audio\": \"a.wav\", \"output\": \"a.mp4\", \"sampler\": 2}\n",
      "sampler: expected a string");
  bad("{\"image\": \"a.png\", \"audio\": \"a.wav\", \"output\": \"a.mp4\", \"sampler\": \"euler\"}\n",
      "sampler 'euler': expected ddim, dpmpp-2m or unipc");
}

TEST(BatchManifest, ApplyOverrideParsesText) {
  emo::GenerateParams p;
  apply_override(p, "seed", " 9000000000 ");
  EXPECT_EQ(p.seed, 9000000000LL);
  apply_override(p, "CFG-Scale", "2.5");
  EXPECT_DOUBLE_EQ(p.cfg_scale, 2.5);
  apply_override(p, "require_face", "TRUE");
  EXPECT_TRUE(p.require_face);
  EXPECT_THROW(apply_override(p, "steps", "9000000000"), emo::UsageError);
  EXPECT_THROW(apply_override(p, "steps", "3.5"), emo::UsageError);
  EXPECT_THROW(apply_override(p, "write_sidecar", "false"), emo::UsageError);
  EXPECT_THROW(apply_override(p, "paste_back", "maybe"), emo::UsageError);
  apply_override(p, "vocal-separation", "false");
  EXPECT_FALSE(p.vocal_separation);
  apply_override(p, "sampler", " dpmpp-2m ");
  EXPECT_EQ(p.sampler, "dpmpp-2m");
  EXPECT_EQ(override_keys().size(), 17u);
}

// ---- Shards ---------------------------------------------------------------------------------------

TEST(BatchShard, ShardsPartitionTheManifestExactly) {
  std::string text;
  const int kJobs = 23;
  for (int i = 0; i < kJobs; ++i)
    text += "{\"image\": \"i.png\", \"audio\": \"a.wav\", \"output\": \"o" + std::to_string(i) + ".mp4\"}\n";
  auto m = parse_manifest_text(text, "m.jsonl", "/d", defaults());
  ASSERT_EQ(m.jobs.size(), static_cast<size_t>(kJobs));
  for (int n : {1, 2, 3, 4, 5, 7, 10, 23, 30}) {
    std::multiset<std::string> all;
    size_t smallest = SIZE_MAX, largest = 0;
    for (int k = 0; k < n; ++k) {
      auto part = select_shard(m.jobs, Shard{k, n});
      smallest = std::min(smallest, part.size());
      largest = std::max(largest, part.size());
      for (size_t i = 1; i < part.size(); ++i) EXPECT_LT(part[i - 1].index, part[i].index);  // manifest order
      for (const auto& j : part) all.insert(j.request.output);
      // Deterministic: the same shard twice is the same list.
      auto again = select_shard(m.jobs, Shard{k, n});
      ASSERT_EQ(again.size(), part.size());
      for (size_t i = 0; i < part.size(); ++i) EXPECT_EQ(again[i].request.output, part[i].request.output);
    }
    EXPECT_EQ(all.size(), static_cast<size_t>(kJobs)) << "N=" << n;  // union covers every job...
    for (const auto& j : m.jobs) EXPECT_EQ(all.count(j.request.output), 1u) << "N=" << n;  // ...exactly once
    EXPECT_LE(largest - smallest, 1u) << "N=" << n;
  }
}

TEST(BatchShard, ParseShard) {
  auto s = parse_shard("2/5");
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 5);
  EXPECT_EQ(s.str(), "2/5");
  for (const char* bad : {"5/5", "1", "-1/3", "a/b", "0/0", "1/2/3", ""}) EXPECT_THROW(parse_shard(bad), emo::UsageError) << bad;
}

// ---- Runner ---------------------------------------------------------------------------------------

TEST(BatchRun, BadJobsAreReportedAndSkippedOthersComplete) {
  auto d = fresh_dir("mixed");
  write_text(d / "CORRUPT.png", "not an image");
  auto path = make_jobs(d, 3,
                        "{\"image\": \"img0.png\", \"audio\": \"missing.wav\", \"output\": \"out/noaudio.mp4\"}\n"
                        "{\"image\": \"CORRUPT.png\", \"audio\": \"a1.wav\", \"output\": \"out/corrupt.mp4\"}\n");
  auto m = parse_manifest(path.string(), defaults());
  FakeFactory ff;
  BatchOptions opt;
  opt.report_path = (d / "report.jsonl").string();
  opt.probe = fake_probe;
  auto sum = run_batch(m, ff.get(), opt);
  EXPECT_EQ(ff.loads, 1);
  EXPECT_EQ(ff.stats.calls, 4);  // the missing audio never reaches the pipeline
  EXPECT_EQ(sum.ok, 3u);
  EXPECT_EQ(sum.failed, 2u);
  EXPECT_EQ(sum.exit_code(), emo::ExitCode::kPartial);
  EXPECT_EQ(static_cast<int>(sum.exit_code()), 6);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(check_output((d / ("out/clip" + std::to_string(i) + ".mp4")).string(), fake_probe).complete);
  EXPECT_FALSE(fs::exists(d / "out/noaudio.mp4"));
  EXPECT_FALSE(fs::exists(d / "out/corrupt.mp4"));
  EXPECT_TRUE(part_files(d).empty());

  auto rep = read_report(d / "report.jsonl");
  ASSERT_EQ(rep.size(), 5u);
  for (size_t i = 0; i < rep.size(); ++i) {
    EXPECT_EQ(rep[i]["index"], i);
    EXPECT_EQ(rep[i]["line"], i + 1);
    EXPECT_EQ(rep[i]["shard"], "0/1");
    EXPECT_TRUE(rep[i].contains("seconds"));
    EXPECT_TRUE(rep[i]["output"].get<std::string>().find((d / "out").string()) == 0);
  }
  EXPECT_EQ(rep[0]["status"], "ok");
  EXPECT_EQ(rep[0]["frames"], kFakeFrames);
  EXPECT_TRUE(rep[0]["error"].is_null());
  EXPECT_EQ(rep[3]["status"], "failed");
  EXPECT_NE(rep[3]["error"].get<std::string>().find("missing.wav: audio not found"), std::string::npos);
  EXPECT_EQ(rep[3]["error_code"], 3);
  EXPECT_EQ(rep[4]["status"], "failed");
  EXPECT_NE(rep[4]["error"].get<std::string>().find("cannot decode image"), std::string::npos);
  EXPECT_EQ(rep[4]["frames"], 0);
}

TEST(BatchRun, AllGoodIsExitZeroAndOverridesReachThePipeline) {
  auto d = fresh_dir("allgood");
  auto path = make_jobs(d, 2);
  emo::GenerateParams def;
  def.seed = 99;
  auto m = parse_manifest(path.string(), def);
  FakeFactory ff;
  BatchOptions opt;
  opt.probe = fake_probe;
  auto sum = run_batch(m, ff.get(), opt);
  EXPECT_EQ(sum.exit_code(), emo::ExitCode::kOk);
  EXPECT_EQ(sum.ok, 2u);
  EXPECT_NE(read_text(sidecar_path((d / "out/clip1.mp4").string())).find("\"seed\": 99"), std::string::npos);
}

TEST(BatchRun, ResumeSkipsCompleteOutputsAndRedoesIncompleteOnes) {
  auto d = fresh_dir("resume");
  auto path = make_jobs(d, 6);
  auto m = parse_manifest(path.string(), defaults());
  BatchOptions opt;
  opt.probe = fake_probe;
  {
    FakeFactory ff;
    auto sum = run_batch(m, ff.get(), opt);
    ASSERT_EQ(sum.ok, 6u);
  }
  // Damage some outputs: truncated video, missing sidecar, sidecar disagreeing with the file, garbage sidecar,
  // and one output never rendered.
  auto out = [&](int i) { return d / ("out/clip" + std::to_string(i) + ".mp4"); };
  std::string v1 = read_text(out(1));
  write_text(out(1), v1.substr(0, v1.size() - 2));
  fs::remove(sidecar_path(out(2).string()));
  write_text(sidecar_path(out(3).string()), "{\"frames\": 8}");
  write_text(sidecar_path(out(4).string()), "{not json");
  fs::remove(out(5));
  fs::remove(sidecar_path(out(5).string()));

  FakeFactory ff;
  opt.resume = true;
  opt.report_path = (d / "resume.jsonl").string();
  auto sum = run_batch(m, ff.get(), opt);
  EXPECT_EQ(sum.exit_code(), emo::ExitCode::kOk);
  EXPECT_EQ(sum.skipped, 1u);
  EXPECT_EQ(sum.ok, 5u);
  EXPECT_EQ(ff.stats.calls, 5);  // exactly the incomplete ones, each once
  std::set<std::string> redone(ff.stats.rendered.begin(), ff.stats.rendered.end());
  for (int i = 1; i <= 5; ++i) EXPECT_EQ(redone.count(out(i).string()), 1u) << i;
  auto rep = read_report(d / "resume.jsonl");
  ASSERT_EQ(rep.size(), 6u);
  EXPECT_EQ(rep[0]["status"], "skipped");
  EXPECT_EQ(rep[0]["frames"], kFakeFrames);  // from the sidecar
  for (int i = 1; i < 6; ++i) EXPECT_EQ(rep[i]["status"], "ok");

  // Everything complete now: a resumed run does no work and never loads the model.
  FakeFactory idle;
  auto again = run_batch(m, idle.get(), opt);
  EXPECT_EQ(again.skipped, 6u);
  EXPECT_EQ(idle.loads, 0);
  EXPECT_FALSE(again.model_loaded);
}

TEST(BatchRun, CancellationLeavesNoPartialOutputAndResumeCompletesTheRest) {
  auto d = fresh_dir("cancel");
  auto path = make_jobs(d, 6);
  auto m = parse_manifest(path.string(), defaults());
  std::atomic<bool> cancel{false};
  FakeFactory ff;
  ff.setup = [&](FakePipeline& p) {
    p.cancel_on_call = 3;  // the third job is interrupted halfway
    p.trigger = &cancel;
  };
  BatchOptions opt;
  opt.probe = fake_probe;
  opt.cancel = &cancel;
  opt.report_path = (d / "r1.jsonl").string();
  auto sum = run_batch(m, ff.get(), opt);
  EXPECT_TRUE(sum.interrupted);
  EXPECT_EQ(sum.exit_code(), emo::ExitCode::kInterrupted);
  EXPECT_EQ(static_cast<int>(sum.exit_code()), 130);
  EXPECT_EQ(sum.ok, 2u);
  EXPECT_EQ(sum.cancelled, 4u);
  EXPECT_EQ(ff.stats.calls, 3);  // nothing started after the signal
  EXPECT_TRUE(part_files(d).empty());
  for (int i = 2; i < 6; ++i) {
    EXPECT_FALSE(fs::exists(d / ("out/clip" + std::to_string(i) + ".mp4"))) << i;
    EXPECT_FALSE(fs::exists(sidecar_path((d / ("out/clip" + std::to_string(i) + ".mp4")).string()))) << i;
  }
  auto rep = read_report(d / "r1.jsonl");
  ASSERT_EQ(rep.size(), 6u);
  EXPECT_EQ(rep[2]["status"], "cancelled");
  EXPECT_EQ(rep[5]["status"], "cancelled");
  EXPECT_EQ(rep[5]["error_code"], 130);

  cancel = false;
  FakeFactory ff2;
  opt.resume = true;
  opt.report_path = (d / "r2.jsonl").string();
  auto sum2 = run_batch(m, ff2.get(), opt);
  EXPECT_EQ(sum2.exit_code(), emo::ExitCode::kOk);
  EXPECT_EQ(sum2.skipped, 2u);
  EXPECT_EQ(sum2.ok, 4u);
  EXPECT_EQ(ff2.stats.calls, 4);  // no duplicate work
  for (int i = 0; i < 6; ++i)
    EXPECT_TRUE(check_output((d / ("out/clip" + std::to_string(i) + ".mp4")).string(), fake_probe).complete) << i;
}

TEST(BatchRun, ShardRunsOnlyItsJobsAndShardsTogetherRenderEverythingOnce) {
  auto d = fresh_dir("shards");
  auto path = make_jobs(d, 7);
  auto m = parse_manifest(path.string(), defaults());
  std::multiset<std::string> rendered;
  for (int k = 0; k < 3; ++k) {
    FakeFactory ff;
    BatchOptions opt;
    opt.probe = fake_probe;
    opt.shard = Shard{k, 3};
    opt.report_path = (d / ("report-" + std::to_string(k) + ".jsonl")).string();
    auto sum = run_batch(m, ff.get(), opt);
    EXPECT_EQ(sum.results.size(), k == 0 ? 3u : 2u);
    for (const auto& r : sum.results) EXPECT_EQ(r.index % 3, static_cast<size_t>(k));
    rendered.insert(ff.stats.rendered.begin(), ff.stats.rendered.end());
    auto rep = read_report(opt.report_path);
    for (const auto& line : rep) EXPECT_EQ(line["shard"], std::to_string(k) + "/3");
  }
  EXPECT_EQ(rendered.size(), 7u);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(rendered.count((d / ("out/clip" + std::to_string(i) + ".mp4")).string()), 1u);
}

TEST(BatchRun, DryRunLoadsNoModelAndRendersNothing) {
  auto d = fresh_dir("dry");
  auto path = make_jobs(d, 2, "{\"image\": \"img0.png\", \"audio\": \"nope.wav\", \"output\": \"out/x.mp4\"}\n");
  auto m = parse_manifest(path.string(), defaults());
  FakeFactory ff;
  BatchOptions opt;
  opt.dry_run = true;
  opt.probe = fake_probe;
  auto sum = run_batch(m, ff.get(), opt);
  EXPECT_EQ(ff.loads, 0);
  EXPECT_EQ(sum.pending, 2u);
  EXPECT_EQ(sum.failed, 1u);
  EXPECT_FALSE(fs::exists(d / "out"));
}

TEST(BatchRun, ModelLoadFailureIsFatalAndReported) {
  auto d = fresh_dir("noload");
  auto path = make_jobs(d, 3);
  auto m = parse_manifest(path.string(), defaults());
  BatchOptions opt;
  opt.report_path = (d / "r.jsonl").string();
  int loads = 0;
  PipelineFactory broken = [&]() -> std::unique_ptr<emo::Pipeline> {
    ++loads;
    throw emo::ModelError("/models/hallo/net.pth: missing");
  };
  EXPECT_THROW(run_batch(m, broken, opt), emo::ModelError);
  EXPECT_EQ(loads, 1);
  auto rep = read_report(d / "r.jsonl");
  ASSERT_EQ(rep.size(), 3u);
  for (auto& r : rep) {
    EXPECT_EQ(r["status"], "failed");
    EXPECT_EQ(r["error_code"], 4);
  }
}

TEST(BatchRun, UnwritableReportIsAnOutputError) {
  auto d = fresh_dir("badreport");
  auto m = parse_manifest(make_jobs(d, 1).string(), defaults());
  FakeFactory ff;
  BatchOptions opt;
  opt.report_path = (d / "no/such/dir/r.jsonl").string();
  EXPECT_THROW(run_batch(m, ff.get(), opt), emo::OutputError);
  EXPECT_EQ(ff.loads, 0);
}

// ---- Completeness check with the default probe ---------------------------------------------------

TEST(BatchOutput, RealVideoFrameCountMustMatchTheSidecar) {
  auto d = fresh_dir("realvideo");
  auto out = (d / "v.mp4").string();
  {
    emo::video::VideoWriter w(out, 64, 64);
    cv::Mat frame(64, 64, CV_8UC3, cv::Scalar(10, 200, 30));
    for (int i = 0; i < 5; ++i) w.write(frame);
    w.finish();
  }
  write_text(sidecar_path(out), "{\"frames\": 5}");
  auto ok = check_output(out);
  EXPECT_TRUE(ok.complete) << ok.reason;
  EXPECT_EQ(ok.frames, 5);
  write_text(sidecar_path(out), "{\"frames\": 6}");
  auto bad = check_output(out);
  EXPECT_FALSE(bad.complete);
  EXPECT_NE(bad.reason.find("5 frames"), std::string::npos) << bad.reason;
  write_text(sidecar_path(out), "{\"frames\": 5}");
  std::string bytes = read_text(out);
  write_text(out, bytes.substr(0, bytes.size() / 2));  // truncated: no longer a complete video
  EXPECT_FALSE(check_output(out).complete);
}

TEST(BatchOutput, SidecarOfAnotherJobIsStale) {
  auto d = fresh_dir("stale");
  auto out = (d / "v.mp4").string();
  write_text(out, "FAKEVIDEO frames=3\nabc");
  write_text(sidecar_path(out), "{\"frames\": 3, \"image\": \"/a.png\", \"audio\": \"/a.wav\", \"seed\": 42}");
  emo::GenerateRequest rq;
  rq.image = "/a.png";
  rq.audio = "/a.wav";
  rq.output = out;
  EXPECT_TRUE(check_output(out, fake_probe, &rq).complete);
  rq.params.seed = 7;
  auto c = check_output(out, fake_probe, &rq);
  EXPECT_FALSE(c.complete);
  EXPECT_NE(c.reason.find("seed"), std::string::npos) << c.reason;
  rq.params.seed = 42;
  rq.audio = "/b.wav";
  EXPECT_FALSE(check_output(out, fake_probe, &rq).complete);
}

TEST(BatchOutput, SidecarRules) {
  auto d = fresh_dir("sidecar");
  auto out = (d / "v.mp4").string();
  EXPECT_EQ(sidecar_path(out), (d / "v.json").string());
  EXPECT_EQ(check_output(out, fake_probe).reason, "no output yet");
  write_text(out, "FAKEVIDEO frames=3\nabc");
  EXPECT_FALSE(check_output(out, fake_probe).complete);  // no sidecar
  write_text(sidecar_path(out), "{\"frames\": 0}");
  EXPECT_FALSE(check_output(out, fake_probe).complete);
  write_text(sidecar_path(out), "{\"frames\": 3}");
  EXPECT_TRUE(check_output(out, fake_probe).complete);
  write_text(out, "");
  EXPECT_FALSE(check_output(out, fake_probe).complete);
}
