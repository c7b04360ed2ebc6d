// torch.nn.Linear and torch.nn.Conv2d (padding_mode="zeros"), with parameter allocation under emo's control.
//
// libtorch's own modules always allocate fp32 on the CPU and run the default initialisation (kaiming-uniform
// weight, uniform bias). That is right for a freshly built random model (the tiny test models rely on it, and
// these layers reproduce it draw for draw), and wasted work when every parameter is about to be overwritten from
// a checkpoint: for Hallo's 2.4 B parameters it was over half the load time. Under an `UninitializedParameters`
// scope, layers built on this thread allocate their parameters empty, directly in the scope's dtype and device;
// the strict loader (io::load_module) then fills every one of them or fails.
//
// Children registered as in PyTorch: "weight" [out, in] / [out, in, kh, kw], then "bias" [out] when enabled.
#pragma once
#include <optional>
#include <torch/nn/module.h>
#include <torch/nn/options/conv.h>
#include <torch/nn/options/linear.h>
#include <torch/nn/pimpl.h>

namespace emo::nn {

// RAII: while alive, Linear / Conv2d built on this thread skip initialisation and allocate with `options`.
class UninitializedParameters {
 public:
  explicit UninitializedParameters(c10::TensorOptions options);
  ~UninitializedParameters();
  UninitializedParameters(const UninitializedParameters&) = delete;
  UninitializedParameters& operator=(const UninitializedParameters&) = delete;

  // The active scope's options on this thread, if any.
  static std::optional<c10::TensorOptions> active();

 private:
  std::optional<c10::TensorOptions> previous_;
};

class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features) : LinearImpl(torch::nn::LinearOptions(in_features, out_features)) {}
  explicit LinearImpl(const torch::nn::LinearOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  // [..., in] -> [..., out]

  torch::Tensor weight;  // [out, in]
  torch::Tensor bias;    // [out] or undefined
};
TORCH_MODULE(Linear);

class Conv2dImpl : public torch::nn::Module {
 public:
  explicit Conv2dImpl(const torch::nn::Conv2dOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  // [N, Cin, H, W] -> [N, Cout, H', W']

  torch::Tensor weight;  // [out, in / groups, kh, kw]
  torch::Tensor bias;    // [out] or undefined

 private:
  std::vector<int64_t> stride_, padding_, dilation_;
  int64_t groups_ = 1;
};
TORCH_MODULE(Conv2d);

}  // namespace emo::nn
