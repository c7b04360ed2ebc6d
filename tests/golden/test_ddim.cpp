// DDIMScheduler against diffusers v0.27.2 (fixtures ddim_*): schedule tables, timesteps and the chained
// eta=0 step, for every step count N present in each fixture's io.safetensors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "emo/scheduler.h"
#include "support/golden.h"

namespace {

using emo::sampling::DDIMScheduler;
using emo::sampling::DDIMSchedulerConfig;

// Step counts N for which the fixture holds output.timesteps_N.
std::set<int64_t> step_counts(const emo::test::Fixture& fx) {
  const std::string prefix = "output.timesteps_";
  std::set<int64_t> ns;
  for (const auto& [key, _] : fx.io())
    if (key.rfind(prefix, 0) == 0) ns.insert(std::stoll(key.substr(prefix.size())));
  return ns;
}

class GoldenDDIM : public ::testing::TestWithParam<const char*> {};

TEST_P(GoldenDDIM, TablesTimestepsAndChainedSteps) {
  EMO_GOLDEN_FIXTURE(fx, GetParam());
  const auto config = DDIMSchedulerConfig::from_json(fx.config(), fx.path("config.json"));
  DDIMScheduler sched(config);

  // Tables: the same float32 ops as diffusers. The fixtures were computed with torch 1.13, whose linspace rounds
  // differently from 2.x's (hallo pins 2.2.2; emo runs 2.11): up to 3e-6 on betas, a few float32 ulps, hence 1e-5.
  EXPECT_TRUE(emo::test::AllClose(sched.schedule().betas, fx.output("betas"), 1e-5));
  EXPECT_TRUE(emo::test::AllClose(sched.schedule().alphas_cumprod, fx.output("alphas_cumprod"), 1e-5));
  EXPECT_TRUE(emo::test::AllClose(sched.schedule().final_alpha_cumprod.reshape({1}), fx.output("final_alpha_cumprod"),
                                  1e-5));

  const auto ns = step_counts(fx);
  ASSERT_FALSE(ns.empty()) << "no output.timesteps_N in " << fx.dir();
  for (int64_t n : ns) {
    SCOPED_TRACE("N = " + std::to_string(n));
    const std::string sfx = "_" + std::to_string(n);
    sched.set_timesteps(n);
    const auto& ts = sched.timesteps();
    auto want_ts = fx.output("timesteps" + sfx).to(torch::kInt64).contiguous();
    ASSERT_EQ(static_cast<int64_t>(ts.size()), want_ts.numel());
    for (size_t i = 0; i < ts.size(); ++i) EXPECT_EQ(ts[i], want_ts[static_cast<int64_t>(i)].item<int64_t>()) << i;

    auto model_outputs = fx.input("model_outputs" + sfx);
    auto want_prev = fx.output("prev_samples" + sfx);
    auto want_x0 = fx.output("pred_original_samples" + sfx);
    auto x = fx.input("initial_sample" + sfx).clone();
    double worst = 0;
    for (size_t i = 0; i < ts.size(); ++i) {
      const auto idx = static_cast<int64_t>(i);
      auto r = sched.step(model_outputs[idx], ts[i], x, /*eta=*/0.0);
      EXPECT_TRUE(emo::test::AllClose(r.prev_sample, want_prev[idx], 1e-5)) << "prev_sample, step " << i;
      EXPECT_TRUE(emo::test::AllClose(r.pred_original_sample, want_x0[idx], 1e-5)) << "x0, step " << i;
      worst = std::max(worst, (r.prev_sample - want_prev[idx]).abs().max().item<double>());
      x = r.prev_sample;
    }
    RecordProperty("max_abs_diff_prev_" + std::to_string(n), std::to_string(worst));
    std::cout << "[ddim] " << GetParam() << " N=" << n << " max|prev diff| " << worst << "\n";
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenDDIM,
                         ::testing::Values("ddim_hallo", "ddim_sd15_eps_leading", "ddim_sd15_eps_trailing",
                                           "ddim_sd15_vpred_leading", "ddim_sd15_vpred_trailing"),
                         [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

// The chained loop through sample_loop() gives the same final sample as stepping by hand.
TEST(GoldenDDIMLoop, SampleLoopMatchesFinalSample) {
  EMO_GOLDEN_FIXTURE(fx, "ddim_hallo");
  DDIMScheduler sched(DDIMSchedulerConfig::from_json(fx.config(), fx.path("config.json")));
  const auto ns = step_counts(fx);
  ASSERT_FALSE(ns.empty());
  const int64_t n = *ns.begin();
  const std::string sfx = "_" + std::to_string(n);
  sched.set_timesteps(n);
  auto outputs = fx.input("model_outputs" + sfx);
  size_t calls = 0;
  emo::sampling::Denoiser replay = [&](const at::Tensor&, int64_t) { return outputs[static_cast<int64_t>(calls++)]; };
  auto x = emo::sampling::sample_loop(sched, replay, fx.input("initial_sample" + sfx).clone());
  EXPECT_EQ(calls, sched.timesteps().size());
  EXPECT_TRUE(emo::test::AllClose(x, fx.output("prev_samples" + sfx)[n - 1], 1e-5));
}

}  // namespace
