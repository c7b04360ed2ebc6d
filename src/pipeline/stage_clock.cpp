#include "pipeline/stage_clock.h"

#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/torch.h>

#include <cstdlib>
#include <algorithm>
#include <set>
#include <utility>
#include <vector>

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
// convolutions. Elementwise ops are memory-bound and left out; attention and the oneDNN linear layers come from
// compat's counter.
bool counted_op(const std::string& n) {
  return n == "aten::mm" || n == "aten::addmm" || n == "aten::bmm" || n == "aten::baddbmm" || n == "aten::conv2d";
}

// Self and total CPU time per operator name. Operators nest on the thread that dispatched them (aten::linear calls
// aten::addmm): per thread, in start order, each operator's time is charged to itself and subtracted from its
// innermost enclosing operator's self time.
void add_op_times(const std::vector<prof::KinetoEvent>& events, std::map<std::string, StageClock::Op>& ops) {
  struct Span {
    uint64_t thread, start, end;
    const prof::KinetoEvent* e;
  };
  std::vector<Span> spans;
  spans.reserve(events.size());
  for (const auto& e : events)
    if (e.deviceType() == c10::DeviceType::CPU && !e.isAsync() && e.endNs() >= e.startNs())
      spans.push_back({e.startThreadId(), e.startNs(), e.endNs(), &e});
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.thread != b.thread ? a.thread < b.thread : a.start != b.start ? a.start < b.start : a.end > b.end;
  });
  std::vector<std::pair<const Span*, StageClock::Op*>> open;  // the enclosing operators of the current one
  uint64_t thread = 0;
  for (const auto& sp : spans) {
    if (open.empty() || sp.thread != thread) open.clear();
    thread = sp.thread;
    while (!open.empty() && open.back().first->end <= sp.start) open.pop_back();
    const double d = static_cast<double>(sp.end - sp.start) * 1e-9;
    auto& op = ops[sp.e->name()];
    op.calls += 1;
    op.total_s += d;
    op.self_s += d;
    if (!open.empty()) open.back().second->self_s -= d;
    open.push_back({&sp, &op});
  }
}
}  // namespace

StageClock::StageClock(c10::Device device, bool count_flops, bool record_ops)
    : device_(device), count_flops_(count_flops || record_ops), record_ops_(record_ops) {
  // libkineto logs an ERROR line when it finds no GPU driver (the CPU-only profiling here needs none).
  if (count_flops_) ::setenv("KINETO_LOG_LEVEL", "5", /*overwrite=*/0);
}
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
    compat::kernel_flops_reset(true);
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
    double flops = static_cast<double>(compat::kernel_flops_reset(false));
    try {
      auto result = prof::disableProfiler();
      for (const auto& e : result->events())
        if (counted_op(e.name())) flops += static_cast<double>(e.flops());
      if (clock_->record_ops_) {  // the last call's: a clip's first UNet step runs slower under the profiler
        st.ops.clear();
        add_op_times(result->events(), st.ops);
      }
    } catch (...) {  // a benchmark figure, never a reason to fail the run
    }
    st.flops += flops;
    st.counted_calls += 1;
    st.call_flops.push_back(flops);
  }
}

}  // namespace emo::pipeline
