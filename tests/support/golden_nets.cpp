#include "support/golden_nets.h"

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace emo::test {

std::string golden_device_name() {
  const char* e = std::getenv("EMO_GOLDEN_DEVICE");
  return e && *e ? std::string(e) : std::string("cpu");
}

torch::Device golden_device() { return torch::Device(golden_device_name()); }

std::unique_ptr<pipeline::Networks> pipeline_fixture_networks(const Fixture& step, const Fixture& ref,
                                                              const Fixture& u3d, torch::Device device,
                                                              torch::ScalarType dtype) {
  io::StateDict net;
  for (const auto& [k, v] : ref.weights()) net["reference_unet." + k] = v;
  for (const auto& [k, v] : u3d.weights()) net["denoising_unet." + k] = v;
  io::StateDict vae_sd;
  for (const auto& [k, v] : step.weights()) {
    if (k.rfind("vae.", 0) == 0) vae_sd[k.substr(4)] = v;
    else net[k] = v;  // face_locator., imageproj., audioproj.
  }
  auto vae = pipeline::vae_from_parts(step.config().at("vae"), vae_sd, step.path("weights.safetensors"));
  const int64_t hidden = step.input("audio_emb").size(2);
  return pipeline::Networks::build(ref.path("config.json"), u3d.config().at("config"),
                                   u3d.config().at("unet_additional_kwargs"), net, "fixture net", vae, hidden, device,
                                   dtype);
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.detach().to(torch::kCPU, torch::kDouble) - b.detach().to(torch::kCPU, torch::kDouble)).abs().max().item<double>();
}

double readme_fp64_error(const Fixture& fx, const std::string& name) {
  std::ifstream f(fx.path("README.md"));
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  std::string esc;
  for (char c : name) {
    if (c == '.') esc += "\\.";
    else esc += c;
  }
  const std::regex row("`" + esc + "` fp32 vs fp64 run of the same reference: max \\|diff\\|: ([0-9.eE+-]+)");
  std::smatch m;
  if (!std::regex_search(text, m, row))
    throw std::runtime_error(fx.path("README.md") + ": no fp32-vs-fp64 row for `" + name + "`");
  return std::stod(m[1].str());
}

}  // namespace emo::test
