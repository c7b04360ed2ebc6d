#include <gtest/gtest.h>

#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "support/run_cli.h"

TEST(Bench, TinyModelReportsEveryStageAsJson) {
  // The generate path itself: 2 clips of the tiny model's 4 frames, 2 steps each, timed twice.
  auto r = emo::test::run_cli("-q bench --tiny -r 2 -w 0 --clips 2 --steps 2 -f json --attention math");
  ASSERT_EQ(r.code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  std::vector<std::string> names;
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& s : j.at("stages")) {
    names.push_back(s.at("stage"));
    by_name[s.at("stage")] = s;
    EXPECT_EQ(s.at("runs").size(), 2u * s.at("calls_per_run").get<size_t>()) << s.dump();
    EXPECT_GE(s.at("mean_s").get<double>(), 0.0);
    EXPECT_GE(s.at("stddev_s").get<double>(), 0.0);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"portrait", "wav2vec2", "face_locator", "vae_encode", "reference_net", "audio_proj",
                                             "unet3d_step", "guidance_step", "vae_decode", "frames_out", "finish"}));
  // Per run (a new job each): the portrait and the voice analysed once, one ReferenceNet pass and `steps` UNet calls
  // per clip.
  EXPECT_EQ(by_name["portrait"].at("calls_per_run"), 1);
  EXPECT_EQ(by_name["wav2vec2"].at("calls_per_run"), 1);
  EXPECT_EQ(by_name["reference_net"].at("calls_per_run"), 2);
  EXPECT_EQ(by_name["unet3d_step"].at("calls_per_run"), 4);
  EXPECT_EQ(j.at("frames_per_run"), 8);
  // FLOPs counted by shape: the UNet dominates and every network stage has some.
  EXPECT_GT(by_name["unet3d_step"].at("flops_per_call").get<double>(), 1e6);
  EXPECT_GT(by_name["vae_decode"].at("flops_per_call").get<double>(), 1e5);
  EXPECT_GT(by_name["unet3d_step"].at("flops_per_call").get<double>(), by_name["audio_proj"].at("flops_per_call").get<double>());
  EXPECT_GT(j.at("seconds_per_frame").get<double>(), 0.0);
  EXPECT_GT(j.at("peak_rss_mib").get<double>(), 10.0);
  EXPECT_TRUE(j.at("peak_device_mib").is_null());
  EXPECT_EQ(j.at("attention"), "math");
  EXPECT_EQ(j.at("cpu_linear"), "onednn");  // --cpu-linear auto on PyPI's x86 libtorch
  EXPECT_EQ(j.at("vae_layout"), "nchw");  // --vae-layout auto, resolved as the pipeline resolves it

  // Stages called once per clip are also reported per clip: emo's first clip encodes the source alone (its motion
  // frames are copies of it), a later clip adds the motion frames, so the two must not be averaged together.
  for (const char* name : {"vae_encode", "reference_net", "audio_proj", "vae_decode"}) {
    const auto& s = by_name[name];
    ASSERT_TRUE(s.contains("first_clip") && s.contains("later_clips")) << name;
    EXPECT_EQ(s.at("first_clip").at("runs").size(), 2u) << name;   // clip 1 of each timed run
    EXPECT_EQ(s.at("later_clips").at("runs").size(), 2u) << name;  // clip 2 of each timed run
    EXPECT_EQ(s.at("first_clip").at("runs")[1], s.at("runs")[2]) << name;  // run 2's first call
  }
  EXPECT_GT(by_name["reference_net"].at("later_clips").at("flops_per_call").get<double>(),
            1.5 * by_name["reference_net"].at("first_clip").at("flops_per_call").get<double>());
  EXPECT_GT(by_name["vae_encode"].at("later_clips").at("flops_per_call").get<double>(),
            1.5 * by_name["vae_encode"].at("first_clip").at("flops_per_call").get<double>());
  EXPECT_FALSE(by_name["unet3d_step"].contains("first_clip"));  // 2 steps per clip: not a per-clip stage
  EXPECT_FALSE(by_name["unet3d_step"].contains("ops"));         // no --ops, no operator table
  EXPECT_FALSE(j.contains("ops_run"));
}

// --ops N: libtorch's operators of each stage's last call with self and total time, from the last warm-up run.
TEST(Bench, OpsListTheOperatorsOfEachStageWithSelfAndTotalTime) {
  // torch::linear's layers, whose operators nest (aten::linear -> aten::addmm); --cpu-linear auto's oneDNN op is
  // one operator (Bench.OneDnnLinearLayersCountTheFlopsOfTorchLinear).
  auto r = emo::test::run_cli("-q bench --tiny -r 1 -w 2 --steps 2 --ops 400 -f json --no-flops --cpu-linear aten");
  ASSERT_EQ(r.code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(j.at("ops_run"), "warm-up run 2");
  std::map<std::string, nlohmann::json> unet_ops;
  for (const auto& s : j.at("stages")) {
    if (s.at("stage") != "unet3d_step") continue;
    double prev = 1e30;
    for (const auto& op : s.at("ops")) {
      unet_ops[op.at("name")] = op;
      const double self = op.at("self_s"), total = op.at("total_s");
      EXPECT_GE(self, 0.0) << op.dump();
      EXPECT_LE(self, total + 1e-9) << op.dump();
      EXPECT_LE(self, prev) << "not sorted by self time: " << op.dump();
      prev = self;
    }
  }
  ASSERT_FALSE(unet_ops.empty());
  // Nesting: aten::linear only dispatches aten::addmm / aten::matmul, so nearly all of its time is its children's.
  ASSERT_TRUE(unet_ops.count("aten::linear") && unet_ops.count("aten::addmm"));
  EXPECT_LT(unet_ops["aten::linear"].at("self_s").get<double>(), 0.5 * unet_ops["aten::linear"].at("total_s").get<double>());
  EXPECT_GT(unet_ops["aten::addmm"].at("self_s").get<double>(), 0.5 * unet_ops["aten::addmm"].at("total_s").get<double>());
  EXPECT_GE(unet_ops["aten::linear"].at("total_s").get<double>(), unet_ops["aten::addmm"].at("total_s").get<double>() * 0.99);

  // The last call's operators, not the sum over the run's calls: one step per run calls them as often as two.
  auto one = emo::test::run_cli("-q bench --tiny -r 1 -w 1 --steps 1 --ops 400 -f json --no-flops --cpu-linear aten");
  ASSERT_EQ(one.code, 0) << one.output;
  auto j1 = nlohmann::json::parse(one.output.substr(one.output.find('{')));
  int64_t addmm_calls = -1;
  for (const auto& s : j1.at("stages"))
    if (s.at("stage") == "unet3d_step")
      for (const auto& op : s.at("ops"))
        if (op.at("name") == "aten::addmm") addmm_calls = op.at("calls");
  EXPECT_EQ(addmm_calls, unet_ops["aten::addmm"].at("calls").get<int64_t>());

  // The markdown report prints one table per stage, at most N rows each.
  auto md = emo::test::run_cli("-q bench --tiny -r 1 -w 0 --steps 1 --ops 3 --no-flops");
  ASSERT_EQ(md.code, 0) << md.output;
  EXPECT_NE(md.output.find("operators of each stage's last call in timed run 1 (libtorch's profiler;"), std::string::npos)
      << md.output;
  const auto at = md.output.find("unet3d_step: top 3 operators by self time");
  ASSERT_NE(at, std::string::npos) << md.output;
  const auto table = md.output.substr(at, md.output.find("\n\n", md.output.find("| --- |", at)) - at);
  size_t rows = 0;
  for (auto p = table.find("\n| "); p != std::string::npos; p = table.find("\n| ", p + 1)) ++rows;
  EXPECT_EQ(rows, 2u + 3u) << table;  // header, rule, 3 operators
}

// --cpu-linear auto runs the linear layers as oneDNN operators, which libtorch's profiler has no FLOP formula for:
// emo counts them itself, so every stage reports the FLOPs it reports with torch::linear.
TEST(Bench, OneDnnLinearLayersCountTheFlopsOfTorchLinear) {
  std::map<std::string, std::map<std::string, double>> flops;  // cpu_linear -> stage -> FLOPs per call
  std::set<std::string> onednn_unet_ops;
  for (const std::string mode : {"auto", "aten"}) {
    auto r = emo::test::run_cli("-q bench --tiny -r 1 -w 0 --steps 1 --ops 400 -f json --cpu-linear " + mode);
    ASSERT_EQ(r.code, 0) << r.output;
    auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
    EXPECT_EQ(j.at("cpu_linear"), mode == "auto" ? "onednn" : "aten");
    for (const auto& s : j.at("stages")) {
      flops[mode][s.at("stage")] = s.at("flops_per_call");
      if (mode == "auto" && s.at("stage") == "unet3d_step")
        for (const auto& op : s.at("ops")) onednn_unet_ops.insert(op.at("name"));
    }
  }
  EXPECT_TRUE(onednn_unet_ops.count("mkldnn::_linear_pointwise"));
  EXPECT_FALSE(onednn_unet_ops.count("aten::addmm"));
  for (const char* stage : {"unet3d_step", "reference_net", "audio_proj", "vae_decode"}) {
    const double a = flops["auto"][stage], b = flops["aten"][stage];
    EXPECT_GT(b, 0.0) << stage;
    EXPECT_NEAR(a, b, 1e-6 * b) << stage;
  }
}

TEST(Bench, BadArgumentsAreUsageErrors) {
  EXPECT_EQ(emo::test::run_cli("bench --tiny -r 0").code, 2);
  EXPECT_EQ(emo::test::run_cli("bench --tiny --ops -1").code, 2);
  EXPECT_EQ(emo::test::run_cli("bench --tiny --clips 0").code, 2);
  EXPECT_EQ(emo::test::run_cli("bench --tiny --size 100").code, 2);
  EXPECT_EQ(emo::test::run_cli("bench --tiny -f xml").code, 2);
  EXPECT_EQ(emo::test::run_cli("bench --tiny --sampler euler").code, 2);
  EXPECT_EQ(emo::test::run_cli("bench --tiny --vae-layout nhcw").code, 2);
  EXPECT_EQ(emo::test::run_cli("bench --tiny --cpu-linear mkl").code, 2);
  EXPECT_EQ(emo::test::run_cli("bench --tiny --device gpu").code, 2);
  EXPECT_EQ(emo::test::run_cli("bench -m /nonexistent").code, 4);
}
