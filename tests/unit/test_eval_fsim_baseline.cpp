// F-SIM's cosine / per-clip aggregation and the baseline regression check (pure logic, no models).
#include <gtest/gtest.h>

#include <cmath>

#include "emo/error.h"
#include "emo/eval.h"

namespace ev = emo::eval;

TEST(EvalFsim, CosineSimilarity) {
  EXPECT_DOUBLE_EQ(ev::cosine_similarity({1, 0, 0}, {2, 0, 0}), 1.0);
  EXPECT_DOUBLE_EQ(ev::cosine_similarity({1, 0}, {0, 3}), 0.0);
  EXPECT_DOUBLE_EQ(ev::cosine_similarity({1, 2}, {-1, -2}), -1.0);
  EXPECT_NEAR(ev::cosine_similarity({1, 1}, {1, 0}), 1 / std::sqrt(2.0), 1e-15);
  // Scale-free: raw ArcFace embeddings need no normalisation first (insightface's normed_embedding dot).
  EXPECT_NEAR(ev::cosine_similarity({3, -1, 2}, {30, -10, 20.5f}), ev::cosine_similarity({0.3f, -0.1f, 0.2f}, {3, -1, 2.05f}), 1e-6);
  EXPECT_EQ(ev::cosine_similarity({0, 0}, {1, 2}), 0.0);  // no face: zero embedding
  EXPECT_THROW(ev::cosine_similarity({1, 2}, {1, 2, 3}), emo::InputError);
}

TEST(EvalFsim, ClipMeanSkipsNothingButEmpty) {
  EXPECT_DOUBLE_EQ(ev::fsim_clip_mean({0.5, 0.7, 0.9}), 0.7);
  EXPECT_TRUE(std::isnan(ev::fsim_clip_mean({})));
}

namespace {
const char* kResult = R"({"clips": ["a"], "metrics": {
  "fid": {"available": true, "value": 40.0, "variant": "pytorch-fid"},
  "ssim": {"available": true, "value": 0.70},
  "psnr": {"available": true, "value": "inf"},
  "sync_d": {"available": true, "value": 8.0},
  "fvd": {"available": false, "reason": "needs weight file i3d_torchscript.pt"}}})";
const ev::BaselineCheck* find(const ev::BaselineComparison& c, const std::string& m) {
  for (const auto& x : c.checks)
    if (x.metric == m) return &x;
  return nullptr;
}
}  // namespace

TEST(EvalBaseline, DirectionAndTolerance) {
  // Lower is better for FID: 40 vs 38 is 2 worse, within 3; SSIM 0.70 vs 0.71 is 0.01 worse, within 0.02.
  auto c = ev::compare_with_baseline(kResult, R"({"metrics": {"fid": {"value": 38, "tolerance": 3},
                                                              "ssim": {"value": 0.71, "tolerance": 0.02}}})");
  EXPECT_FALSE(c.regressed()) << c.to_text();
  ASSERT_NE(find(c, "fid"), nullptr);
  EXPECT_FALSE(find(c, "fid")->higher_is_better);
  EXPECT_TRUE(find(c, "ssim")->higher_is_better);
  // Beyond the tolerance in the bad direction regresses; any amount in the good direction does not.
  c = ev::compare_with_baseline(kResult, R"({"metrics": {"fid": {"value": 36.9, "tolerance": 3}}})");
  EXPECT_TRUE(c.regressed());
  c = ev::compare_with_baseline(kResult, R"({"metrics": {"fid": {"value": 80}, "ssim": {"value": 0.1},
                                                         "sync_d": {"value": 9.5}}})");
  EXPECT_FALSE(c.regressed()) << c.to_text();
  c = ev::compare_with_baseline(kResult, R"({"metrics": {"sync_d": {"value": 7.9, "tolerance": 0.05}}})");
  EXPECT_TRUE(c.regressed());
  // Tolerance exactly met is not a regression; zero tolerance by default.
  c = ev::compare_with_baseline(kResult, R"({"metrics": {"ssim": {"value": 0.75}}, "tolerances": {"ssim": 0.05}})");
  EXPECT_FALSE(c.regressed()) << c.to_text();
  c = ev::compare_with_baseline(kResult, R"({"metrics": {"ssim": {"value": 0.7000001}}})");
  EXPECT_TRUE(c.regressed());
  // The top-level tolerances override the per-metric ones.
  c = ev::compare_with_baseline(kResult, R"({"metrics": {"ssim": {"value": 0.75, "tolerance": 0.1}}, "tolerances": {"ssim": 0.01}})");
  EXPECT_TRUE(c.regressed());
  // Explicit direction for an unknown metric.
  c = ev::compare_with_baseline(R"({"metrics": {"lmd": {"available": true, "value": 3}}})",
                                R"({"metrics": {"lmd": {"value": 2.5, "tolerance": 0.1, "higher_is_better": false}}})");
  EXPECT_TRUE(c.regressed());
}

TEST(EvalBaseline, MissingUnavailableInfinite) {
  // A baseline metric missing / unavailable in the result regresses unless optional; the reason is kept.
  auto c = ev::compare_with_baseline(kResult, R"({"metrics": {"fvd": {"value": 300, "tolerance": 50}}})");
  EXPECT_TRUE(c.regressed());
  EXPECT_NE(find(c, "fvd")->note.find("i3d_torchscript.pt"), std::string::npos);
  c = ev::compare_with_baseline(kResult, R"({"metrics": {"fvd": {"value": 300, "optional": true},
                                                         "sync_c": {"value": 7, "optional": true}}})");
  EXPECT_FALSE(c.regressed()) << c.to_text();
  // Unavailable in the baseline: ignored.
  c = ev::compare_with_baseline(kResult, R"({"metrics": {"fvd": {"available": false, "reason": "x"}}})");
  EXPECT_TRUE(c.checks.empty());
  // PSNR of identical frames ("inf") on both sides is fine; a finite baseline is beaten by inf.
  c = ev::compare_with_baseline(kResult, R"({"metrics": {"psnr": {"value": "inf"}}})");
  EXPECT_FALSE(c.regressed());
  c = ev::compare_with_baseline(kResult, R"({"metrics": {"psnr": {"value": 30}}})");
  EXPECT_FALSE(c.regressed());
  // An `emo eval --json` output is itself a baseline: the same result passes against itself.
  c = ev::compare_with_baseline(kResult, kResult);
  EXPECT_FALSE(c.regressed()) << c.to_text();
  EXPECT_EQ(c.checks.size(), 4u);  // fvd (unavailable) is not checked
}

TEST(EvalBaseline, MalformedInputsAreInputErrors) {
  EXPECT_THROW(ev::compare_with_baseline(kResult, "{not json"), emo::InputError);
  EXPECT_THROW(ev::compare_with_baseline(kResult, R"({"values": {}})"), emo::InputError);
  EXPECT_THROW(ev::compare_with_baseline(kResult, R"({"metrics": {"ssim": {"value": 1, "tolerance": -1}}})"),
               emo::InputError);
}
