#include "nn/feed_forward.h"

#include <torch/torch.h>

#include "emo/compat.h"

namespace emo::nn {

GEGLUImpl::GEGLUImpl(int64_t dim_in, int64_t dim_out) {
  proj = register_module("proj", emo::nn::Linear(dim_in, dim_out * 2));
}

torch::Tensor GEGLUImpl::forward(const torch::Tensor& x) {
  return compat::linear_geglu(x, proj->weight, proj->bias);  // [B, L, inner] = h * gelu(gate)
}

FeedForwardImpl::FeedForwardImpl(const FeedForwardConfig& c) {
  const int64_t inner = c.dim * c.mult;
  const int64_t out = c.dim_out > 0 ? c.dim_out : c.dim;
  geglu_ = GEGLU(c.dim, inner);
  out_ = emo::nn::Linear(inner, out);
  net = register_module("net", torch::nn::ModuleList());
  net->push_back(geglu_);                      // net.0
  net->push_back(torch::nn::Dropout(0.0));     // net.1
  net->push_back(out_);                        // net.2
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  return compat::geglu_feed_forward(x, geglu_->proj->weight, geglu_->proj->bias, out_->weight, out_->bias);
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x, const torch::Tensor& residual) {
  return compat::geglu_feed_forward(x, geglu_->proj->weight, geglu_->proj->bias, out_->weight, out_->bias, residual);
}

}  // namespace emo::nn
