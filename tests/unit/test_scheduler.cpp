// Scheduler pieces that need no fixture: config parsing (and its errors), timestep spacings,
// parameterisation round trips, and classifier-free guidance.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "emo/error.h"
#include "emo/sampler_names.h"
#include "emo/scheduler.h"

namespace fs = std::filesystem;
using namespace emo::sampling;
using json = nlohmann::json;

TEST(SchedulerConfig, DefaultsMatchDiffusers) {
  auto c = DDIMSchedulerConfig::from_json(json::object());
  EXPECT_EQ(c.num_train_timesteps, 1000);
  EXPECT_DOUBLE_EQ(c.beta_start, 0.0001);
  EXPECT_DOUBLE_EQ(c.beta_end, 0.02);
  EXPECT_EQ(c.beta_schedule, BetaSchedule::kLinear);
  EXPECT_TRUE(c.clip_sample);
  EXPECT_TRUE(c.set_alpha_to_one);
  EXPECT_EQ(c.steps_offset, 0);
  EXPECT_EQ(c.prediction_type, PredictionType::kEpsilon);
  EXPECT_EQ(c.timestep_spacing, TimestepSpacing::kLeading);
  EXPECT_FALSE(c.rescale_betas_zero_snr);
}

TEST(SchedulerConfig, ReadsHalloStyleConfigAndIgnoresForeignKeys) {
  auto j = json::parse(R"({"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "skip_prk_steps": true,
    "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "linear", "clip_sample": false, "steps_offset": 1,
    "prediction_type": "v_prediction", "rescale_betas_zero_snr": true, "timestep_spacing": "trailing",
    "trained_betas": null, "thresholding": false})");
  auto c = DDIMSchedulerConfig::from_json(j);
  EXPECT_EQ(c.beta_schedule, BetaSchedule::kLinear);
  EXPECT_EQ(c.prediction_type, PredictionType::kVPrediction);
  EXPECT_EQ(c.timestep_spacing, TimestepSpacing::kTrailing);
  EXPECT_TRUE(c.rescale_betas_zero_snr);
  EXPECT_FALSE(c.clip_sample);
  EXPECT_EQ(c.steps_offset, 1);
  EXPECT_TRUE(c.trained_betas.empty());
}

TEST(SchedulerConfig, RejectsBadValuesWithKeyName) {
  auto expect_error = [](const char* text, const char* needle) {
    try {
      DDIMSchedulerConfig::from_json(json::parse(text), "sched.json");
      ADD_FAILURE() << "no error for " << text;
    } catch (const emo::ModelError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("sched.json"), std::string::npos) << e.what();
    }
  };
  expect_error(R"({"beta_schedule": "sqrt_linear"})", "beta_schedule");
  expect_error(R"({"prediction_type": "flow"})", "prediction_type");
  expect_error(R"({"timestep_spacing": "karras"})", "timestep_spacing");
  expect_error(R"({"num_train_timesteps": "1000"})", "num_train_timesteps");
  expect_error(R"({"num_train_timesteps": 10.5})", "num_train_timesteps");
  expect_error(R"({"num_train_timesteps": 0})", "num_train_timesteps");
  expect_error(R"({"clip_sample": 1})", "clip_sample");
  expect_error(R"({"thresholding": true})", "thresholding");
  expect_error(R"({"num_train_timesteps": 3, "trained_betas": [0.1, 0.2]})", "trained_betas");
  expect_error(R"({"trained_betas": "x"})", "trained_betas");
  expect_error(R"([1, 2])", "object");
}

TEST(SchedulerConfig, FromFileFindsSchedulerConfigInFolder) {
  auto dir = fs::temp_directory_path() / ("emo_sched_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  EXPECT_THROW(DDIMSchedulerConfig::from_file(dir.string()), emo::ModelError);  // empty folder
  std::ofstream(dir / "config.json") << R"({"prediction_type": "sample"})";
  EXPECT_EQ(DDIMSchedulerConfig::from_file(dir.string()).prediction_type, PredictionType::kSample);
  std::ofstream(dir / "scheduler_config.json") << R"({"prediction_type": "v_prediction"})";
  EXPECT_EQ(DDIMSchedulerConfig::from_file(dir.string()).prediction_type, PredictionType::kVPrediction);
  std::ofstream(dir / "broken.json") << "{not json";
  EXPECT_THROW(DDIMSchedulerConfig::from_file((dir / "broken.json").string()), emo::ModelError);
  EXPECT_THROW(DDIMSchedulerConfig::from_file((dir / "missing.json").string()), emo::ModelError);
  fs::remove_all(dir);
}

TEST(SchedulerTimesteps, SpacingsAsDiffusers) {
  EXPECT_EQ(make_timesteps(TimestepSpacing::kLeading, 1000, 4, 1), (std::vector<int64_t>{751, 501, 251, 1}));
  EXPECT_EQ(make_timesteps(TimestepSpacing::kTrailing, 1000, 4, 1), (std::vector<int64_t>{999, 749, 499, 249}));
  EXPECT_EQ(make_timesteps(TimestepSpacing::kTrailing, 1000, 3, 0), (std::vector<int64_t>{999, 666, 332}));
  // np.linspace(0, 999, 4).round() = [0, 333, 666, 999]; no steps_offset for linspace.
  EXPECT_EQ(make_timesteps(TimestepSpacing::kLinspace, 1000, 4, 1), (std::vector<int64_t>{999, 666, 333, 0}));
  EXPECT_EQ(make_timesteps(TimestepSpacing::kLinspace, 1000, 1, 0), (std::vector<int64_t>{0}));
  EXPECT_THROW(make_timesteps(TimestepSpacing::kLeading, 1000, 0, 0), emo::UsageError);
  EXPECT_THROW(make_timesteps(TimestepSpacing::kLeading, 1000, 1001, 0), emo::UsageError);
}

TEST(SchedulerSchedule, ZeroTerminalSnrAndFinalAlpha) {
  DDIMSchedulerConfig c;
  c.beta_start = 0.00085;
  c.beta_end = 0.012;
  c.rescale_betas_zero_snr = true;
  auto s = make_noise_schedule(c);
  EXPECT_EQ(s.alphas_cumprod[-1].item<float>(), 0.0f);
  EXPECT_EQ(s.final_alpha_cumprod.item<float>(), 1.0f);
  c.set_alpha_to_one = false;
  c.beta_schedule = BetaSchedule::kSquaredCosCapV2;
  c.rescale_betas_zero_snr = false;
  s = make_noise_schedule(c);
  EXPECT_EQ(s.final_alpha_cumprod.item<float>(), s.alphas_cumprod[0].item<float>());
  EXPECT_LE(s.betas.max().item<float>(), 0.999f);
}

TEST(SchedulerParameterisation, AllTypesAgreeOnX0AndEps) {
  torch::manual_seed(0);
  auto x0 = torch::randn({2, 3});
  auto eps = torch::randn({2, 3});
  auto a = torch::tensor(0.3f);
  auto xt = a.sqrt() * x0 + (1 - a).sqrt() * eps;
  auto v = a.sqrt() * eps - (1 - a).sqrt() * x0;
  for (auto [type, out] : {std::pair{PredictionType::kEpsilon, eps}, std::pair{PredictionType::kVPrediction, v},
                           std::pair{PredictionType::kSample, x0}}) {
    auto r = to_x0_eps(type, out, xt, a);
    EXPECT_TRUE(torch::allclose(r.x0, x0, 1e-5, 1e-5)) << to_string(type);
    EXPECT_TRUE(torch::allclose(r.eps, eps, 1e-5, 1e-5)) << to_string(type);
  }
}

TEST(SchedulerStep, ErrorsAndEta) {
  DDIMSchedulerConfig c;
  c.clip_sample = false;
  DDIMScheduler s(c);
  auto x = torch::randn({1, 4});
  EXPECT_THROW(s.step(x, 999, x), emo::UsageError);  // before set_timesteps
  s.set_timesteps(10);
  EXPECT_THROW(s.step(x, 1000, x), emo::UsageError);
  EXPECT_THROW(s.step(torch::randn({1, 5}), 900, x), emo::UsageError);
  EXPECT_THROW(s.step(x, 900, x, 0.5), emo::UsageError);  // eta > 0 without noise
  auto det = s.step(x, 900, x).prev_sample;
  auto zero_noise = s.step(x, 900, x, 1.0, torch::zeros_like(x)).prev_sample;
  EXPECT_FALSE(torch::allclose(det, zero_noise));  // eta changes the direction term
  auto noisy = s.step(x, 900, x, 1.0, torch::ones_like(x)).prev_sample;
  EXPECT_TRUE((noisy - zero_noise).min().item<float>() > 0);
}

TEST(Guidance, CombineFormula) {
  auto u = torch::tensor({1.0f, 2.0f});
  auto c = torch::tensor({3.0f, 0.0f});
  EXPECT_TRUE(torch::equal(cfg_combine(u, c, 3.5), u + 3.5 * (c - u)));
  EXPECT_TRUE(torch::equal(cfg_combine(u, c, 1.0), c));
  EXPECT_TRUE(torch::equal(cfg_combine(u, c, 0.0), u));
  EXPECT_THROW(cfg_combine(u, torch::zeros({3}), 2.0), emo::UsageError);
  EXPECT_FALSE(guidance_enabled(1.0));
  EXPECT_TRUE(guidance_enabled(3.5));
}

TEST(Guidance, BatchedWrapperPutsUncondFirst) {
  // A fake denoiser whose "conditioning" is the batch half: uncond half returns x, cond half returns x + 10.
  int calls = 0;
  Denoiser batched = [&](const at::Tensor& x2, int64_t t) {
    ++calls;
    EXPECT_EQ(x2.size(0), 4);
    EXPECT_EQ(t, 7);
    auto h = x2.chunk(2, 0);
    return torch::cat({h[0], h[1] + 10}, 0);
  };
  auto x = torch::randn({2, 3});
  auto out = guided(batched, 2.0)(x, 7);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(torch::allclose(out, x + 20));
  Denoiser bad = [](const at::Tensor& x2, int64_t) { return x2.slice(0, 0, 1); };
  EXPECT_THROW(guided(bad, 2.0)(x, 0), emo::UsageError);
}

TEST(Guidance, TwoPassWrapper) {
  Denoiser uncond = [](const at::Tensor& x, int64_t) { return x * 0; };
  Denoiser cond = [](const at::Tensor& x, int64_t) { return x; };
  auto x = torch::ones({2});
  EXPECT_TRUE(torch::allclose(guided(uncond, cond, 3.0)(x, 0), torch::full({2}, 3.0f)));
  EXPECT_THROW(guided(Denoiser{}, cond, 3.0), emo::UsageError);
}

// ---- DPM-Solver++ and the sampler choice ---------------------------------------------------------

namespace {
// Config::from_json must refuse `j` with a ModelError naming the file and `key`.
template <typename Config>
void config_rejects(const nlohmann::json& j, const std::string& key) {
  try {
    Config::from_json(j, "sched.json");
    ADD_FAILURE() << "accepted " << j.dump();
  } catch (const emo::ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("sched.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
  }
}
}  // namespace

TEST(DPMSolverConfig, DefaultsAndHalloKeys) {
  using emo::sampling::DPMSolverConfig;
  auto d = DPMSolverConfig::from_json(nlohmann::json::object());
  EXPECT_EQ(d.solver_order, 2);
  EXPECT_EQ(d.schedule.timestep_spacing, emo::sampling::TimestepSpacing::kLinspace);  // DPM's default, not DDIM's
  auto h = DPMSolverConfig::from_json({{"prediction_type", "v_prediction"}, {"timestep_spacing", "trailing"},
                                       {"rescale_betas_zero_snr", true}, {"clip_sample", false}});
  EXPECT_EQ(h.schedule.timestep_spacing, emo::sampling::TimestepSpacing::kTrailing);
  EXPECT_TRUE(h.schedule.rescale_betas_zero_snr);
  // zero-SNR: the last alpha_bar is patched to 2^-24, so the first sigma is 4096, not inf
  emo::sampling::DPMSolverMultistepScheduler s(h);
  s.set_timesteps(4);
  EXPECT_EQ(s.timesteps().front(), 999);
  EXPECT_NEAR(s.sigmas()[0].item<double>(), 4096.0, 1e-2);
  EXPECT_EQ(s.sigmas()[-1].item<double>(), 0.0);
}

TEST(DPMSolverConfig, RejectsWhatIsNotImplementedNamingTheKey) {
  const auto rejects = config_rejects<emo::sampling::DPMSolverConfig>;
  rejects({{"solver_order", 3}}, "solver_order");
  rejects({{"solver_order", 0}}, "solver_order");
  rejects({{"solver_order", "2"}}, "solver_order");
  rejects({{"algorithm_type", "sde-dpmsolver++"}}, "algorithm_type");
  rejects({{"solver_type", "rk4"}}, "solver_type");
  rejects({{"use_karras_sigmas", true}}, "use_karras_sigmas");
  rejects({{"use_lu_lambdas", true}}, "use_lu_lambdas");
  rejects({{"final_sigmas_type", "one"}}, "final_sigmas_type");
  rejects({{"variance_type", "learned_range"}}, "variance_type");
  rejects({{"lambda_min_clipped", "low"}}, "lambda_min_clipped");
}

namespace {
// A multistep scheduler keeps a history, so step() must follow set_timesteps()' timesteps in order: calls before
// set_timesteps(), out of order, past the end or with mismatched shapes are UsageErrors; set_timesteps() restarts.
template <typename Scheduler, typename Config>
void expect_step_order_enforced() {
  Scheduler s(Config::from_json(nlohmann::json::object()));
  auto x = torch::randn({1, 4, 2, 2});
  EXPECT_THROW(s.step(x, 999, x), emo::UsageError);  // before set_timesteps
  s.set_timesteps(3);
  const auto ts = s.timesteps();
  EXPECT_THROW(s.step(x, ts[1], x), emo::UsageError);  // skips the first timestep
  EXPECT_THROW(s.step(x, ts[0], torch::randn({1, 4, 2, 3})), emo::UsageError);
  for (int64_t t : ts) x = s.step(x, t, x);
  EXPECT_THROW(s.step(x, ts[2], x), emo::UsageError);  // past the last step
  s.set_timesteps(3);                                  // a new run starts clean
  EXPECT_NO_THROW(s.step(x, ts[0], x));
}
}  // namespace

TEST(DPMSolverStep, OutOfOrderAndUnsetCallsAreErrors) {
  expect_step_order_enforced<emo::sampling::DPMSolverMultistepScheduler, emo::sampling::DPMSolverConfig>();
}

TEST(Sampler, ParseNamesAndMakeFromHalloKwargs) {
  using emo::sampling::SamplerKind;
  EXPECT_EQ(emo::sampling::parse_sampler("ddim"), SamplerKind::kDDIM);
  EXPECT_EQ(emo::sampling::parse_sampler("dpmpp-2m"), SamplerKind::kDPMPP2M);
  EXPECT_THROW(emo::sampling::parse_sampler("euler"), emo::UsageError);
  EXPECT_EQ(emo::sampling::parse_sampler("unipc"), SamplerKind::kUniPC);
  EXPECT_STREQ(emo::sampling::to_string(SamplerKind::kDPMPP2M), "dpmpp-2m");
  EXPECT_STREQ(emo::sampling::to_string(SamplerKind::kUniPC), "unipc");
  for (const char* name : emo::kSamplerNames) EXPECT_STREQ(emo::sampling::to_string(emo::sampling::parse_sampler(name)), name);
  const nlohmann::json hallo = {{"beta_start", 0.00085}, {"beta_end", 0.012}, {"beta_schedule", "linear"},
                                {"clip_sample", false}, {"steps_offset", 1}, {"prediction_type", "v_prediction"},
                                {"rescale_betas_zero_snr", true}, {"timestep_spacing", "trailing"}};
  auto ddim = emo::sampling::make_sampler(SamplerKind::kDDIM, hallo, 40);
  auto dpm = emo::sampling::make_sampler(SamplerKind::kDPMPP2M, hallo, 20);
  ASSERT_EQ(ddim->timesteps().size(), 40u);
  ASSERT_EQ(dpm->timesteps().size(), 20u);
  EXPECT_EQ(dpm->timesteps().front(), 999);
  EXPECT_EQ(dpm->timesteps().back(), 49);
  // With an exact data predictor (v from the true x0) both samplers land on x0; the DPM-Solver++ last step
  // (final sigma 0) returns the data prediction itself.
  auto x0 = torch::randn({1, 4, 2, 3, 3});
  auto noise = torch::randn_like(x0);
  emo::sampling::DPMSolverMultistepScheduler tables(emo::sampling::DPMSolverConfig::from_json(hallo));
  auto oracle = [&](const torch::Tensor& x, int64_t t) {
    const double a = tables.alphas_cumprod()[t].item<double>();
    // x = sqrt(a) x0 + sqrt(1-a) eps  ->  eps = (x - sqrt(a) x0) / sqrt(1-a);  v = sqrt(a) eps - sqrt(1-a) x0
    auto eps = (x - std::sqrt(a) * x0) / std::sqrt(1 - a);
    return std::sqrt(a) * eps - std::sqrt(1 - a) * x0;
  };
  for (auto* s : {ddim.get(), dpm.get()}) {
    auto x = noise.clone();
    for (int64_t t : s->timesteps()) x = s->step(oracle(x, t), t, x);
    EXPECT_LT((x - x0).abs().max().item<double>(), 1e-3);
  }
}

TEST(UniPCConfig, DefaultsAndHalloKeys) {
  using emo::sampling::UniPCConfig;
  auto d = UniPCConfig::from_json(nlohmann::json::object());
  EXPECT_EQ(d.solver_order, 2);
  EXPECT_TRUE(d.predict_x0);
  EXPECT_EQ(d.solver_type, UniPCConfig::SolverType::kBH2);
  EXPECT_TRUE(d.lower_order_final);
  EXPECT_EQ(d.schedule.timestep_spacing, emo::sampling::TimestepSpacing::kLinspace);  // UniPC's default
  auto h = UniPCConfig::from_json({{"prediction_type", "v_prediction"}, {"timestep_spacing", "trailing"},
                                   {"rescale_betas_zero_snr", true}, {"clip_sample", false}, {"solver_type", "heun"},
                                   {"disable_corrector", {1, 2}}});
  EXPECT_EQ(h.schedule.timestep_spacing, emo::sampling::TimestepSpacing::kTrailing);
  EXPECT_FALSE(h.schedule.rescale_betas_zero_snr);  // diffusers 0.27.2's UniPC has no zero-SNR option
  EXPECT_EQ(h.solver_type, UniPCConfig::SolverType::kBH2);  // heun, midpoint, logrho: bh2, as in diffusers
  EXPECT_EQ(h.disable_corrector, (std::vector<int64_t>{1, 2}));
  emo::sampling::UniPCMultistepScheduler s(h);
  s.set_timesteps(4);
  EXPECT_EQ(s.timesteps(), (std::vector<int64_t>{999, 749, 499, 249}));
  ASSERT_EQ(s.sigmas().numel(), 5);
  // The default linear betas 1e-4..0.02, not rescaled: a finite first sigma (157.4; zero-SNR would make it 4096)
  EXPECT_NEAR(s.sigmas()[0].item<double>(), 157.4, 0.1);
  EXPECT_NEAR(s.sigmas()[-1].item<double>(), std::sqrt(1e-4 / (1 - 1e-4)), 1e-6);  // sigma_min, not 0
}

TEST(UniPCConfig, RejectsWhatIsNotImplementedNamingTheKey) {
  const auto rejects = config_rejects<emo::sampling::UniPCConfig>;
  rejects({{"solver_order", 0}}, "solver_order");
  rejects({{"solver_order", 4}}, "solver_order");
  rejects({{"solver_order", 2.5}}, "solver_order");
  rejects({{"solver_type", "rk4"}}, "solver_type");
  rejects({{"predict_x0", "yes"}}, "predict_x0");
  rejects({{"disable_corrector", 3}}, "disable_corrector");
  rejects({{"disable_corrector", {"a"}}}, "disable_corrector");
  rejects({{"solver_p", {{"_class_name", "DDIMScheduler"}}}}, "solver_p");
  rejects({{"use_karras_sigmas", true}}, "use_karras_sigmas");
  rejects({{"thresholding", true}}, "thresholding");
}

TEST(UniPCStep, OutOfOrderAndUnsetCallsAreErrors) {
  expect_step_order_enforced<emo::sampling::UniPCMultistepScheduler, emo::sampling::UniPCConfig>();
}

// With an exact, self-consistent data predictor the probability-flow ODE keeps x_t = alpha_t x0 + sigma_t eps for the
// eps of the start, and every UniPC order and variant follows it (the differences D1 vanish): the run ends at
// alpha_min x0 + sigma_min eps, the last sigma being sigma_min.
TEST(UniPCStep, FollowsTheExactSolutionWithAnExactDenoiser) {
  using emo::sampling::UniPCConfig;
  const nlohmann::json hallo = {{"beta_start", 0.00085}, {"beta_end", 0.012}, {"beta_schedule", "linear"},
                                {"clip_sample", false}, {"steps_offset", 1}, {"prediction_type", "v_prediction"},
                                {"rescale_betas_zero_snr", true}, {"timestep_spacing", "trailing"}};
  auto schedule_cfg = emo::sampling::DDIMSchedulerConfig::from_json(hallo);
  schedule_cfg.rescale_betas_zero_snr = false;  // UniPC's own schedule
  const auto ac = emo::sampling::make_noise_schedule(schedule_cfg).alphas_cumprod.to(torch::kFloat64);
  auto x0 = torch::randn({1, 4, 2, 3, 3}, torch::kFloat64);
  auto noise = torch::randn_like(x0);
  auto v_of = [&](const torch::Tensor& x, int64_t t) {
    const double a = ac[t].item<double>();
    auto eps = (x - std::sqrt(a) * x0) / std::sqrt(1 - a);
    return (std::sqrt(a) * eps - std::sqrt(1 - a) * x0).to(torch::kFloat32);
  };
  const double aT = ac[999].item<double>(), a0 = ac[0].item<double>();
  const auto eps0 = (noise - std::sqrt(aT) * x0) / std::sqrt(1 - aT);
  const auto want = std::sqrt(a0) * x0 + std::sqrt(1 - a0) * eps0;
  for (const auto& extra : {nlohmann::json::object(), nlohmann::json{{"solver_type", "bh1"}},
                            nlohmann::json{{"solver_order", 3}}, nlohmann::json{{"predict_x0", false}}}) {
    SCOPED_TRACE(extra.dump());
    auto kwargs = hallo;
    kwargs.update(extra);
    emo::sampling::UniPCMultistepScheduler s(UniPCConfig::from_json(kwargs));
    s.set_timesteps(12);
    auto x = noise.to(torch::kFloat32);
    for (int64_t t : s.timesteps()) x = s.step(v_of(x.to(torch::kFloat64), t), t, x);
    EXPECT_LT((x.to(torch::kFloat64) - want).abs().max().item<double>(), 2e-4);
  }
  // The pipeline's sampler: the same run from the model's kwargs.
  auto unipc = emo::sampling::make_sampler(emo::sampling::SamplerKind::kUniPC, hallo, 12);
  auto x = noise.to(torch::kFloat32);
  for (int64_t t : unipc->timesteps()) x = unipc->step(v_of(x.to(torch::kFloat64), t), t, x);
  EXPECT_LT((x.to(torch::kFloat64) - want).abs().max().item<double>(), 2e-4);
}

TEST(UniPCStep, KeepsTheSampleDtype) {
  emo::sampling::UniPCMultistepScheduler s(emo::sampling::UniPCConfig::from_json({{"solver_order", 3}}));
  s.set_timesteps(4);
  auto x = torch::randn({1, 4, 2, 2}).to(torch::kHalf);
  for (int64_t t : s.timesteps()) {
    x = s.step(torch::randn({1, 4, 2, 2}).to(torch::kHalf), t, x);
    ASSERT_EQ(x.scalar_type(), torch::kHalf);
    ASSERT_TRUE(torch::isfinite(x).all().item<bool>());
  }
}
