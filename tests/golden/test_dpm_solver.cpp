// DPMSolverMultistepScheduler against diffusers v0.27.2: every case and step count in tests/data/dpm (the
// project's own fixture, scripts/golden/make_dpm_fixture.py): timesteps, sigmas and the chained steps.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "emo/error.h"
#include "emo/scheduler.h"
#include "support/golden.h"

namespace {

namespace fs = std::filesystem;
using emo::sampling::DPMSolverConfig;
using emo::sampling::DPMSolverMultistepScheduler;

// $EMO_TEST_DATA_DIR/dpm, else the source tree's tests/data/dpm, else ./tests/data/dpm (a bundle's checkout).
std::string data_dir() {
  if (const char* e = std::getenv("EMO_TEST_DATA_DIR"); e && *e) return std::string(e) + "/dpm";
  const std::string src = std::string(EMO_SOURCE_DIR) + "/tests/data/dpm";
  if (fs::is_directory(src) || !fs::is_directory("tests/data/dpm")) return src;
  return "tests/data/dpm";
}

TEST(GoldenDPMSolver, EveryCaseAndStepCountMatchesDiffusers) {
  const auto dir = data_dir();
  ASSERT_TRUE(fs::is_regular_file(dir + "/cases.json")) << dir << ": DPM fixture missing";
  const auto meta = emo::test::read_json(dir + "/cases.json");
  const auto io = emo::io::load_state_dict(dir + "/io.safetensors");
  auto get = [&](const std::string& key) {
    auto it = io.find(key);
    if (it == io.end()) throw std::runtime_error(dir + "/io.safetensors has no " + key);
    return it->second;
  };
  ASSERT_FALSE(meta.at("cases").empty());
  int checked = 0;
  for (const auto& [name, kwargs] : meta.at("cases").items()) {
    SCOPED_TRACE("case " + name);
    DPMSolverMultistepScheduler sched(DPMSolverConfig::from_json(kwargs, dir + "/cases.json:" + name));
    for (const auto& jn : kwargs.at("steps")) {
      const int64_t n = jn.get<int64_t>();
      SCOPED_TRACE("N = " + std::to_string(n));
      const std::string p = name + ".", sfx = "_" + std::to_string(n);
      sched.set_timesteps(n);
      auto want_ts = get(p + "timesteps" + sfx).to(torch::kInt64);
      const auto& ts = sched.timesteps();
      ASSERT_EQ(static_cast<int64_t>(ts.size()), want_ts.numel());
      for (size_t i = 0; i < ts.size(); ++i) EXPECT_EQ(ts[i], want_ts[static_cast<int64_t>(i)].item<int64_t>()) << i;
      EXPECT_TRUE(emo::test::AllClose(sched.sigmas(), get(p + "sigmas" + sfx), 1e-6));

      auto outs = get(p + "model_outputs" + sfx);
      auto want = get(p + "prev_samples" + sfx);
      auto x = get(p + "initial_sample" + sfx).clone();
      for (size_t i = 0; i < ts.size(); ++i) {
        const auto k = static_cast<int64_t>(i);
        x = sched.step(outs[k], ts[i], x);
        ASSERT_TRUE(emo::test::AllClose(x, want[k], 1e-5)) << "step " << i << " (t = " << ts[i] << ")";
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 10);
}

}  // namespace
