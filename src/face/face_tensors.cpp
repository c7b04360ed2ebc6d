// hallo.datasets.image_processor.ImageProcessor.preprocess return values (ToTensor / Normalize / view(1, -1)).
#include "emo/face_tensors.h"

#include <torch/torch.h>

#include "emo/face.h"

namespace emo::face {

namespace {
at::Tensor u8_to_float(const cv::Mat& m) {  // HxW or HxWxC uint8 -> [C, H, W] float in [0, 1] (ToTensor)
  cv::Mat c = m.isContinuous() ? m : m.clone();
  auto t = torch::from_blob(c.data, {c.rows, c.cols, c.channels()}, torch::kUInt8).clone();
  return t.permute({2, 0, 1}).contiguous().to(torch::kFloat).div_(255.0);
}
}  // namespace

HalloRefInputs to_hallo_inputs(const PortraitAnalysis& a) {
  HalloRefInputs r;
  r.ref_image = (u8_to_float(a.ref_image) - 0.5) / 0.5;                  // [3, S, S]
  r.face_mask = u8_to_float(a.face_region).expand({3, -1, -1}).contiguous();  // [3, S, S]
  r.face_emb = torch::from_blob(const_cast<float*>(a.embedding.data()), {static_cast<int64_t>(a.embedding.size())},
                                torch::kFloat).clone();
  if (r.face_emb.numel() != 512) r.face_emb = torch::zeros({512});
  for (int i = 0; i < 4; ++i) {
    r.full_mask[i] = u8_to_float(a.full_mask[i]).view({1, -1});   // [1, s*s]
    r.face_masks[i] = u8_to_float(a.face_mask[i]).view({1, -1});
    r.lip_masks[i] = u8_to_float(a.lip_mask[i]).view({1, -1});
  }
  return r;
}

}  // namespace emo::face
