// Noise schedules and inference timesteps of diffusers.schedulers.scheduling_ddim.DDIMScheduler
// (__init__ tables, rescale_zero_terminal_snr, betas_for_alpha_bar, set_timesteps), diffusers v0.27.2.
// Tables use the same float32 tensor ops as diffusers; timesteps replay numpy's float64 arithmetic.
#include <torch/torch.h>

#include <cmath>

#include "emo/error.h"
#include "emo/scheduler.h"

namespace emo::sampling {

const char* to_string(BetaSchedule s) {
  switch (s) {
    case BetaSchedule::kLinear: return "linear";
    case BetaSchedule::kScaledLinear: return "scaled_linear";
    case BetaSchedule::kSquaredCosCapV2: return "squaredcos_cap_v2";
  }
  return "?";
}

const char* to_string(TimestepSpacing s) {
  switch (s) {
    case TimestepSpacing::kLeading: return "leading";
    case TimestepSpacing::kTrailing: return "trailing";
    case TimestepSpacing::kLinspace: return "linspace";
  }
  return "?";
}

const char* to_string(PredictionType p) {
  switch (p) {
    case PredictionType::kEpsilon: return "epsilon";
    case PredictionType::kVPrediction: return "v_prediction";
    case PredictionType::kSample: return "sample";
  }
  return "?";
}

namespace {

// diffusers betas_for_alpha_bar(alpha_transform_type="cosine", max_beta=0.999): Python float64 math.
at::Tensor cosine_betas(int64_t n) {
  auto alpha_bar = [](double t) {
    double c = std::cos((t + 0.008) / 1.008 * M_PI / 2);
    return c * c;
  };
  std::vector<float> betas(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double t1 = static_cast<double>(i) / static_cast<double>(n);
    double t2 = static_cast<double>(i + 1) / static_cast<double>(n);
    betas[static_cast<size_t>(i)] = static_cast<float>(std::min(1 - alpha_bar(t2) / alpha_bar(t1), 0.999));
  }
  return torch::tensor(betas, torch::kFloat32);
}

}  // namespace

at::Tensor rescale_zero_terminal_snr(const at::Tensor& betas) {
  auto alphas = 1.0 - betas;
  auto alphas_cumprod = torch::cumprod(alphas, 0);
  auto alphas_bar_sqrt = alphas_cumprod.sqrt();
  auto s0 = alphas_bar_sqrt[0].clone();
  auto sT = alphas_bar_sqrt[-1].clone();
  alphas_bar_sqrt -= sT;
  alphas_bar_sqrt *= s0 / (s0 - sT);
  auto alphas_bar = alphas_bar_sqrt.pow(2);
  auto ratios = alphas_bar.slice(0, 1) / alphas_bar.slice(0, 0, -1);
  auto rescaled = torch::cat({alphas_bar.slice(0, 0, 1), ratios});
  return 1 - rescaled;
}

NoiseSchedule make_noise_schedule(const DDIMSchedulerConfig& c) {
  const int64_t T = c.num_train_timesteps;
  if (T < 1) throw ModelError("scheduler config: num_train_timesteps must be >= 1, got " + std::to_string(T));
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  at::Tensor betas;
  if (!c.trained_betas.empty()) {
    if (static_cast<int64_t>(c.trained_betas.size()) != T)
      throw ModelError("scheduler config: trained_betas has " + std::to_string(c.trained_betas.size()) +
                       " entries, num_train_timesteps is " + std::to_string(T));
    betas = torch::tensor(c.trained_betas, torch::kFloat64).to(torch::kFloat32);
  } else {
    switch (c.beta_schedule) {
      case BetaSchedule::kLinear:
        betas = torch::linspace(c.beta_start, c.beta_end, T, f32);
        break;
      case BetaSchedule::kScaledLinear:
        betas = torch::linspace(std::pow(c.beta_start, 0.5), std::pow(c.beta_end, 0.5), T, f32).pow(2);
        break;
      case BetaSchedule::kSquaredCosCapV2:
        betas = cosine_betas(T);
        break;
    }
  }
  if (c.rescale_betas_zero_snr) betas = rescale_zero_terminal_snr(betas);
  NoiseSchedule s;
  s.betas = betas;
  s.alphas_cumprod = torch::cumprod(1.0 - betas, 0);
  s.final_alpha_cumprod = c.set_alpha_to_one ? torch::tensor(1.0f) : s.alphas_cumprod[0].clone();
  return s;
}

std::vector<int64_t> trailing_timesteps(int64_t start_t, int64_t T, int64_t n) {
  // np.round(np.arange(start_t, 0, -T / n)) - 1: numpy fills start + i * ((start + delta) - start).
  std::vector<int64_t> ts;
  const double start = static_cast<double>(start_t);
  const double delta = -static_cast<double>(T) / static_cast<double>(n);
  const auto len = static_cast<int64_t>(std::ceil((0.0 - start) / delta));
  const double d = (start + delta) - start;
  for (int64_t i = 0; i < len; ++i) {
    double v = (i == 0) ? start : (i == 1 ? start + delta : start + static_cast<double>(i) * d);
    ts.push_back(static_cast<int64_t>(std::nearbyint(v)) - 1);
  }
  return ts;
}

std::vector<int64_t> make_timesteps(TimestepSpacing spacing, int64_t T, int64_t n, int64_t steps_offset) {
  if (n < 1 || n > T)
    throw UsageError("num_inference_steps must be in [1, " + std::to_string(T) + "], got " + std::to_string(n));
  std::vector<int64_t> ts;
  switch (spacing) {
    case TimestepSpacing::kLinspace: {
      // np.linspace(0, T - 1, n).round()[::-1]: y = arange(n) * ((T-1)/(n-1)) + 0, last = T - 1 exactly.
      const double stop = static_cast<double>(T - 1);
      for (int64_t i = 0; i < n; ++i) {
        double y = (n == 1) ? 0.0 : static_cast<double>(i) * (stop / static_cast<double>(n - 1)) + 0.0;
        if (n > 1 && i == n - 1) y = stop;
        ts.push_back(static_cast<int64_t>(std::nearbyint(y)));  // no steps_offset (as diffusers)
      }
      std::reverse(ts.begin(), ts.end());
      break;
    }
    case TimestepSpacing::kLeading: {
      const int64_t ratio = T / n;  // integer division, as in diffusers
      for (int64_t i = n - 1; i >= 0; --i) ts.push_back(i * ratio + steps_offset);
      break;
    }
    case TimestepSpacing::kTrailing:
      ts = trailing_timesteps(T, T, n);
      break;
  }
  return ts;
}

}  // namespace emo::sampling
