// syncnet_python SyncNetModel.S (num_layers_in_fc_layers=1024): the audio and lip streams of SyncNet.
#pragma once
#include <torch/torch.h>

namespace emo::eval {

struct SyncNetModelConfig {
  int64_t num_layers_in_fc_layers = 1024;
};

class SyncNetModelImpl : public torch::nn::Module {
 public:
  explicit SyncNetModelImpl(const SyncNetModelConfig& cfg = {});
  torch::Tensor forward_aud(const torch::Tensor& x);  // [n, 1, 13, 20] -> [n, 1024]
  torch::Tensor forward_lip(const torch::Tensor& x);  // [n, 3, 5, 224, 224] -> [n, 1024]

  torch::nn::Sequential netcnnaud{nullptr}, netfcaud{nullptr}, netfclip{nullptr}, netcnnlip{nullptr};
};
TORCH_MODULE(SyncNetModel);

}  // namespace emo::eval
