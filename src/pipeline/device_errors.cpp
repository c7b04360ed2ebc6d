#include "pipeline/device_errors.h"

#include <c10/util/Exception.h>
#include <torch/cuda.h>
#ifdef EMO_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <cstdlib>

namespace emo::pipeline {

namespace {

bool contains(const std::string& s, const char* needle) { return s.find(needle) != std::string::npos; }

}  // namespace

std::string first_line(const std::exception& e) {
  const auto* c10e = dynamic_cast<const c10::Error*>(&e);
  std::string msg = c10e ? c10e->what_without_backtrace() : e.what();
  const auto nl = msg.find('\n');
  if (nl != std::string::npos) msg.resize(nl);
  while (!msg.empty() && (msg.back() == ' ' || msg.back() == '\r')) msg.pop_back();
  return msg;
}

ExitCode device_error_code(const std::exception& e) {
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e)) return ExitCode::kDeviceOutOfMemory;
  const auto* c10e = dynamic_cast<const c10::Error*>(&e);
  if (!c10e) return ExitCode::kOk;
  const std::string m = c10e->what_without_backtrace();
  if (contains(m, "CUDA out of memory") || contains(m, "HIP out of memory") || contains(m, "_ALLOC_FAILED") ||
      contains(m, "cudaErrorMemoryAllocation") || contains(m, "CUDA error: out of memory"))
    return ExitCode::kDeviceOutOfMemory;
  for (const char* p : {"CUDA error", "CUDA driver error", "CUDA kernel errors", "cuDNN", "CUDNN", "cuBLAS", "CUBLAS",
                        "cuFFT", "CUFFT", "cuSOLVER", "CUSOLVER", "cuSPARSE", "CUSPARSE", "NCCL", "HIP error",
                        "device-side assert"})
    if (contains(m, p)) return ExitCode::kDevice;
  return ExitCode::kOk;
}

Error device_error(const std::exception& e, const std::string& what, const std::string& device) {
  const ExitCode code = device_error_code(e);
  const bool oom = code == ExitCode::kDeviceOutOfMemory;
  std::string msg = (oom ? "out of memory on " : "device error on ") + device + " " + what + ": " + first_line(e);
  if (oom) msg += " (try --dtype fp16, a smaller --width/--height, or --device cpu)";
  return Error(code == ExitCode::kOk ? ExitCode::kDevice : code, msg);
}

void release_device_memory() {
#ifdef EMO_WITH_CUDA
  try {
    if (torch::cuda::is_available()) c10::cuda::CUDACachingAllocator::emptyCache();
  } catch (const std::exception&) {
    // A device in an error state may refuse even this; the next job reports its own failure.
  }
#endif
}

FaultPlan parse_fault_spec(const std::string& spec) {
  auto bad = [&](const std::string& why) -> UsageError {
    return UsageError("EMO_FAULT_INJECT='" + spec + "': " + why +
                      " (expected KIND@COND[,COND]: KIND oom, cuda, cudnn or cublas; COND job=N, clip=N or step=N)");
  };
  FaultPlan p;
  p.spec = spec;
  const auto at = spec.find('@');
  if (at == std::string::npos) throw bad("no '@'");
  const std::string kind = spec.substr(0, at);
  if (kind == "oom") p.kind = FaultPlan::Kind::kOom;
  else if (kind == "cuda") p.kind = FaultPlan::Kind::kCuda;
  else if (kind == "cudnn") p.kind = FaultPlan::Kind::kCudnn;
  else if (kind == "cublas") p.kind = FaultPlan::Kind::kCublas;
  else throw bad("unknown kind '" + kind + "'");
  size_t pos = at + 1;
  if (pos >= spec.size()) throw bad("no condition");
  while (pos <= spec.size()) {
    size_t end = spec.find(',', pos);
    if (end == std::string::npos) end = spec.size();
    const std::string cond = spec.substr(pos, end - pos);
    const auto eq = cond.find('=');
    if (eq == std::string::npos) throw bad("condition '" + cond + "' is not KEY=N");
    const std::string key = cond.substr(0, eq), val = cond.substr(eq + 1);
    char* e = nullptr;
    const long n = val.empty() ? 0 : std::strtol(val.c_str(), &e, 10);
    if (val.empty() || *e || n < 1 || n > 1000000) throw bad("'" + val + "' is not a positive integer");
    if (key == "job") p.job = static_cast<int>(n);
    else if (key == "clip") p.clip = static_cast<int>(n);
    else if (key == "step") p.step = static_cast<int>(n);
    else throw bad("unknown condition '" + key + "'");
    pos = end + 1;
  }
  return p;
}

FaultPlan fault_plan_from_env() {
  const char* v = std::getenv("EMO_FAULT_INJECT");
  if (!v || !*v) return {};
  return parse_fault_spec(v);
}

void FaultInjector::at_step(int clip) {
  if (plan_.kind == FaultPlan::Kind::kNone || fired_) return;
  ++steps_;
  if (plan_.job && plan_.job != job_) return;
  if (plan_.clip && plan_.clip != clip) return;
  if (plan_.step && plan_.step != steps_) return;
  fired_ = true;
  raise(plan_.kind, plan_.spec);
}

void FaultInjector::raise(FaultPlan::Kind kind, const std::string& spec) {
  const c10::SourceLocation loc{__func__, __FILE__, static_cast<uint32_t>(__LINE__)};
  const std::string tag = " (injected by EMO_FAULT_INJECT=" + spec + ")";
  switch (kind) {
    case FaultPlan::Kind::kOom:
      throw c10::OutOfMemoryError(loc, "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
                                       "139.81 GiB of which 1.06 GiB is free." + tag);
    case FaultPlan::Kind::kCuda:
      throw c10::Error(loc, "CUDA error: an illegal memory access was encountered" + tag);
    case FaultPlan::Kind::kCudnn:
      throw c10::Error(loc, "cuDNN error: CUDNN_STATUS_EXECUTION_FAILED" + tag);
    case FaultPlan::Kind::kCublas:
      throw c10::Error(loc, "CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling `cublasGemmEx(...)`" + tag);
    case FaultPlan::Kind::kNone: break;
  }
  throw c10::Error(loc, "CUDA error: unknown injected fault" + tag);
}

}  // namespace emo::pipeline
