// DPMSolverMultistepScheduler and UniPCMultistepScheduler against diffusers v0.27.2: every case and step count in
// tests/data/dpm and tests/data/unipc (the project's own fixtures, scripts/golden/make_multistep_fixtures.py):
// timesteps, sigmas and the chained steps.
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
using emo::sampling::UniPCConfig;
using emo::sampling::UniPCMultistepScheduler;

// $EMO_TEST_DATA_DIR/<name>, else the source tree's tests/data/<name>, else ./tests/data/<name> (a bundle's checkout).
std::string data_dir(const std::string& name) {
  if (const char* e = std::getenv("EMO_TEST_DATA_DIR"); e && *e) return std::string(e) + "/" + name;
  const std::string src = std::string(EMO_SOURCE_DIR) + "/tests/data/" + name;
  if (fs::is_directory(src) || !fs::is_directory("tests/data/" + name)) return src;
  return "tests/data/" + name;
}

// Replays every case of the fixture in `dir` through Scheduler (built from the case's kwargs by Config::from_json)
// and returns how many (case, step count) runs it checked.
template <typename Scheduler, typename Config>
int check_fixture(const std::string& dir, double tol) {
  EXPECT_TRUE(fs::is_regular_file(dir + "/cases.json")) << dir << ": fixture missing";
  if (!fs::is_regular_file(dir + "/cases.json")) return 0;
  const auto meta = emo::test::read_json(dir + "/cases.json");
  const auto io = emo::io::load_state_dict(dir + "/io.safetensors");
  auto get = [&](const std::string& key) {
    auto it = io.find(key);
    if (it == io.end()) throw std::runtime_error(dir + "/io.safetensors has no " + key);
    return it->second;
  };
  EXPECT_FALSE(meta.at("cases").empty());
  int checked = 0;
  for (const auto& [name, kwargs] : meta.at("cases").items()) {
    SCOPED_TRACE("case " + name);
    Scheduler sched(Config::from_json(kwargs, dir + "/cases.json:" + name));
    for (const auto& jn : kwargs.at("steps")) {
      const int64_t n = jn.template get<int64_t>();
      SCOPED_TRACE("N = " + std::to_string(n));
      const std::string p = name + ".", sfx = "_" + std::to_string(n);
      sched.set_timesteps(n);
      auto want_ts = get(p + "timesteps" + sfx).to(torch::kInt64);
      const auto& ts = sched.timesteps();
      EXPECT_EQ(static_cast<int64_t>(ts.size()), want_ts.numel());
      if (static_cast<int64_t>(ts.size()) != want_ts.numel()) continue;
      for (size_t i = 0; i < ts.size(); ++i)
        EXPECT_EQ(ts[i], want_ts[static_cast<int64_t>(i)].template item<int64_t>()) << i;
      EXPECT_TRUE(emo::test::AllClose(sched.sigmas(), get(p + "sigmas" + sfx), 1e-6));

      auto outs = get(p + "model_outputs" + sfx);
      auto want = get(p + "prev_samples" + sfx);
      auto x = get(p + "initial_sample" + sfx).clone();
      for (size_t i = 0; i < ts.size(); ++i) {
        const auto k = static_cast<int64_t>(i);
        x = sched.step(outs[k], ts[i], x);
        const bool ok = emo::test::AllClose(x, want[k], tol);
        EXPECT_TRUE(ok) << "step " << i << " (t = " << ts[i] << ")";
        if (!ok) break;  // later steps inherit the error
      }
      ++checked;
    }
  }
  return checked;
}

TEST(GoldenDPMSolver, EveryCaseAndStepCountMatchesDiffusers) {
  EXPECT_GE((check_fixture<DPMSolverMultistepScheduler, DPMSolverConfig>(data_dir("dpm"), 1e-5)), 10);
}

TEST(GoldenUniPC, EveryCaseAndStepCountMatchesDiffusers) {
  EXPECT_GE((check_fixture<UniPCMultistepScheduler, UniPCConfig>(data_dir("unipc"), 1e-5)), 10);
}

}  // namespace
