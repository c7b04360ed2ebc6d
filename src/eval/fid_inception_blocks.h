// torchvision.models.inception building blocks as pytorch-fid's FID-Inception uses them
// (BasicConv2d, InceptionA..E with pytorch_fid.inception.FIDInceptionA/C/E_1/E_2 pooling).
#pragma once
#include <torch/torch.h>

#include <array>

namespace emo::eval {

// torchvision.models.inception.BasicConv2d: Conv2d(bias=False) -> BatchNorm2d(eps=0.001) -> ReLU
struct BasicConv2dConfig {
  int64_t in = 0, out = 0;
  std::array<int64_t, 2> kernel{1, 1}, stride{1, 1}, padding{0, 0};
};
class BasicConv2dImpl : public torch::nn::Module {
 public:
  explicit BasicConv2dImpl(const BasicConv2dConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(BasicConv2d);

// How a block's pool branch pools before its 1x1 conv.
enum class PoolBranch {
  kAvgExcludePad,  // FID blocks: avg_pool2d(3, 1, 1, count_include_pad=False)
  kMax,            // FIDInceptionE_2 (Mixed_7c): max_pool2d(3, 1, 1)
};

// pytorch_fid.inception.FIDInceptionA (torchvision InceptionA with TF-style avg pool)
class InceptionAImpl : public torch::nn::Module {
 public:
  InceptionAImpl(int64_t in, int64_t pool_features);
  torch::Tensor forward(const torch::Tensor& x);
  BasicConv2d branch1x1{nullptr}, branch5x5_1{nullptr}, branch5x5_2{nullptr}, branch3x3dbl_1{nullptr},
      branch3x3dbl_2{nullptr}, branch3x3dbl_3{nullptr}, branch_pool{nullptr};
};
TORCH_MODULE(InceptionA);

// torchvision InceptionB (Mixed_6a)
class InceptionBImpl : public torch::nn::Module {
 public:
  explicit InceptionBImpl(int64_t in);
  torch::Tensor forward(const torch::Tensor& x);
  BasicConv2d branch3x3{nullptr}, branch3x3dbl_1{nullptr}, branch3x3dbl_2{nullptr}, branch3x3dbl_3{nullptr};
};
TORCH_MODULE(InceptionB);

// pytorch_fid.inception.FIDInceptionC
class InceptionCImpl : public torch::nn::Module {
 public:
  InceptionCImpl(int64_t in, int64_t channels_7x7);
  torch::Tensor forward(const torch::Tensor& x);
  BasicConv2d branch1x1{nullptr}, branch7x7_1{nullptr}, branch7x7_2{nullptr}, branch7x7_3{nullptr},
      branch7x7dbl_1{nullptr}, branch7x7dbl_2{nullptr}, branch7x7dbl_3{nullptr}, branch7x7dbl_4{nullptr},
      branch7x7dbl_5{nullptr}, branch_pool{nullptr};
};
TORCH_MODULE(InceptionC);

// torchvision InceptionD (Mixed_7a)
class InceptionDImpl : public torch::nn::Module {
 public:
  explicit InceptionDImpl(int64_t in);
  torch::Tensor forward(const torch::Tensor& x);
  BasicConv2d branch3x3_1{nullptr}, branch3x3_2{nullptr}, branch7x7x3_1{nullptr}, branch7x7x3_2{nullptr},
      branch7x7x3_3{nullptr}, branch7x7x3_4{nullptr};
};
TORCH_MODULE(InceptionD);

// pytorch_fid.inception.FIDInceptionE_1 (avg pool, Mixed_7b) / FIDInceptionE_2 (max pool, Mixed_7c)
class InceptionEImpl : public torch::nn::Module {
 public:
  InceptionEImpl(int64_t in, PoolBranch pool);
  torch::Tensor forward(const torch::Tensor& x);
  BasicConv2d branch1x1{nullptr}, branch3x3_1{nullptr}, branch3x3_2a{nullptr}, branch3x3_2b{nullptr},
      branch3x3dbl_1{nullptr}, branch3x3dbl_2{nullptr}, branch3x3dbl_3a{nullptr}, branch3x3dbl_3b{nullptr},
      branch_pool{nullptr};
  PoolBranch pool;
};
TORCH_MODULE(InceptionE);

}  // namespace emo::eval
