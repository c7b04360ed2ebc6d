// The networks of the pipeline fixtures (pipeline_step, pipeline_clips, pipeline_clips_cfg1): hallo's net.pth
// layout assembled from ../pipeline_step, ../reference_unet and ../unet3d of the golden set, and the device and
// dtype golden runs use ($EMO_GOLDEN_DEVICE, default cpu; scripts/gpu_check.sh sets cuda:0).
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>

#include "pipeline/networks.h"
#include "support/golden.h"

namespace emo::test {

// $EMO_GOLDEN_DEVICE or "cpu".
torch::Device golden_device();
std::string golden_device_name();

std::unique_ptr<pipeline::Networks> pipeline_fixture_networks(const Fixture& step, const Fixture& ref,
                                                              const Fixture& u3d, torch::Device device,
                                                              torch::ScalarType dtype);

// max |a - b| over all elements, both moved to the host in float64.
double max_abs_diff(const at::Tensor& a, const at::Tensor& b);

// The "fp32 vs fp64 run of the same reference: max |diff|: X" figure a fixture README gives for `name`
// (e.g. "clip1.videos"); throws when the README has no such row.
double readme_fp64_error(const Fixture& fx, const std::string& name);

}  // namespace emo::test
