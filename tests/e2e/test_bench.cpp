#include <gtest/gtest.h>

#include <map>
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
  EXPECT_EQ(j.at("vae_layout"), "nchw");  // --vae-layout auto, resolved as the pipeline resolves it
}

TEST(Bench, BadArgumentsAreUsageErrors) {
  EXPECT_EQ(emo::test::run_cli("bench --tiny -r 0").code, 2);
  EXPECT_EQ(emo::test::run_cli("bench --tiny --clips 0").code, 2);
  EXPECT_EQ(emo::test::run_cli("bench --tiny --size 100").code, 2);
  EXPECT_EQ(emo::test::run_cli("bench --tiny -f xml").code, 2);
  EXPECT_EQ(emo::test::run_cli("bench --tiny --sampler euler").code, 2);
  EXPECT_EQ(emo::test::run_cli("bench --tiny --vae-layout nhcw").code, 2);
  EXPECT_EQ(emo::test::run_cli("bench --tiny --device gpu").code, 2);
  EXPECT_EQ(emo::test::run_cli("bench -m /nonexistent").code, 4);
}
