// Internal building blocks of emo::face, exposed for the golden tests. Each mirrors one insightface /
// hallo function (named in the comment) with its numeric conventions.
#pragma once
#include <opencv2/core.hpp>

#include <array>
#include <vector>

#include "emo/face.h"

namespace emo::face::detail {

// ---- insightface RetinaFace.detect (model_zoo/retinaface.py) --------------------------------------------
struct Letterbox {
  cv::Mat image;  // size x size uint8 BGR, top-left aligned, zero padded
  int new_w = 0, new_h = 0;
  double det_scale = 1.0;  // new_h / H
};
Letterbox letterbox(const cv::Mat& bgr, int in_w, int in_h);

// One pyramid level of raw SCRFD outputs: rows = (H/s) * (W/s) * anchors; score cols 1, bbox 4, kps 10.
struct ScrfdLevel {
  int stride = 0;
  cv::Mat score, bbox, kps;  // CV_32F, 2-D (kps may be empty)
};
struct DecodeStats {
  std::vector<int> candidates_per_level;
  int candidates = 0;
};
// Anchor decode + threshold + rescale + sort + insightface NMS (max_num = 0).
std::vector<Detection> scrfd_decode(const std::vector<ScrfdLevel>& levels, int in_w, int in_h, int num_anchors,
                                    double det_scale, float det_thresh, float nms_thresh, DecodeStats* stats = nullptr);
// insightface RetinaFace.nms: +1 pixel areas, keep while IoU <= thresh. Input sorted by score (desc).
std::vector<int> nms(const std::vector<Detection>& dets, float thresh);
// The max_num > 0 branch of detect (metric 'default': area - 2 x squared centre offset).
std::vector<Detection> limit_max_num(const std::vector<Detection>& dets, int max_num, int img_h, int img_w);
// hallo: sorted(faces, key=area, reverse=True)[0] (stable): -1 when empty.
int hallo_pick(const std::vector<Detection>& dets);

// ---- insightface utils/face_align.py -----------------------------------------------------------------
// estimate_norm: skimage SimilarityTransform (Umeyama with scale) from kps to arcface_dst (x image_size/112).
cv::Matx23d estimate_norm(const std::array<cv::Point2f, 5>& kps, int image_size = 112);
// Umeyama (skimage _umeyama with estimate_scale) for float64 2-D points.
cv::Matx33d umeyama(const std::vector<cv::Point2d>& src, const std::vector<cv::Point2d>& dst);
// norm_crop: warpAffine(img, estimate_norm(kps), (size, size), INTER_LINEAR, border 0).
cv::Mat norm_crop(const cv::Mat& bgr, const std::array<cv::Point2f, 5>& kps, int image_size = 112,
                  cv::Matx23d* M_out = nullptr);
// transform(data, center, output_size, scale, rotation) with rotation 0 (Landmark.get).
cv::Matx23d landmark_transform(double cx, double cy, int output_size, double scale);
// Landmark.get pre-processing for a box: M and the crop.
cv::Mat landmark_crop(const cv::Mat& bgr, const cv::Vec4f& box, int input_size, cv::Matx23d* M_out);
// Landmark.get post-processing: raw (1 x 2N) -> image coordinates (float32 as trans_points2d).
std::vector<cv::Point2f> landmark_decode(const float* raw, int count, int lmk_num, int input_size, const cv::Matx23d& M);

// ---- hallo.utils.util ----------------------------------------------------------------------------------
struct Region {
  double min_x = 0, max_x = 0, min_y = 0, max_y = 0;
};
// expand_region (float floor divisions, shift inside; may leave min < 0 when the box is larger than the image).
Region expand_region(Region r, int image_w, int image_h, double expand_ratio);
// mask[y0:y1, x0:x1] = 255 with Python slice semantics; returns the filled (x0, x1, y0, y1).
cv::Vec4i fill_box(cv::Mat& mask, const Region& r);
// blur_mask: cv2.resize to 64x64 (INTER_LINEAR), GaussianBlur(k, k, 0), normalize MINMAX 0..255.
cv::Mat blur_mask(const cv::Mat& mask, cv::Size resize_dim, int ksize);
// ((1.0 - v / 255.0) * 255).astype(uint8)
cv::Mat background_mask(const cv::Mat& face_blur);

// From m.face_mask / m.lip_mask: the 64x64 blurs, background and sep_face.
void finish_masks(HalloMasks& m);

extern const std::array<int, 36> kSilhouetteIds;
extern const std::array<int, 20> kLipIds;

}  // namespace emo::face::detail
