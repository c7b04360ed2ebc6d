#include "pipeline/stage_clock.h"

#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/torch.h>

#include <set>

#include "emo/compat.h"

namespace emo::pipeline {

namespace {
namespace prof = torch::autograd::profiler;
namespace impl = torch::profiler::impl;

impl::ProfilerConfig flop_config() {
  return impl::ProfilerConfig(impl::ProfilerState::KINETO, /*report_input_shapes=*/true, /*profile_memory=*/false,
                              /*with_stack=*/false, /*with_flops=*/true);
}

// The ops whose FLOPs count (2 x multiply-accumulate), as ../shared/reference/flops.md counts them: matrix products and
// convolutions. Elementwise ops are memory-bound and left out; attention comes from compat's counter.
bool counted_op(const std::string& n) {
  return n == "aten::mm" || n == "aten::addmm" || n == "aten::bmm" || n == "aten::baddbmm" || n == "aten::conv2d";
}
}  // namespace

StageClock::StageClock(c10::Device device, bool count_flops) : device_(device), count_flops_(count_flops) {}
StageClock::~StageClock() = default;

void StageClock::sync() const {
  if (device_.is_cuda()) torch::cuda::synchronize(device_.has_index() ? device_.index() : 0);
}

StageClock::Scope::Scope(StageClock* clock, const char* name) : clock_(clock), name_(name) {
  if (!clock_) return;
  clock_->sync();
  if (clock_->count_flops_ && clock_->child_s_.empty()) {
    const auto cfg = flop_config();
    const std::set<impl::ActivityType> acts{impl::ActivityType::CPU};
    prof::prepareProfiler(cfg, acts);
    prof::enableProfiler(cfg, acts);
    compat::attention_flops_reset(true);
    profiling_ = true;
  }
  clock_->child_s_.push_back(0.0);
  t0_ = std::chrono::steady_clock::now();
}

StageClock::Scope::~Scope() {
  if (!clock_) return;
  clock_->sync();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  const double child = clock_->child_s_.back();
  clock_->child_s_.pop_back();
  if (!clock_->child_s_.empty()) clock_->child_s_.back() += elapsed;
  auto& st = clock_->stages_[name_];
  st.seconds.push_back(elapsed - child);
  if (profiling_) {
    double flops = static_cast<double>(compat::attention_flops_reset(false));
    try {
      auto result = prof::disableProfiler();
      for (const auto& e : result->events())
        if (counted_op(e.name())) flops += static_cast<double>(e.flops());
    } catch (...) {  // a benchmark figure, never a reason to fail the run
    }
    st.flops += flops;
    st.counted_calls += 1;
  }
}

}  // namespace emo::pipeline
