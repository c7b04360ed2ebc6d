// F-SIM (identity similarity, as in EMO / Hallo-style evaluations): cosine similarity between the ArcFace
// embedding of the reference portrait and that of each generated frame, averaged over frames with a face and
// then over clips. Detection and embedding are insightface's FaceAnalysis (SCRFD + ArcFace via emo::face).
#include "eval/fsim.h"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "emo/error.h"
#include "emo/eval.h"
#include "emo/face.h"

namespace emo::eval {

double cosine_similarity(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size())
    throw InputError("F-SIM: embedding sizes differ (" + std::to_string(a.size()) + " vs " + std::to_string(b.size()) + ")");
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  if (aa == 0 || bb == 0) return 0;
  return ab / (std::sqrt(aa) * std::sqrt(bb));
}

double fsim_clip_mean(const std::vector<double>& per_frame) {
  if (per_frame.empty()) return NAN;
  double s = 0;
  for (double v : per_frame) s += v;
  return s / static_cast<double>(per_frame.size());
}

namespace detail {

namespace fs = std::filesystem;

FaceIdentity::FaceIdentity(std::unique_ptr<face::FaceAnalyzer> fa) : fa_(std::move(fa)) {}
FaceIdentity::~FaceIdentity() = default;

std::unique_ptr<FaceIdentity> FaceIdentity::open(const std::string& dir_in, std::string& missing) {
  const std::string dir = dir_in.empty() ? "." : dir_in;
  const std::string need = "needs insightface models " + (fs::path(dir) / "face_analysis/models").string() + "/{" +
                           kFaceDetectorFile + "," + kFaceRecognitionFile +
                           "} (SCRFD detector with keypoints + ArcFace recognition; --face-models DIR)";
  std::vector<face::FaceModelInfo> models;
  try {
    models = face::discover_face_models(dir);
  } catch (const std::exception& e) {
    missing = need + ": " + e.what();
    return nullptr;
  }
  bool det = false, rec = false;
  for (const auto& m : models) {
    det = det || m.task == "detection";
    rec = rec || m.task == "recognition";
  }
  if (!det || !rec) {
    missing = need + (det ? ": no recognition model found" : rec ? ": no detection model found" : "");
    return nullptr;
  }
  face::FaceOptions fo;
  fo.model_dir = dir;
  try {
    return std::unique_ptr<FaceIdentity>(new FaceIdentity(std::make_unique<face::FaceAnalyzer>(fo)));
  } catch (const std::exception& e) {
    missing = std::string("cannot load face models from ") + dir + ": " + e.what();
    return nullptr;
  }
}

std::optional<std::vector<float>> FaceIdentity::embed_rgb(const at::Tensor& frame_rgb) const {
  auto f = frame_rgb.contiguous();
  cv::Mat rgb(static_cast<int>(f.size(0)), static_cast<int>(f.size(1)), CV_8UC3, f.data_ptr<uint8_t>());
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  const auto faces = fa_->detect(bgr);
  int pick = -1;
  for (int i = 0; i < static_cast<int>(faces.size()); ++i)  // Hallo's pick: largest area, first among equals
    if (faces[i].has_kps && (pick < 0 || faces[i].area() > faces[pick].area())) pick = i;
  if (pick < 0) return std::nullopt;
  return fa_->embed(bgr, faces[pick].kps);
}

}  // namespace detail
}  // namespace emo::eval
