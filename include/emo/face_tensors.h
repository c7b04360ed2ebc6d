// The tensors Hallo's ImageProcessor.preprocess returns, built from an emo::face::PortraitAnalysis.
#pragma once
#include <ATen/core/Tensor.h>

#include <array>

namespace emo::face {

struct PortraitAnalysis;

// Unbatched, float32, CPU — exactly hallo's return values (inference.py adds the batch dimension).
struct HalloRefInputs {
  at::Tensor ref_image;   // pixel_values_ref_img [3, S, S]: (PIL bilinear resize / 255 - 0.5) / 0.5, RGB
  at::Tensor face_mask;   // source_image_face_region [3, S, S]: hard face box resized, / 255, 3 equal channels
  at::Tensor face_emb;    // [512] raw ArcFace embedding (zeros without a face)
  std::array<at::Tensor, 4> full_mask;  // background masks [1, (S/8)^2], [1, (S/16)^2], [1, (S/32)^2], [1, (S/64)^2]
  std::array<at::Tensor, 4> face_masks; // sep_face at the same four resolutions
  std::array<at::Tensor, 4> lip_masks;  // sep_lip at the same four resolutions
};

HalloRefInputs to_hallo_inputs(const PortraitAnalysis& a);

}  // namespace emo::face
