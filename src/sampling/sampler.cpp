// The samplers the pipeline picks by name (--sampler): each wraps one scheduler behind the Sampler interface that
// denoise_clip runs, built once per clip from the model's scheduler config.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "emo/error.h"
#include "emo/sampler_names.h"
#include "emo/scheduler.h"

namespace emo::sampling {

const char* to_string(SamplerKind k) {
  switch (k) {
    case SamplerKind::kDDIM: return "ddim";
    case SamplerKind::kDPMPP2M: return "dpmpp-2m";
    case SamplerKind::kUniPC: return "unipc";
  }
  return "?";
}

SamplerKind parse_sampler(const std::string& name) {
  static_assert(kSamplerNames.size() == 3, "a new sampler name needs its SamplerKind here");
  if (name == kSamplerNames[0]) return SamplerKind::kDDIM;
  if (name == kSamplerNames[1]) return SamplerKind::kDPMPP2M;
  if (name == kSamplerNames[2]) return SamplerKind::kUniPC;
  throw UsageError("sampler '" + name + "': expected " + sampler_choices());
}

namespace {

class DDIMSampler final : public Sampler {
 public:
  DDIMSampler(const nlohmann::json& kwargs, int64_t steps) : s_(DDIMSchedulerConfig::from_json(kwargs, "scheduler")) {
    s_.set_timesteps(steps);
  }
  const std::vector<int64_t>& timesteps() const override { return s_.timesteps(); }
  at::Tensor step(const at::Tensor& out, int64_t t, const at::Tensor& x) override {
    return s_.step(out, t, x).prev_sample;
  }

 private:
  DDIMScheduler s_;
};

// DPM-Solver++ and UniPC: a multistep scheduler set to `steps` steps.
template <typename Scheduler, typename Config>
class MultistepSampler final : public Sampler {
 public:
  MultistepSampler(Config c, int64_t steps) : s_(std::move(c)) { s_.set_timesteps(steps); }
  const std::vector<int64_t>& timesteps() const override { return s_.timesteps(); }
  at::Tensor step(const at::Tensor& out, int64_t t, const at::Tensor& x) override { return s_.step(out, t, x); }

 private:
  Scheduler s_;
};

}  // namespace

std::unique_ptr<Sampler> make_sampler(SamplerKind kind, const nlohmann::json& kwargs, int64_t steps) {
  switch (kind) {
    case SamplerKind::kDDIM: return std::make_unique<DDIMSampler>(kwargs, steps);
    case SamplerKind::kDPMPP2M: {
      // The model's scheduler config (Hallo's: v_prediction, trailing, zero-SNR betas) with the solver fixed to 2M.
      auto c = DPMSolverConfig::from_json(kwargs, "scheduler");
      c.solver_order = 2;
      return std::make_unique<MultistepSampler<DPMSolverMultistepScheduler, DPMSolverConfig>>(std::move(c), steps);
    }
    case SamplerKind::kUniPC:
      // The model's scheduler config with UniPC's own keys where it has them (Hallo's has none: bh2, order 2).
      return std::make_unique<MultistepSampler<UniPCMultistepScheduler, UniPCConfig>>(
          UniPCConfig::from_json(kwargs, "scheduler"), steps);
  }
  throw UsageError("unknown sampler");
}

}  // namespace emo::sampling
