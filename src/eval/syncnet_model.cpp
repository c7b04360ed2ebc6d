// syncnet_python SyncNetModel.S
#include "eval/syncnet_model.h"

namespace emo::eval {

namespace nn = torch::nn;

namespace {
nn::Conv2d conv2d(int64_t in, int64_t out, std::vector<int64_t> k, std::vector<int64_t> p) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, torch::IntArrayRef(k)).stride(1).padding(torch::IntArrayRef(p)));
}
nn::Conv3d conv3d(int64_t in, int64_t out, std::vector<int64_t> k, std::vector<int64_t> s, std::vector<int64_t> p) {
  return nn::Conv3d(nn::Conv3dOptions(in, out, torch::IntArrayRef(k))
                        .stride(torch::IntArrayRef(s))
                        .padding(torch::IntArrayRef(p)));
}
}  // namespace

SyncNetModelImpl::SyncNetModelImpl(const SyncNetModelConfig& cfg) {
  netcnnaud = register_module(
      "netcnnaud",
      nn::Sequential(conv2d(1, 64, {3, 3}, {1, 1}),                                     // 0
                     nn::BatchNorm2d(64), nn::ReLU(),                                   // 1, 2
                     nn::MaxPool2d(nn::MaxPool2dOptions({1, 1}).stride({1, 1})),       // 3
                     conv2d(64, 192, {3, 3}, {1, 1}),                                   // 4
                     nn::BatchNorm2d(192), nn::ReLU(),                                  // 5, 6
                     nn::MaxPool2d(nn::MaxPool2dOptions({3, 3}).stride({1, 2})),       // 7
                     conv2d(192, 384, {3, 3}, {1, 1}),                                  // 8
                     nn::BatchNorm2d(384), nn::ReLU(),                                  // 9, 10
                     conv2d(384, 256, {3, 3}, {1, 1}),                                  // 11
                     nn::BatchNorm2d(256), nn::ReLU(),                                  // 12, 13
                     conv2d(256, 256, {3, 3}, {1, 1}),                                  // 14
                     nn::BatchNorm2d(256), nn::ReLU(),                                  // 15, 16
                     nn::MaxPool2d(nn::MaxPool2dOptions({3, 3}).stride({2, 2})),       // 17
                     conv2d(256, 512, {5, 4}, {0, 0}),                                  // 18
                     nn::BatchNorm2d(512), nn::ReLU()));                                // 19, 20
  netfcaud = register_module("netfcaud", nn::Sequential(nn::Linear(512, 512), nn::BatchNorm1d(512), nn::ReLU(),
                                                        nn::Linear(512, cfg.num_layers_in_fc_layers)));
  netfclip = register_module("netfclip", nn::Sequential(nn::Linear(512, 512), nn::BatchNorm1d(512), nn::ReLU(),
                                                        nn::Linear(512, cfg.num_layers_in_fc_layers)));
  netcnnlip = register_module(
      "netcnnlip",
      nn::Sequential(conv3d(3, 96, {5, 7, 7}, {1, 2, 2}, {0, 0, 0}),                   // 0
                     nn::BatchNorm3d(96), nn::ReLU(),                                   // 1, 2
                     nn::MaxPool3d(nn::MaxPool3dOptions({1, 3, 3}).stride({1, 2, 2})), // 3
                     conv3d(96, 256, {1, 5, 5}, {1, 2, 2}, {0, 1, 1}),                  // 4
                     nn::BatchNorm3d(256), nn::ReLU(),                                  // 5, 6
                     nn::MaxPool3d(nn::MaxPool3dOptions({1, 3, 3}).stride({1, 2, 2}).padding({0, 1, 1})),  // 7
                     conv3d(256, 256, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}),                 // 8
                     nn::BatchNorm3d(256), nn::ReLU(),                                  // 9, 10
                     conv3d(256, 256, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}),                 // 11
                     nn::BatchNorm3d(256), nn::ReLU(),                                  // 12, 13
                     conv3d(256, 256, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}),                 // 14
                     nn::BatchNorm3d(256), nn::ReLU(),                                  // 15, 16
                     nn::MaxPool3d(nn::MaxPool3dOptions({1, 3, 3}).stride({1, 2, 2})), // 17
                     conv3d(256, 512, {1, 6, 6}, {1, 1, 1}, {0, 0, 0}),                 // 18
                     nn::BatchNorm3d(512), nn::ReLU()));                                // 19, 20
}

torch::Tensor SyncNetModelImpl::forward_aud(const torch::Tensor& x) {
  auto mid = netcnnaud->forward(x);          // [n, 512, 1, 1]
  mid = mid.view({mid.size(0), -1});         // [n, 512]
  return netfcaud->forward(mid);             // [n, 1024]
}

torch::Tensor SyncNetModelImpl::forward_lip(const torch::Tensor& x) {
  auto mid = netcnnlip->forward(x);          // [n, 512, 1, 1, 1]
  mid = mid.view({mid.size(0), -1});         // [n, 512]
  return netfclip->forward(mid);             // [n, 1024]
}

}  // namespace emo::eval
