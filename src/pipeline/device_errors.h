// Device failures (CUDA out of memory, other CUDA/cuDNN/cuBLAS errors) as emo errors with their own exit codes
// (12, 13: docs/exit-codes.md), and the test-only fault hook EMO_FAULT_INJECT (docs/reliability.md).
#pragma once
#include <exception>
#include <string>

#include "emo/error.h"

namespace emo::pipeline {

// kDeviceOutOfMemory for c10::OutOfMemoryError and device allocation failures reported in a c10::Error's message
// (cuDNN/cuBLAS *_ALLOC_FAILED), kDevice for other device failures raised by libtorch (messages naming CUDA,
// cuDNN, cuBLAS, cuFFT, cuSOLVER, NCCL, HIP errors or a device-side assert), kOk for anything else (not a device
// failure: such exceptions keep their own handling).
ExitCode device_error_code(const std::exception& e);

// The first line of an exception's message, without libtorch's C++ backtrace ("Exception raised from ...").
std::string first_line(const std::exception& e);

// The emo::Error for a device failure `e` (device_error_code(e) != kOk) while doing `what` (e.g. "job image=...").
Error device_error(const std::exception& e, const std::string& what, const std::string& device);

// Releases what libtorch's CUDA caching allocator holds (no-op without CUDA or a device).
void release_device_memory();

// ---- EMO_FAULT_INJECT (tests only) -----------------------------------------------------------------------
// KIND@COND[,COND...]: KIND is oom (c10::OutOfMemoryError), cuda (a c10::Error "CUDA error: ..."), cudnn or
// cublas; COND is job=N (the N-th job this process renders, from 1), clip=N (from 1) or step=N (the N-th
// denoising step of the job, from 1, counted across clips). The fault fires once per job, at the first denoising
// step where every condition holds.
struct FaultPlan {
  enum class Kind { kNone, kOom, kCuda, kCudnn, kCublas };
  Kind kind = Kind::kNone;
  int job = 0, clip = 0, step = 0;  // 0: any
  std::string spec;
};
FaultPlan parse_fault_spec(const std::string& spec);  // throws UsageError naming EMO_FAULT_INJECT
FaultPlan fault_plan_from_env();                      // EMO_FAULT_INJECT, or kNone when unset/empty

// One job's view of the plan: at_step() is called on every denoising step and throws the planned exception.
class FaultInjector {
 public:
  FaultInjector(FaultPlan plan, int job_number) : plan_(std::move(plan)), job_(job_number) {}
  void at_step(int clip);
  [[noreturn]] static void raise(FaultPlan::Kind kind, const std::string& spec);

 private:
  FaultPlan plan_;
  int job_;
  int steps_ = 0;
  bool fired_ = false;
};

}  // namespace emo::pipeline
