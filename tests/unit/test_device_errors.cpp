// Device failures map to their own exit codes (12 out of memory, 13 device error) with a one-line message, and the
// test-only fault hook EMO_FAULT_INJECT parses strictly (docs/reliability.md).
#include <gtest/gtest.h>

#include <c10/util/Exception.h>

#include <stdexcept>

#include "emo/error.h"
#include "pipeline/device_errors.h"

using emo::ExitCode;
using emo::pipeline::FaultPlan;

namespace {
c10::SourceLocation here() { return c10::SourceLocation{"test", __FILE__, 1}; }
}  // namespace

TEST(DeviceErrorsUnit, ClassifiesLibtorchExceptions) {
  EXPECT_EQ(emo::pipeline::device_error_code(c10::OutOfMemoryError(here(), "CUDA out of memory. Tried to allocate 2 GiB")),
            ExitCode::kDeviceOutOfMemory);
  EXPECT_EQ(emo::pipeline::device_error_code(c10::Error(here(), "cuDNN error: CUDNN_STATUS_ALLOC_FAILED")),
            ExitCode::kDeviceOutOfMemory);
  EXPECT_EQ(emo::pipeline::device_error_code(c10::Error(here(), "CUDA error: an illegal memory access was encountered")),
            ExitCode::kDevice);
  EXPECT_EQ(emo::pipeline::device_error_code(c10::Error(here(), "cuDNN error: CUDNN_STATUS_EXECUTION_FAILED")),
            ExitCode::kDevice);
  EXPECT_EQ(emo::pipeline::device_error_code(c10::Error(here(), "CUBLAS_STATUS_EXECUTION_FAILED when calling cublasGemmEx")),
            ExitCode::kDevice);
  // Not device failures: shape errors from libtorch, and our own errors that merely mention CUDA.
  EXPECT_EQ(emo::pipeline::device_error_code(c10::Error(here(), "The size of tensor a (4) must match the size of tensor b")),
            ExitCode::kOk);
  EXPECT_EQ(emo::pipeline::device_error_code(std::runtime_error("CUDA error: not from libtorch")), ExitCode::kOk);
  EXPECT_EQ(emo::pipeline::device_error_code(emo::UsageError("--device cuda: no CUDA device")), ExitCode::kOk);
}

TEST(DeviceErrorsUnit, MessageIsOneLineNamingTheJob) {
  c10::OutOfMemoryError oom(here(), "CUDA out of memory. Tried to allocate 2.00 GiB.\nmore detail");
  auto e = emo::pipeline::device_error(oom, "in job image=a.png audio=a.wav output=o.mp4", "cuda:0");
  EXPECT_EQ(e.code(), ExitCode::kDeviceOutOfMemory);
  const std::string m = e.what();
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  EXPECT_NE(m.find("out of memory on cuda:0 in job image=a.png audio=a.wav output=o.mp4"), std::string::npos) << m;
  EXPECT_NE(m.find("Tried to allocate 2.00 GiB"), std::string::npos) << m;
  EXPECT_EQ(m.find("Exception raised from"), std::string::npos) << m;
}

TEST(DeviceErrorsUnit, FaultSpecParsesStrictly) {
  auto p = emo::pipeline::parse_fault_spec("oom@job=2");
  EXPECT_EQ(p.kind, FaultPlan::Kind::kOom);
  EXPECT_EQ(p.job, 2);
  EXPECT_EQ(p.step, 0);
  p = emo::pipeline::parse_fault_spec("cublas@job=1,clip=2,step=3");
  EXPECT_EQ(p.kind, FaultPlan::Kind::kCublas);
  EXPECT_EQ(p.clip, 2);
  EXPECT_EQ(p.step, 3);
  for (const char* bad : {"oom", "oom@", "oom@job", "oom@job=0", "oom@job=x", "gpu@job=1", "oom@when=1", "oom@step=3,"})
    EXPECT_THROW(emo::pipeline::parse_fault_spec(bad), emo::UsageError) << bad;
}

TEST(DeviceErrorsUnit, InjectorFiresOnceAtThePlannedStepOfThePlannedJob) {
  emo::pipeline::FaultInjector other(emo::pipeline::parse_fault_spec("oom@job=2,step=3"), 1);
  for (int s = 0; s < 10; ++s) EXPECT_NO_THROW(other.at_step(1));
  emo::pipeline::FaultInjector job2(emo::pipeline::parse_fault_spec("oom@job=2,step=3"), 2);
  EXPECT_NO_THROW(job2.at_step(1));
  EXPECT_NO_THROW(job2.at_step(1));
  EXPECT_THROW(job2.at_step(1), c10::OutOfMemoryError);
  EXPECT_NO_THROW(job2.at_step(1));  // once
  emo::pipeline::FaultInjector cuda(emo::pipeline::parse_fault_spec("cuda@clip=2"), 1);
  EXPECT_NO_THROW(cuda.at_step(1));
  try {
    cuda.at_step(2);
    ADD_FAILURE() << "no fault";
  } catch (const c10::Error& e) {
    EXPECT_EQ(emo::pipeline::device_error_code(e), ExitCode::kDevice);
  }
}
