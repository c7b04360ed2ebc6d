// Process-wide runtime choices, made once at load time from emo::RuntimeOptions: device, dtype, intra-op
// threads and the attention backend. Shared by Pipeline::load and run_bench.
#pragma once
#include <torch/types.h>

#include "emo/generate.h"

namespace emo::pipeline {

struct ResolvedRuntime {
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat;
  bool vae_channels_last = false;  // --vae-layout resolved for the device
};

// Validates every field (UsageError naming the flag on a bad value or a missing CUDA), sets the thread
// count and the attention backend, and returns the device and dtype.
ResolvedRuntime apply_runtime(const RuntimeOptions& rt);

// --vae-layout: whether the VAE runs channels-last (NHWC). One rule for the pipeline and the bench report;
// UsageError on anything but auto, nhwc or nchw.
bool vae_channels_last(const std::string& vae_layout);

}  // namespace emo::pipeline
