// Golden parity of the metric arithmetic: pytorch-fid calculate_frechet_distance (eval/frechet_distance),
// FVD features -> distance and common_metrics preprocessing (eval/fvd), SSIM / PSNR (eval/ssim_psnr),
// python_speech_features MFCC (eval/syncnet).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>

#include "emo/eval.h"
#include "support/golden.h"

namespace ev = emo::eval;

namespace {
double scalar(const at::Tensor& t) { return t.to(torch::kFloat64).item<double>(); }
double rel(double a, double b) { return std::abs(a - b) / std::max(1.0, std::abs(b)); }
}  // namespace

TEST(GoldenEvalFrechet, StatisticsAndDistance) {
  EMO_GOLDEN_FIXTURE(fx, "eval/frechet_distance");
  const double eps = fx.config().at("eps").get<double>();
  ASSERT_FALSE(fx.config().at("cases").empty());
  for (const auto& item : fx.config().at("cases").items()) {
    const std::string c = item.key();
    SCOPED_TRACE(c);
    auto f1 = fx.input(c + ".feats1"), f2 = fx.input(c + ".feats2");
    ASSERT_EQ(f1.size(0), item.value()[0][0].get<int64_t>());
    auto s1 = ev::feature_statistics(f1), s2 = ev::feature_statistics(f2);
    EXPECT_TRUE(emo::test::AllClose(s1.mu, fx.output(c + ".mu1"), 1e-12));
    EXPECT_TRUE(emo::test::AllClose(s1.sigma, fx.output(c + ".sigma1"), 1e-12));
    EXPECT_TRUE(emo::test::AllClose(s2.mu, fx.output(c + ".mu2"), 1e-12));
    EXPECT_TRUE(emo::test::AllClose(s2.sigma, fx.output(c + ".sigma2"), 1e-12));
    auto r = ev::frechet_distance(s1, s2, eps);
    const double want = scalar(fx.output(c + ".distance"));
    const bool want_eps = fx.output(c + ".eps_branch").item<int64_t>() != 0;
    EXPECT_EQ(r.eps_branch, want_eps);
    // README: ~1e-9 relative when well conditioned / eps branch, ~1e-7 (observed 1.38e-7 abs) rank-deficient.
    const bool rank_deficient = f1.size(0) <= f1.size(1) || f2.size(0) <= f2.size(1);
    const double tol = rank_deficient ? 1e-6 : 1e-9;
    std::printf("[frechet %s] distance %.12g vs %.12g  rel diff %.3g (eps branch %d)\n", c.c_str(), r.distance, want,
                rel(r.distance, want), int(r.eps_branch));
    EXPECT_LE(rel(r.distance, want), tol) << r.distance << " vs " << want;
  }
}

TEST(GoldenEvalFrechet, EpsBranchChangesTheValue) {
  // The fixture's singular case must differ without pytorch-fid's eps retry (proves the branch matters).
  EMO_GOLDEN_FIXTURE(fx, "eval/frechet_distance");
  auto s1 = ev::feature_statistics(fx.input("b_singular_eps.feats1"));
  auto s2 = ev::feature_statistics(fx.input("b_singular_eps.feats2"));
  auto no_eps = ev::frechet_distance(s1, s2, 1e-6, ev::EpsBranch::kNever);
  EXPECT_GT(std::abs(no_eps.distance - scalar(fx.output("b_singular_eps.distance"))), 1e-4);
}

TEST(GoldenEvalFvd, FeaturesToDistance) {
  EMO_GOLDEN_FIXTURE(fx, "eval/fvd");
  ASSERT_FALSE(fx.config().at("cases").empty());
  for (const auto& item : fx.config().at("cases").items()) {
    const std::string c = item.key();
    SCOPED_TRACE(c);
    auto f1 = fx.input(c + ".feats1"), f2 = fx.input(c + ".feats2");
    ASSERT_EQ(f1.size(1), fx.config().at("feature_dim").get<int64_t>());
    auto s1 = ev::feature_statistics(f1), s2 = ev::feature_statistics(f2);
    EXPECT_TRUE(emo::test::AllClose(s1.mu, fx.output(c + ".mu1"), 1e-12));
    EXPECT_TRUE(emo::test::AllClose(s2.mu, fx.output(c + ".mu2"), 1e-12));
    EXPECT_LE(rel(s1.sigma.trace().item<double>(), scalar(fx.output(c + ".trace_sigma1_unbiased"))), 1e-12);
    EXPECT_LE(rel(s2.sigma.trace().item<double>(), scalar(fx.output(c + ".trace_sigma2_unbiased"))), 1e-12);
    // README: ~1e-9 relative for N > D, ~1e-6 relative for N < D. feats1 = generated, feats2 = real.
    const double tol = f1.size(0) > f1.size(1) ? 1e-9 : 1e-6;
    for (auto [variant, key] : {std::pair{ev::FvdVariant::kCommonMetrics, ".fvd_common_metrics"},
                                std::pair{ev::FvdVariant::kStyleganV, ".fvd_styleganv"}}) {
      const double got = ev::fvd_from_features(f1, f2, variant), want = scalar(fx.output(c + key));
      std::printf("[fvd %s%s] %.12g vs %.12g rel diff %.3g\n", c.c_str(), key, got, want, std::abs(got - want) / want);
      EXPECT_LE(std::abs(got - want) / want, tol) << key << ": " << got << " vs " << want;
    }
  }
  // One video per set: common_metrics returns |mu1 - mu2|^2 only. The fixture does not name the case its
  // `feats[:1]` came from; exactly one of the cases must reproduce it.
  const double want_single = scalar(fx.output("single_video.fvd_common_metrics"));
  int matches = 0;
  for (const auto& item : fx.config().at("cases").items()) {
    const double single = ev::fvd_from_features(fx.input(item.key() + ".feats1").narrow(0, 0, 1),
                                                fx.input(item.key() + ".feats2").narrow(0, 0, 1),
                                                ev::FvdVariant::kCommonMetrics);
    std::printf("[fvd single video from %s] %.12g vs %.12g\n", item.key().c_str(), single, want_single);
    if (std::abs(single - want_single) / want_single <= 1e-12) ++matches;
  }
  EXPECT_EQ(matches, 1);
}

TEST(GoldenEvalFvd, CommonMetricsPreprocess) {
  EMO_GOLDEN_FIXTURE(fx, "eval/fvd");
  auto out = ev::fvd_preprocess_common_metrics(fx.input("preprocess.video_cthw"));
  // 1.7e-6 from torch 2.x's resize kernels vs the torch 1.13 that made the fixture (float32 rounding).
  EXPECT_TRUE(emo::test::AllClose(out, fx.output("preprocess.i3d_input"), 1e-5));
}

TEST(GoldenEvalSsimPsnr, PerFrameAndMeans) {
  EMO_GOLDEN_FIXTURE(fx, "eval/ssim_psnr");
  auto va = fx.input("video_a_u8"), vb = fx.input("video_b_u8");  // [B, T, H, W, 3]
  const auto shape = fx.config().at("shape_BTHWC").get<std::vector<int64_t>>();
  ASSERT_EQ(va.sizes(), c10::IntArrayRef(shape));
  const int64_t B = va.size(0), T = va.size(1);
  struct M {
    const char* key;
    bool is_ssim;
    ev::SsimVariant s;
    ev::PsnrVariant p;
    double tol;
  };
  const M metrics[] = {{"ssim_skimage", true, ev::SsimVariant::kSkimage, {}, 1e-9},
                       {"ssim_skimage_gaussian", true, ev::SsimVariant::kSkimageGaussian, {}, 1e-9},
                       {"ssim_skimage_gray", true, ev::SsimVariant::kSkimageGray, {}, 1e-9},
                       {"ssim_cm", true, ev::SsimVariant::kCommonMetrics, {}, 1e-9},
                       {"psnr_skimage", false, {}, ev::PsnrVariant::kSkimage, 1e-6},
                       {"psnr_cm", false, {}, ev::PsnrVariant::kCommonMetrics, 1e-4}};
  for (const auto& m : metrics) {
    SCOPED_TRACE(m.key);
    auto per = torch::empty({B, T}, torch::kFloat64);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        per[b][t] = m.is_ssim ? ev::ssim(va[b][t], vb[b][t], m.s) : ev::psnr(va[b][t], vb[b][t], m.p);
    auto want = fx.output(std::string(m.key) + ".per_frame");
    std::printf("[%s] max|diff| %.3g\n", m.key, (per - want).abs().max().item<double>());
    EXPECT_LE((per - want).abs().max().item<double>(), m.tol);
    EXPECT_LE(std::abs(per.mean().item<double>() - scalar(fx.output(std::string(m.key) + ".mean"))), m.tol);
    if (std::string(m.key) == "ssim_cm" || std::string(m.key) == "psnr_cm") {
      // calculate_ssim / calculate_psnr(only_final=False): per time step mean and (population) std over videos.
      const std::string base = std::string(m.key) + (m.is_ssim ? ".calculate_ssim" : ".calculate_psnr");
      EXPECT_TRUE(emo::test::AllClose(per.mean(0), fx.output(base + ".value"), m.tol));
      EXPECT_TRUE(emo::test::AllClose(per.std(0, /*unbiased=*/false), fx.output(base + ".value_std"), m.tol));
      EXPECT_LE(std::abs(per.mean().item<double>() - scalar(fx.output(base + ".only_final"))), m.tol);
    }
  }
  // Identical frames: skimage PSNR = inf, common_metrics 100, both SSIM 1.
  auto f = va[0][0];
  EXPECT_TRUE(std::isinf(ev::psnr(f, f, ev::PsnrVariant::kSkimage)));
  EXPECT_TRUE(std::isinf(scalar(fx.output("identical.psnr_skimage"))));
  EXPECT_DOUBLE_EQ(ev::psnr(f, f, ev::PsnrVariant::kCommonMetrics), scalar(fx.output("identical.psnr_cm")));
  EXPECT_NEAR(ev::ssim(f, f, ev::SsimVariant::kSkimage), scalar(fx.output("identical.ssim_skimage")), 1e-12);
  EXPECT_NEAR(ev::ssim(f, f, ev::SsimVariant::kCommonMetrics), scalar(fx.output("identical.ssim_cm")), 1e-12);
}

TEST(GoldenEvalSync, MfccMatchesPythonSpeechFeatures) {
  EMO_GOLDEN_FIXTURE(fx, "eval/syncnet");
  const int sr = static_cast<int>(fx.input("sample_rate").item<int64_t>());
  ASSERT_EQ(sr, fx.config().at("sample_rate").get<int>());
  auto got = ev::mfcc(fx.input("audio_s16"), sr);
  auto want = fx.output("mfcc");
  ASSERT_EQ(got.sizes(), want.sizes());
  const double err = (got - want).abs().max().item<double>() / want.abs().max().item<double>();
  std::printf("[mfcc] max|diff| / max|ref| %.3g\n", err);
  EXPECT_LE(err, 1e-9);
}
