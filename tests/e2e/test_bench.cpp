#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/run_cli.h"

TEST(Bench, TinyModelReportsEveryStageAsJson) {
  auto r = emo::test::run_cli("-q bench --tiny -r 2 -w 0 -f json --attention math");
  ASSERT_EQ(r.code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  std::vector<std::string> names;
  for (const auto& s : j.at("stages")) {
    names.push_back(s.at("stage"));
    EXPECT_EQ(s.at("runs").size(), 2u);
    EXPECT_GT(s.at("mean_s").get<double>(), 0.0);
    EXPECT_GE(s.at("stddev_s").get<double>(), 0.0);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"wav2vec2", "vae_encode", "reference_net", "unet3d_step", "vae_decode",
                                             "encode_mux"}));
  EXPECT_GT(j.at("peak_rss_mib").get<double>(), 10.0);
  EXPECT_EQ(j.at("attention"), "math");
}

TEST(Bench, BadArgumentsAreUsageErrors) {
  EXPECT_EQ(emo::test::run_cli("bench --tiny -r 0").code, 2);
  EXPECT_EQ(emo::test::run_cli("bench --tiny -f xml").code, 2);
  EXPECT_EQ(emo::test::run_cli("bench --tiny --device gpu").code, 2);
  EXPECT_EQ(emo::test::run_cli("bench -m /nonexistent").code, 4);
}
