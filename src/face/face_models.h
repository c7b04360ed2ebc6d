// insightface model_zoo on cv::dnn: routing by I/O signature, loading (with the SCRFD input fix), and the
// per-model get() calls (RetinaFace.detect, ArcFaceONNX.get, Landmark.get).
#pragma once
#include <opencv2/dnn.hpp>

#include <string>
#include <vector>

#include "emo/face.h"
#include "face/face_detail.h"

namespace emo::face::detail {

// model_zoo.ModelRouter.get_model on the file's graph; task "" when not recognised.
FaceModelInfo route_model(const std::string& path);

struct DetectorNet {
  FaceModelInfo info;
  cv::dnn::Net net;
  int in_w = 640, in_h = 640;
  int num_anchors = 2;
  std::vector<int> strides;
  bool use_kps = true;
  int num_outputs = 0;
};
// det_size is used when the model's input H/W are symbolic (insightface prepare(det_size=...)).
DetectorNet load_detector(const FaceModelInfo& info, int det_w = 640, int det_h = 640);
// cv::dnn outputs (any order) -> levels, identified by shape: rows tell the stride, cols 1/4/10 the kind.
std::vector<ScrfdLevel> levels_from_outputs(const std::vector<cv::Mat>& outs, int in_w, int in_h, int num_anchors,
                                            const std::vector<int>& strides);
std::vector<ScrfdLevel> run_detector_blob(DetectorNet& d, const cv::Mat& blob);
std::vector<Detection> detect_scrfd(DetectorNet& d, const cv::Mat& bgr, float det_thresh, float nms_thresh,
                                    DecodeStats* stats = nullptr);

cv::dnn::Net load_plain(const FaceModelInfo& info);
// ArcFaceONNX.get: norm_crop + blob (mean/std of the file) + raw output.
std::vector<float> arcface_embed(cv::dnn::Net& net, const FaceModelInfo& info, const cv::Mat& bgr,
                                 const std::array<cv::Point2f, 5>& kps);
cv::Mat arcface_blob(const cv::Mat& aligned, const FaceModelInfo& info);
// Landmark.get for 2d106det.
std::vector<cv::Point2f> landmark_run(cv::dnn::Net& net, const FaceModelInfo& info, const cv::Mat& bgr,
                                      const cv::Vec4f& box, int lmk_num);

}  // namespace emo::face::detail
