// hallo.utils.util.get_mask and the functions it calls (get_lip_mask, get_face_mask, expand_region,
// blur_mask, get_background_mask, get_sep_face_mask), with their quirks: np.round half-to-even, numpy's
// negative slice starts, the truncating background mask. Plus the landmark proxies (2d106det, boxes).
#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "face/face_detail.h"

namespace emo::face {

namespace detail {

const std::array<int, 36> kSilhouetteIds = {10,  338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288,
                                            397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136,
                                            172, 58,  132, 93,  234, 127, 162, 21,  54,  103, 67,  109};
const std::array<int, 20> kLipIds = {61, 185, 40, 39, 37, 0, 267, 269, 270, 409,
                                     291, 146, 91, 181, 84, 17, 314, 405, 321, 375};

Region expand_region(Region r, int image_w, int image_h, double expand_ratio) {
  double mid_x = std::floor((r.max_x + r.min_x) / 2.0);  // float // 2
  double side_x = (r.max_x - r.min_x) * expand_ratio;
  double mid_y = std::floor((r.max_y + r.min_y) / 2.0);
  double side_y = (r.max_y - r.min_y) * expand_ratio;
  Region o;
  o.min_x = mid_x - std::floor(side_x / 2.0);
  o.max_x = mid_x + std::floor(side_x / 2.0);
  o.min_y = mid_y - std::floor(side_y / 2.0);
  o.max_y = mid_y + std::floor(side_y / 2.0);
  if (o.min_x < 0) {
    o.max_x -= o.min_x;
    o.min_x = 0;
  }
  if (o.max_x > image_w) {
    o.min_x -= o.max_x - image_w;
    o.max_x = image_w;
  }
  if (o.min_y < 0) {
    o.max_y -= o.min_y;
    o.min_y = 0;
  }
  if (o.max_y > image_h) {
    o.min_y -= o.max_y - image_h;
    o.max_y = image_h;
  }
  // Python round() of numpy floats: half to even
  o.min_x = std::nearbyint(o.min_x);
  o.max_x = std::nearbyint(o.max_x);
  o.min_y = std::nearbyint(o.min_y);
  o.max_y = std::nearbyint(o.max_y);
  return o;
}

namespace {
// Python slice [start:stop] on a length-n axis (step 1).
void py_slice(long start, long stop, long n, long& a, long& b) {
  if (start < 0) start = std::max(0L, start + n);
  if (stop < 0) stop = std::max(0L, stop + n);
  a = std::min(start, n);
  b = std::min(stop, n);
  if (b < a) b = a;
}
}  // namespace

cv::Vec4i fill_box(cv::Mat& mask, const Region& r) {
  long x0, x1, y0, y1;
  py_slice(std::lround(r.min_x), std::lround(r.max_x), mask.cols, x0, x1);
  py_slice(std::lround(r.min_y), std::lround(r.max_y), mask.rows, y0, y1);
  if (x1 > x0 && y1 > y0) mask(cv::Range(static_cast<int>(y0), static_cast<int>(y1)), cv::Range(static_cast<int>(x0), static_cast<int>(x1))) = 255;
  return cv::Vec4i(static_cast<int>(x0), static_cast<int>(x1), static_cast<int>(y0), static_cast<int>(y1));
}

cv::Mat blur_mask(const cv::Mat& mask, cv::Size resize_dim, int ksize) {
  cv::Mat resized, blurred, normalized;
  cv::resize(mask, resized, resize_dim);  // INTER_LINEAR
  cv::GaussianBlur(resized, blurred, cv::Size(ksize, ksize), 0);
  cv::normalize(blurred, normalized, 0, 255, cv::NORM_MINMAX);
  return normalized;
}

cv::Mat background_mask(const cv::Mat& face_blur) {
  cv::Mat out(face_blur.size(), CV_8U);
  for (int y = 0; y < face_blur.rows; ++y)
    for (int x = 0; x < face_blur.cols; ++x) {
      double v = (1.0 - face_blur.at<uchar>(y, x) / 255.0) * 255.0;
      out.at<uchar>(y, x) = static_cast<uchar>(static_cast<int>(v));  // astype(uint8) truncates
    }
  return out;
}

}  // namespace detail

namespace {
detail::Region rounded_extent(const std::vector<cv::Point2d>& pts) {
  detail::Region r{pts[0].x, pts[0].x, pts[0].y, pts[0].y};
  for (const auto& p : pts) {
    r.min_x = std::min(r.min_x, p.x);
    r.max_x = std::max(r.max_x, p.x);
    r.min_y = std::min(r.min_y, p.y);
    r.max_y = std::max(r.max_y, p.y);
  }
  r.min_x = std::nearbyint(r.min_x);  // np.round: half to even
  r.max_x = std::nearbyint(r.max_x);
  r.min_y = std::nearbyint(r.min_y);
  r.max_y = std::nearbyint(r.max_y);
  return r;
}
}  // namespace

HalloMasks hallo_masks_from_points(const std::vector<cv::Point2d>& silhouette, const std::vector<cv::Point2d>& lips,
                                   int height, int width, double face_expand_ratio, double lip_expand_ratio) {
  CV_Assert(!silhouette.empty() && !lips.empty() && height > 0 && width > 0);
  HalloMasks m;
  m.lip_mask = cv::Mat::zeros(height, width, CV_8U);
  m.lip_box = detail::fill_box(m.lip_mask, detail::expand_region(rounded_extent(lips), width, height, lip_expand_ratio));
  m.face_mask = cv::Mat::zeros(height, width, CV_8U);
  m.face_box = detail::fill_box(m.face_mask,
                                detail::expand_region(rounded_extent(silhouette), width, height, face_expand_ratio));
  detail::finish_masks(m);
  return m;
}

void detail::finish_masks(HalloMasks& m) {
  m.face_mask_blur = detail::blur_mask(m.face_mask, cv::Size(64, 64), 51);
  m.sep_lip = detail::blur_mask(m.lip_mask, cv::Size(64, 64), 31);
  m.sep_background = detail::background_mask(m.face_mask_blur);
  cv::subtract(m.face_mask_blur, m.sep_lip, m.sep_face);  // saturating
}

HalloMasks hallo_masks_from_mediapipe(const std::vector<cv::Point2d>& pts, int height, int width,
                                      double face_expand_ratio) {
  if (pts.size() < 468) throw std::invalid_argument("MediaPipe landmarks: need 468 or 478 points, got " + std::to_string(pts.size()));
  std::vector<cv::Point2d> sil, lips;
  for (int i : detail::kSilhouetteIds) sil.push_back(pts[i]);
  for (int i : detail::kLipIds) lips.push_back(pts[i]);
  return hallo_masks_from_points(sil, lips, height, width, face_expand_ratio, 2.0);
}

// insightface 2d106 layout: 0..32 jaw contour (0 = chin), 43..51 and 97..105 brows, outer lips
// 52 64 63 71 67 68 61 58 59 53 56 55. MediaPipe's face oval reaches the top of the forehead (id 10), which
// 2d106det does not mark: extrapolate it as brow_y - 0.22 (chin_y - brow_y) (canonical mesh proportion,
// face-analysis.md section 5).
HalloMasks hallo_masks_from_106(const std::vector<cv::Point2f>& p, int height, int width, double face_expand_ratio) {
  if (p.size() != 106) throw std::invalid_argument("2d106 landmarks: need 106 points, got " + std::to_string(p.size()));
  std::vector<cv::Point2d> sil, lips;
  for (int i = 0; i <= 32; ++i) sil.emplace_back(p[i].x, p[i].y);
  double brow_y = 1e300, brow_x = 0.0;
  int nb = 0;
  for (int i = 43; i <= 51; ++i, ++nb) brow_y = std::min(brow_y, static_cast<double>(p[i].y)), brow_x += p[i].x;
  for (int i = 97; i <= 105; ++i, ++nb) brow_y = std::min(brow_y, static_cast<double>(p[i].y)), brow_x += p[i].x;
  brow_x /= nb;
  double chin_y = -1e300;
  for (int i = 0; i <= 32; ++i) chin_y = std::max(chin_y, static_cast<double>(p[i].y));
  sil.emplace_back(brow_x, brow_y - 0.22 * (chin_y - brow_y));
  for (int i : {52, 64, 63, 71, 67, 68, 61, 58, 59, 53, 56, 55}) lips.emplace_back(p[i].x, p[i].y);
  return hallo_masks_from_points(sil, lips, height, width, face_expand_ratio, 2.0);
}

}  // namespace emo::face
