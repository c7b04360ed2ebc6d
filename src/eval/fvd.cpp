// FVD inputs: common_metrics_on_video_quality fvd/styleganv/fvd.py preprocess_single + get_feats, and the
// stylegan-v / common_metrics I3D TorchScript (i3d_torchscript.pt) run through torch::jit::load.
#include <c10/core/InferenceMode.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cmath>

#include "emo/error.h"
#include "emo/eval.h"

namespace emo::eval {

namespace F = torch::nn::functional;

at::Tensor fvd_preprocess_common_metrics(const at::Tensor& video, int64_t resolution) {
  if (video.dim() != 4) throw InputError("FVD preprocess: expected a video [C, T, H, W] in [0, 1]");
  const int64_t h = video.size(2), w = video.size(3);
  // scale shorter side to resolution (math.ceil for the other side)
  const double scale = static_cast<double>(resolution) / static_cast<double>(std::min(h, w));
  std::vector<int64_t> target = h < w ? std::vector<int64_t>{resolution, static_cast<int64_t>(std::ceil(w * scale))}
                                      : std::vector<int64_t>{static_cast<int64_t>(std::ceil(h * scale)), resolution};
  auto v = F::interpolate(video.to(torch::kFloat32),
                          F::InterpolateFuncOptions().size(target).mode(torch::kBilinear).align_corners(false));
  // centre crop
  const int64_t hs = (v.size(2) - resolution) / 2, ws = (v.size(3) - resolution) / 2;
  v = v.narrow(2, hs, resolution).narrow(3, ws, resolution);
  return ((v - 0.5) * 2).contiguous();  // [0, 1] -> [-1, 1]
}

struct I3D::Impl {
  torch::jit::Module module;
};

I3D::I3D(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
I3D::~I3D() = default;
I3D::I3D(I3D&&) noexcept = default;
I3D& I3D::operator=(I3D&&) noexcept = default;

I3D I3D::load(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  try {
    impl->module = torch::jit::load(path, torch::kCPU);
  } catch (const std::exception& e) {
    throw ModelError(path + ": cannot load the I3D TorchScript file: " + e.what());
  }
  impl->module.eval();
  return I3D(std::move(impl));
}

at::Tensor I3D::features(const at::Tensor& x, bool rescale, bool resize) const {
  c10::InferenceMode guard;
  if (x.dim() != 5 || x.size(1) != 3) throw InputError("I3D: expected videos [B, 3, T, H, W]");
  // detector(x, rescale=..., resize=..., return_features=True) -> [B, 400] pre-softmax logits
  std::vector<c10::IValue> args{x.to(torch::kFloat32), rescale, resize, true};
  return impl_->module.forward(args).toTensor();
}

at::Tensor I3D::features_common_metrics(const at::Tensor& videos_u8) const {
  if (videos_u8.dim() != 5 || videos_u8.size(4) != 3)
    throw InputError("FVD: expected videos [B, T, H, W, 3] uint8");
  if (videos_u8.size(1) < 10) throw InputError("FVD: each clip needs at least 10 frames (common_metrics)");
  const int64_t bs = 10;
  std::vector<at::Tensor> feats;
  for (int64_t i = 0; i < videos_u8.size(0); i += bs) {
    std::vector<at::Tensor> batch;
    for (int64_t b = i; b < std::min(videos_u8.size(0), i + bs); ++b) {
      auto v = videos_u8[b].permute({3, 0, 1, 2}).to(torch::kFloat32).div(255.0);  // [C, T, H, W] in [0, 1]
      batch.push_back(fvd_preprocess_common_metrics(v));
    }
    feats.push_back(features(torch::stack(batch), /*rescale=*/false, /*resize=*/false));
  }
  return torch::cat(feats, 0).to(torch::kFloat64);  // [B, 400]
}

}  // namespace emo::eval
