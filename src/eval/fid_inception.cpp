// pytorch_fid.inception.InceptionV3(output_blocks=[3], resize_input=True, normalize_input=True)
// built on fid_inception_v3() (torchvision Inception3 with FIDInceptionA/C/E_1/E_2), pool3 features.
#include <c10/core/InferenceMode.h>
#include <torch/torch.h>

#include "emo/error.h"
#include "emo/eval.h"
#include "eval/eval_weights.h"
#include "eval/fid_inception_blocks.h"

namespace emo::eval {

namespace F = torch::nn::functional;

// The Inception3 sub-modules pytorch-fid's wrapper calls (state-dict names of pt_inception-2015-12-05).
class FidInceptionNetImpl : public torch::nn::Module {
 public:
  FidInceptionNetImpl() {
    Conv2d_1a_3x3 = register_module("Conv2d_1a_3x3", BasicConv2d(BasicConv2dConfig{3, 32, {3, 3}, {2, 2}, {0, 0}}));
    Conv2d_2a_3x3 = register_module("Conv2d_2a_3x3", BasicConv2d(BasicConv2dConfig{32, 32, {3, 3}, {1, 1}, {0, 0}}));
    Conv2d_2b_3x3 = register_module("Conv2d_2b_3x3", BasicConv2d(BasicConv2dConfig{32, 64, {3, 3}, {1, 1}, {1, 1}}));
    Conv2d_3b_1x1 = register_module("Conv2d_3b_1x1", BasicConv2d(BasicConv2dConfig{64, 80, {1, 1}, {1, 1}, {0, 0}}));
    Conv2d_4a_3x3 = register_module("Conv2d_4a_3x3", BasicConv2d(BasicConv2dConfig{80, 192, {3, 3}, {1, 1}, {0, 0}}));
    Mixed_5b = register_module("Mixed_5b", InceptionA(192, 32));
    Mixed_5c = register_module("Mixed_5c", InceptionA(256, 64));
    Mixed_5d = register_module("Mixed_5d", InceptionA(288, 64));
    Mixed_6a = register_module("Mixed_6a", InceptionB(288));
    Mixed_6b = register_module("Mixed_6b", InceptionC(768, 128));
    Mixed_6c = register_module("Mixed_6c", InceptionC(768, 160));
    Mixed_6d = register_module("Mixed_6d", InceptionC(768, 160));
    Mixed_6e = register_module("Mixed_6e", InceptionC(768, 192));
    Mixed_7a = register_module("Mixed_7a", InceptionD(768));
    Mixed_7b = register_module("Mixed_7b", InceptionE(1280, PoolBranch::kAvgExcludePad));
    Mixed_7c = register_module("Mixed_7c", InceptionE(2048, PoolBranch::kMax));
  }

  // x: float [N, 3, H, W] in [0, 1]. Returns {input, block0, block1, block2, pool3}.
  std::vector<torch::Tensor> forward(const torch::Tensor& x01, bool keep_taps) {
    std::vector<torch::Tensor> taps;
    auto x = F::interpolate(x01, F::InterpolateFuncOptions()
                                     .size(std::vector<int64_t>{299, 299})
                                     .mode(torch::kBilinear)
                                     .align_corners(false));  // [N, 3, 299, 299], no antialias
    x = 2 * x - 1;
    if (keep_taps) taps.push_back(x);
    auto mp = [](const torch::Tensor& t) { return F::max_pool2d(t, F::MaxPool2dFuncOptions(3).stride(2)); };
    x = mp(Conv2d_2b_3x3->forward(Conv2d_2a_3x3->forward(Conv2d_1a_3x3->forward(x))));  // [N, 64, 73, 73]
    if (keep_taps) taps.push_back(x);
    x = mp(Conv2d_4a_3x3->forward(Conv2d_3b_1x1->forward(x)));  // [N, 192, 35, 35]
    if (keep_taps) taps.push_back(x);
    x = Mixed_5d->forward(Mixed_5c->forward(Mixed_5b->forward(x)));  // [N, 288, 35, 35]
    x = Mixed_6a->forward(x);                                        // [N, 768, 17, 17]
    x = Mixed_6e->forward(Mixed_6d->forward(Mixed_6c->forward(Mixed_6b->forward(x))));
    if (keep_taps) taps.push_back(x);
    x = Mixed_7c->forward(Mixed_7b->forward(Mixed_7a->forward(x)));  // [N, 2048, 8, 8]
    x = F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions(1)).flatten(1);  // [N, 2048]
    taps.push_back(x);
    return taps;
  }

  BasicConv2d Conv2d_1a_3x3{nullptr}, Conv2d_2a_3x3{nullptr}, Conv2d_2b_3x3{nullptr}, Conv2d_3b_1x1{nullptr},
      Conv2d_4a_3x3{nullptr};
  InceptionA Mixed_5b{nullptr}, Mixed_5c{nullptr}, Mixed_5d{nullptr};
  InceptionB Mixed_6a{nullptr};
  InceptionC Mixed_6b{nullptr}, Mixed_6c{nullptr}, Mixed_6d{nullptr}, Mixed_6e{nullptr};
  InceptionD Mixed_7a{nullptr};
  InceptionE Mixed_7b{nullptr}, Mixed_7c{nullptr};
};
TORCH_MODULE(FidInceptionNet);

struct FidInception::Impl {
  FidInceptionNet net;
};

FidInception::FidInception(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FidInception::~FidInception() = default;
FidInception::FidInception(FidInception&&) noexcept = default;
FidInception& FidInception::operator=(FidInception&&) noexcept = default;

FidInception FidInception::from_state_dict(const io::StateDict& sd, const std::string& source) {
  auto impl = std::make_unique<Impl>();
  impl->net = FidInceptionNet();
  load_metric_weights(*impl->net, sd, source, /*ignore_prefixes=*/{"fc."});  // fc (1008 classes) unused
  return FidInception(std::move(impl));
}

FidInception FidInception::load(const std::string& path) { return from_state_dict(io::load_state_dict(path), path); }

namespace {
torch::Tensor to_float01(const torch::Tensor& images) {
  if (images.dim() != 4) throw InputError("FID: expected images [N, H, W, 3] uint8 or [N, 3, H, W] float");
  if (images.scalar_type() == torch::kUInt8) {
    if (images.size(3) != 3) throw InputError("FID: uint8 images must be [N, H, W, 3] RGB");
    return images.permute({0, 3, 1, 2}).to(torch::kFloat32).div(255.0);  // ToTensor: x / 255
  }
  if (images.size(1) != 3) throw InputError("FID: float images must be [N, 3, H, W] in [0, 1]");
  return images.to(torch::kFloat32);
}
}  // namespace

at::Tensor FidInception::features(const at::Tensor& images, int batch_size) const {
  c10::InferenceMode guard;
  if (batch_size < 1) batch_size = 1;
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < images.size(0); i += batch_size) {
    auto batch = to_float01(images.narrow(0, i, std::min<int64_t>(batch_size, images.size(0) - i)));
    out.push_back(impl_->net->forward(batch.contiguous(), false).back());
  }
  if (out.empty()) return torch::zeros({0, 2048});
  return torch::cat(out, 0);  // [N, 2048]
}

std::vector<at::Tensor> FidInception::forward_blocks(const at::Tensor& x01) const {
  c10::InferenceMode guard;
  return impl_->net->forward(to_float01(x01).contiguous(), true);
}

}  // namespace emo::eval
