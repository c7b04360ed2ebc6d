#include "pipeline/runtime.h"

#include <ATen/Context.h>

#include "emo/compat.h"
#include "emo/error.h"

namespace emo::pipeline {

namespace {

torch::Device parse_device(const std::string& s) {
  if (s == "cpu") return torch::kCPU;
  bool cuda = s == "cuda";
  if (!cuda && s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() <= 8)
    cuda = s.find_first_not_of("0123456789", 5) == std::string::npos;
  if (!cuda) throw UsageError("--device must be cpu, cuda or cuda:N (got '" + s + "')");
  if (!torch::cuda::is_available()) throw UsageError("--device " + s + ": CUDA is not available in this build/machine");
  torch::Device d(s);
  if (d.has_index() && d.index() >= static_cast<int>(torch::cuda::device_count()))
    throw UsageError("--device " + s + ": this machine has " + std::to_string(torch::cuda::device_count()) +
                     " CUDA device(s)");
  return d;
}

torch::ScalarType parse_dtype(const std::string& s, const torch::Device& d) {
  if (s == "fp32") return torch::kFloat;
  if (s == "fp16") return torch::kHalf;
  if (s == "bf16") return torch::kBFloat16;
  throw UsageError("--dtype must be fp32, fp16 or bf16 (got '" + s + "')");
}

compat::AttentionBackend parse_attention(const std::string& s) {
  if (s == "auto") return compat::AttentionBackend::kAuto;
  if (s == "math") return compat::AttentionBackend::kMath;
  throw UsageError("--attention must be auto or math (got '" + s + "')");
}

compat::CpuLinear parse_cpu_linear(const std::string& s) {
  if (s == "auto") return compat::CpuLinear::kAuto;
  if (s == "aten") return compat::CpuLinear::kAten;
  throw UsageError("--cpu-linear must be auto or aten (got '" + s + "')");
}

}  // namespace

ResolvedRuntime apply_runtime(const RuntimeOptions& rt) {
  ResolvedRuntime r;
  r.device = parse_device(rt.device);
  r.dtype = parse_dtype(rt.dtype, r.device);
  compat::set_attention_backend(parse_attention(rt.attention));
  compat::set_cpu_linear(parse_cpu_linear(rt.cpu_linear));
  compat::set_num_threads(rt.threads);
  if (r.device.is_cuda()) at::globalContext().setBenchmarkCuDNN(rt.cudnn_benchmark);
  if (rt.host_memory != "retain" && rt.host_memory != "system")
    throw UsageError("--host-memory must be retain or system (got '" + rt.host_memory + "')");
  compat::set_retain_host_memory(rt.host_memory == "retain");
  r.vae_channels_last = vae_channels_last(rt.vae_layout);
  return r;
}

bool vae_channels_last(const std::string& vae_layout) {
  // auto = NCHW: NHWC measured no faster for emo's VAE on the CPU (docs/performance.md) and is unmeasured on CUDA.
  if (vae_layout == "auto" || vae_layout == "nchw") return false;
  if (vae_layout == "nhwc") return true;
  throw UsageError("--vae-layout must be auto, nhwc or nchw (got '" + vae_layout + "')");
}

}  // namespace emo::pipeline
