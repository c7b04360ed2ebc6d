#include "golden.h"

#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace fs = std::filesystem;

namespace emo::test {

std::string golden_root() {
  if (const char* e = std::getenv("EMO_GOLDEN_DIR"); e && *e) return e;
  return (fs::path(EMO_SOURCE_DIR).parent_path() / "shared" / "golden").string();
}

bool golden_root_present() {
  static bool warned = false;
  bool ok = fs::is_directory(golden_root());
  if (!ok && !warned) {
    warned = true;
    std::cerr << "\n*** WARNING: golden fixtures not found at " << golden_root()
              << " — golden parity tests are NOT RUN ***\n\n";
  }
  return ok;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  return nlohmann::json::parse(in);
}

Fixture::Fixture(const std::string& name) : dir_((fs::path(golden_root()) / name).string()) {
  if (!fs::is_directory(dir_)) throw std::runtime_error(dir_ + ": no such fixture folder");
  if (fs::exists(path("config.json"))) config_ = read_json(path("config.json"));
  if (fs::exists(path("weights.safetensors"))) weights_ = io::SafetensorsFile::open(path("weights.safetensors")).all();
  if (fs::exists(path("io.safetensors"))) io_ = io::SafetensorsFile::open(path("io.safetensors")).all();
}

at::Tensor Fixture::input(const std::string& name) const {
  auto it = io_.find("input." + name);
  if (it == io_.end()) throw std::runtime_error(dir_ + ": io.safetensors has no input." + name);
  return it->second;
}

at::Tensor Fixture::output(const std::string& name) const {
  auto it = io_.find("output." + name);
  if (it == io_.end()) throw std::runtime_error(dir_ + ": io.safetensors has no output." + name);
  return it->second;
}

::testing::AssertionResult AllClose(const at::Tensor& actual, const at::Tensor& expected, double tol) {
  if (!actual.defined()) return ::testing::AssertionFailure() << "actual tensor is undefined";
  if (actual.sizes() != expected.sizes()) {
    std::ostringstream o;
    o << "shape " << actual.sizes() << " != expected " << expected.sizes();
    return ::testing::AssertionFailure() << o.str();
  }
  auto a = actual.detach().to(torch::kCPU, torch::kDouble);
  auto b = expected.detach().to(torch::kCPU, torch::kDouble);
  if (a.numel() == 0) return ::testing::AssertionSuccess();
  auto diff = (a - b).abs();
  if (diff.isnan().any().item<bool>()) return ::testing::AssertionFailure() << "NaN in the difference";
  double maxdiff = diff.max().item<double>();
  double scale = std::max(1.0, b.abs().max().item<double>());
  if (maxdiff <= tol * scale)
    return ::testing::AssertionSuccess() << "max|diff| " << maxdiff;
  auto idx = diff.flatten().argmax().item<int64_t>();
  return ::testing::AssertionFailure() << "max|diff| " << maxdiff << " > " << tol * scale << " at flat index " << idx
                                       << " (actual " << a.flatten()[idx].item<double>() << ", expected "
                                       << b.flatten()[idx].item<double>() << ")";
}

}  // namespace emo::test
