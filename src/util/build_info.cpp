// emo::compat::build_info(): what libtorch was built with (CUDA, cuDNN) and the CUDA devices this process sees.
// The device properties need the CUDA runtime headers, present whenever libtorch has CUDA (EMO_WITH_CUDA).
#include <ATen/detail/CUDAHooksInterface.h>

#include <sstream>

#include "emo/compat.h"

#ifdef EMO_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

namespace emo::compat {

namespace {
// CUDA and cuDNN encode versions as integers: CUDART 13000 = 13.0, cuDNN 91900 = 9.19.0.
std::string cuda_version_string(long v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }
std::string cudnn_version_string(long v) {
  if (v >= 90000) return std::to_string(v / 10000) + "." + std::to_string((v % 10000) / 100) + "." + std::to_string(v % 100);
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 100) + "." + std::to_string(v % 100);
}
}  // namespace

BuildInfo build_info() {
  BuildInfo b;
  b.torch = torch_version();
  const auto& hooks = at::detail::getCUDAHooks();
#ifdef EMO_WITH_CUDA
  b.cuda_built = true;
  b.cuda = cuda_version_string(CUDART_VERSION);
  if (hooks.compiledWithCuDNN()) {
    try {
      b.cudnn = cudnn_version_string(hooks.versionCuDNN());
    } catch (const std::exception&) {
      b.cudnn = "";
    }
  }
  int n = 0;
  try {
    n = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  } catch (const std::exception&) {
    n = 0;  // no driver
  }
  for (int i = 0; i < n; ++i) {
    const cudaDeviceProp* p = at::cuda::getDeviceProperties(static_cast<c10::DeviceIndex>(i));
    b.devices.push_back({i, p->name, static_cast<int64_t>(p->totalGlobalMem), p->major, p->minor});
  }
#else
  (void)hooks;
#endif
  return b;
}

std::string version_report(const std::string& emo_version) {
  const auto b = build_info();
  std::ostringstream o;
  o << "emo " << emo_version << "\n";
  o << "torch " << b.torch << "\n";
  o << "CUDA " << (b.cuda_built ? b.cuda : std::string("none (libtorch without CUDA)")) << " (built against)\n";
  o << "cuDNN " << (b.cudnn.empty() ? std::string("none") : b.cudnn) << " (built against)\n";
  if (b.devices.empty()) o << "no CUDA device\n";
  for (const auto& d : b.devices) {
    char mem[32];
    std::snprintf(mem, sizeof mem, "%.1f GiB", static_cast<double>(d.total_memory) / (1024.0 * 1024 * 1024));
    o << "cuda:" << d.index << " " << d.name << ", " << mem << ", compute capability " << d.major << "." << d.minor
      << "\n";
  }
  return o.str();
}

}  // namespace emo::compat
