// F-SIM helper: insightface face detection + ArcFace embedding of one frame (through emo::face::FaceAnalyzer).
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace emo::face {
class FaceAnalyzer;
}

namespace emo::eval::detail {

class FaceIdentity {
 public:
  // nullptr (and `missing` says which files were looked for) when the folder lacks a detector with keypoints
  // or a recognition model.
  static std::unique_ptr<FaceIdentity> open(const std::string& dir, std::string& missing);
  ~FaceIdentity();
  // Raw ArcFace embedding of the largest face (Hallo's pick) of an RGB uint8 frame [H, W, 3]; nullopt when
  // no face is found.
  std::optional<std::vector<float>> embed_rgb(const at::Tensor& frame_rgb) const;

 private:
  explicit FaceIdentity(std::unique_ptr<face::FaceAnalyzer> fa);
  std::unique_ptr<face::FaceAnalyzer> fa_;
};

}  // namespace emo::eval::detail
